"""``msm smoke``: a short MSM training run on real multilingual text; the loss should fall."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from msm.commands import positive_int
from msm.encoders.resolve import check_model


def _run(args: argparse.Namespace) -> int:
    from msm.data.readers import default_data_dir  # lazy: pyarrow
    from msm.smoke import smoke_run  # lazy: torch


    check_model(args.model, "--model")
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    losses = smoke_run(args.model, steps=args.steps, data_dir=data_dir, lr=args.lr)
    n = min(6, len(losses) // 2) or 1
    first, last = sum(losses[:n]) / n, sum(losses[-n:]) / n
    if last < first:
        print(f"smoke: the loss fell: mean of the first {n} steps {first:.4f}, of the last {n} {last:.4f}")
        return 0
    print(f"smoke: the loss did not fall: mean of the first {n} steps {first:.4f}, of the last {n} {last:.4f}"
          + ("; with so few steps the comparison is noise (the default --steps 16 shows the trend)"
             if len(losses) < 12 else "; try a lower --lr, or check the model and data"), file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("smoke", help="short MSM forward/backward run on real multilingual documents")
    p.add_argument("--model", default="e5-small", help="encoder: alias, HF folder or hub id (default: e5-small)")
    p.add_argument("--steps", type=positive_int, default=16, help="training steps (default: 16)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate (default: 5e-5)")
    p.add_argument("--data-dir", default=None, help="folder with ntrex/ (default: $MSM_DATA_DIR or ../shared/data)")
    p.set_defaults(func=_run)
