"""``msm pretrain --config configs/pretrain/X.yaml [--out LOCATION] [--overwrite] [KEY=VALUE ...]`` or
``msm pretrain --resume RUN_DIR``."""

from __future__ import annotations

import argparse

from msm.commands import add_out, add_overrides, overrides_with_out
from msm.config import new_or_resumed
from msm.errors import MSMError
from msm.train.config import PretrainConfig


def _run(args: argparse.Namespace) -> int:
    from msm.train.trainer import resume_config, run_pretraining  # lazy: pyarrow, torch

    if args.resume and args.overwrite:
        raise MSMError("--resume continues a run as it is; --overwrite would start it over: pass one of them")
    cfg = new_or_resumed(args.config, args.resume, overrides_with_out(args, "run.output_dir"), PretrainConfig,
                         resume_config)
    run_pretraining(cfg, fail_on_stall=args.fail_on_stall, overwrite=args.overwrite)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="MSM pretraining with Ray Train")
    p.add_argument("--config", help="pretraining YAML (configs/pretrain/) for a new run (default: none)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its run.output_dir) from its "
                   "latest checkpoint, with its saved config, e.g. after a crash (default: none)")
    add_out(p, "run.output_dir")
    p.add_argument("--fail-on-stall", action="store_true", help="end the run with an error when no step came for "
                   "run.stall_after_s seconds while Ray cannot schedule what it asked for (default: say so and wait)")
    add_overrides(p, "optim.max_steps=10 run.num_workers=2")
    p.set_defaults(func=_run)
