"""``msm finetune --config configs/finetune/X.yaml [--out LOCATION] [--overwrite] [KEY=VALUE ...]`` or
``msm finetune --resume RUN_DIR``."""

from __future__ import annotations

import argparse

from msm.commands import add_out, add_overrides, overrides_with_out
from msm.config import new_or_resumed
from msm.errors import MSMError
from msm.finetune.config import FinetuneConfig
from msm.finetune.trainer import has_local_checkpoint, resume_config, run_finetune, run_local


def _run(args: argparse.Namespace) -> int:
    if args.resume and args.no_ray:
        raise MSMError("--resume continues a Ray Train run; for an in-process run re-run --config ... --no-ray")
    if args.resume and args.overwrite:
        raise MSMError("--resume continues a run as it is; --overwrite would start it over: pass one of them")
    cfg = new_or_resumed(args.config, args.resume, overrides_with_out(args, "run.output_dir"), FinetuneConfig,
                         resume_config)
    if args.no_ray:
        run_local(cfg, resume=has_local_checkpoint(cfg) and not args.overwrite, overwrite=args.overwrite)
    else:
        run_finetune(cfg, fail_on_stall=args.fail_on_stall, overwrite=args.overwrite)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="bi-encoder contrastive fine-tuning (sentence-transformers under Ray Train)")
    p.add_argument("--config", help="fine-tuning YAML (configs/finetune/) for a new run (default: none)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (its run.output_dir) from its "
                   "latest checkpoint, with its saved config (default: none)")
    add_out(p, "run.output_dir")
    p.add_argument("--no-ray", action="store_true", help="train in this process (one worker, no Ray); an "
                   "interrupted --no-ray run continues when re-run with the same run.output_dir (default: Ray Train)")
    p.add_argument("--fail-on-stall", action="store_true", help="end the run with an error when no step came for "
                   "run.stall_after_s seconds while Ray cannot schedule what it asked for (default: say so and wait)")
    add_overrides(p, "train.max_steps=10 run.num_workers=2")
    p.set_defaults(func=_run)
