"""``msm finetune --config configs/finetune/X.yaml [key=value ...]`` or ``msm finetune --resume RUN_DIR``."""

from __future__ import annotations

import argparse

from msm.errors import MSMError


def _run(args: argparse.Namespace) -> int:
    from msm.config import new_or_resumed
    from msm.finetune.config import FinetuneConfig
    from msm.finetune.trainer import has_local_checkpoint, resume_config, run_finetune, run_local

    if args.resume and args.no_ray:
        raise MSMError("--resume continues a Ray Train run; for an in-process run re-run --config ... --no-ray")
    cfg = new_or_resumed(args.config, args.resume, args.overrides, FinetuneConfig, resume_config)
    if args.no_ray:
        run_local(cfg, resume=has_local_checkpoint(cfg))
    else:
        run_finetune(cfg, fail_on_stall=args.fail_on_stall)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="bi-encoder contrastive fine-tuning (sentence-transformers under Ray Train)")
    p.add_argument("--config", help="fine-tuning YAML (configs/finetune/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its run.output_dir) from its "
                   "latest checkpoint")
    p.add_argument("--no-ray", action="store_true", help="train in this process (one worker, no Ray); an "
                   "interrupted --no-ray run continues when re-run with the same run.output_dir")
    p.add_argument("--fail-on-stall", action="store_true", help="end the run with an error when no step came for "
                   "run.stall_after_s seconds while Ray cannot schedule what it asked for (default: say so and wait)")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE, e.g. run.output_dir=/tmp/ft train.max_steps=10")
    p.set_defaults(func=_run)
