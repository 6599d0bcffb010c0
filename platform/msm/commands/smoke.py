"""``msm smoke``: a short MSM training run on real multilingual text; the loss should fall."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from msm.model.smoke import default_data_dir, smoke_run

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    losses = smoke_run(args.model, steps=args.steps, data_dir=data_dir, lr=args.lr)
    n = min(6, len(losses))
    return 0 if sum(losses[-n:]) < sum(losses[:n]) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("smoke", help="short MSM forward/backward run on real multilingual documents")
    p.add_argument("--model", default="e5-small", help="encoder: alias, HF folder or hub id")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--data-dir", default=None, help="folder with ntrex/ (default: $MSM_DATA_DIR or ../shared/data)")
    p.set_defaults(func=_run)
