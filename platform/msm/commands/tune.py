"""``msm tune --config configs/tune/X.yaml [--resume] [key=value ...]``: a Ray Tune sweep over pretraining knobs."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from msm.config import parse_overrides
    from msm.tune import load_sweep, run_sweep

    sweep = load_sweep(args.config, parse_overrides(args.overrides))  # the space is checked before Ray starts
    outcome = run_sweep(sweep, resume=args.resume, verbose=args.verbose, fail_on_stall=args.fail_on_stall)
    return 130 if outcome.interrupted else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="Ray Tune sweep over pretraining knobs (ASHA, grid/random/optuna)")
    p.add_argument("--config", required=True, help="sweep YAML, e.g. configs/tune/tiny-cpu.yaml")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep under output_dir/name (finished trials are kept)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Ray Tune progress output")
    p.add_argument("--fail-on-stall", action="store_true", help="end the sweep with an error when no trial logged "
                   "a step for overrides.run.stall_after_s seconds while Ray cannot schedule what it asked for")
    p.add_argument("overrides", nargs="*",
                   help="KEY=VALUE over the sweep YAML, e.g. output_dir=/tmp/sweep num_samples=8 "
                        "overrides.optim.max_steps=50")
    p.set_defaults(func=_run)
