"""``msm pretrain --config configs/pretrain/X.yaml [key=value ...]`` or ``msm pretrain --resume RUN_DIR``."""

from __future__ import annotations

import argparse

from msm.errors import MSMError


def _run(args: argparse.Namespace) -> int:
    from msm.config import load_config, parse_overrides
    from msm.train.config import PretrainConfig
    from msm.train.trainer import resume_config, run_pretraining

    if bool(args.config) == bool(args.resume):
        raise MSMError("pass exactly one of --config FILE (a new run) or --resume RUN_DIR (continue a run)")
    if args.resume:
        if args.overrides:
            raise MSMError("--resume continues a run with its saved config; key=value overrides are not allowed")
        cfg = resume_config(args.resume)
    else:
        cfg = load_config(args.config, PretrainConfig, parse_overrides(args.overrides))
    run_pretraining(cfg)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="MSM pretraining with Ray Train")
    p.add_argument("--config", help="pretraining YAML (configs/pretrain/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its run.output_dir) from its "
                   "latest checkpoint, e.g. after a crash")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE, e.g. run.output_dir=/tmp/run optim.max_steps=10")
    p.set_defaults(func=_run)
