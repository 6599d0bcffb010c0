"""``msm tune --config configs/tune/X.yaml [--out LOCATION] [--overwrite] [KEY=VALUE ...]`` or
``msm tune --resume SWEEP_DIR``: a Ray Tune sweep over pretraining knobs."""

from __future__ import annotations

import argparse

from msm.commands import add_out, add_overrides, deprecated, overrides_with_out
from msm.errors import MSMError
from msm.tune import load_sweep, run_sweep

def _run(args: argparse.Namespace) -> int:
    from msm.tune.runner import load_saved_sweep  # lazy: pyarrow, ray
    from msm.uri import resolve  # lazy: pyarrow

    resume = args.resume is not None
    if resume and args.overwrite:
        raise MSMError("--resume continues a sweep as it is; --overwrite would start it over: pass one of them")
    if isinstance(args.resume, str):  # --resume SWEEP_DIR: the sweep's own saved config
        if args.config or args.overrides or args.out:
            raise MSMError("--resume SWEEP_DIR continues a sweep with its saved config; leave out --config, --out "
                           "and key=value overrides")
        folder = resolve(args.resume)  # a path or a URI
        if not folder.join("sweep.yaml").is_file():
            raise MSMError(f"--resume {args.resume}: no sweep.yaml there; pass the output_dir of an earlier msm tune run")
        sweep = load_saved_sweep(folder.uri)
    else:
        if not args.config:
            raise MSMError("pass --config FILE (a new sweep) or --resume SWEEP_DIR (continue one)")
        if resume:
            deprecated("msm tune --config FILE --resume", "msm tune --resume SWEEP_DIR (the sweep's output_dir)")
        sweep = load_sweep(args.config, overrides_with_out(args, "output_dir"))  # the space is checked before Ray
    tune_verbose = args.tune_verbose if args.tune_verbose is not None else int(args.verbose)
    outcome = run_sweep(sweep, resume=resume, verbose=tune_verbose, fail_on_stall=args.fail_on_stall,
                        overwrite=args.overwrite)
    return 130 if outcome.interrupted else 0

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="Ray Tune sweep over pretraining knobs (ASHA, grid/random/optuna)")
    p.add_argument("--config", help="sweep YAML for a new sweep, e.g. configs/tune/tiny-cpu.yaml (default: none)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="SWEEP_DIR",
                   help="continue the interrupted sweep in SWEEP_DIR (its output_dir) with its saved config; finished "
                        "trials are kept (default: none)")
    add_out(p, "output_dir")
    p.add_argument("--tune-verbose", dest="tune_verbose", type=int, default=None, choices=(0, 1, 2),
                   help="Ray Tune's own status tables (default: 0, or 1 with --verbose; msm's sweep progress line "
                        "shows either way)")
    p.add_argument("--fail-on-stall", action="store_true", help="end the sweep with an error when no trial logged "
                   "a step for overrides.run.stall_after_s seconds while Ray cannot schedule what it asked for "
                   "(default: say so and wait)")
    add_overrides(p, "num_samples=8 overrides.optim.max_steps=50")
    p.set_defaults(func=_run)
