"""``msm pretrain --config configs/pretrain/X.yaml [key=value ...]``."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from msm.config import load_config, parse_overrides
    from msm.train.config import PretrainConfig
    from msm.train.trainer import run_pretraining

    cfg = load_config(args.config, PretrainConfig, parse_overrides(args.overrides))
    run_pretraining(cfg)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="MSM pretraining with Ray Train")
    p.add_argument("--config", required=True)
    p.add_argument("overrides", nargs="*", help="KEY=VALUE, e.g. run.output_dir=/tmp/run optim.max_steps=10")
    p.set_defaults(func=_run)
