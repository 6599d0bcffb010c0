"""``msm mine --config configs/mine/X.yaml [--out LOCATION] [--overwrite] [KEY=VALUE ...]``: mine and align parallel
documents."""

from __future__ import annotations

import argparse

from msm.commands import add_out, add_overrides, overrides_with_out
from msm.config import load_config
from msm.data.config import MineConfig


def register(subparsers) -> None:
    p = subparsers.add_parser("mine", help="mine cross-lingual document pairs and align their sentences (Ray Data)")
    p.add_argument("--config", required=True, help="YAML config (see configs/mine/)")
    add_out(p, "output_dir")
    add_overrides(p, "embed.pool_size=2 pair.k=8")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from msm.data.pipeline import mine  # lazy: faiss, numpy, pyarrow, ray

    cfg = load_config(args.config, MineConfig, overrides_with_out(args, "output_dir"))
    mine(cfg, overwrite=args.overwrite)
    return 0
