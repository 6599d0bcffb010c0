"""``msm mine --config configs/mine/X.yaml [key=value ...]``: mine and align parallel documents."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("mine", help="mine cross-lingual document pairs and align their sentences (Ray Data)")
    p.add_argument("--config", required=True, help="YAML config (see configs/mine/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. embed.pool_size=2 output_dir=runs/x")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from msm.config import load_config, parse_overrides
    from msm.data.config import MineConfig
    from msm.data.pipeline import mine

    cfg = load_config(args.config, MineConfig, parse_overrides(args.overrides))
    mine(cfg)
    return 0
