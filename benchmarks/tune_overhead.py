"""Ray Tune overhead: wall time of an N-trial sweep against the same N runs one after the other, (a) as bare
in-process loops (``msm.train.trainer.run_local``) and (b) as Ray Train runs (``run_pretraining``).

The trials differ only in ``model.memory_bank_size`` (a grid of N values), run one at a time (FIFO, no ASHA), with
the sweep file's fixed overrides (steps, validation cadence). Every mode does the same training and validation, so
the differences are start-up and coordination: Ray Train's worker group and Ray Data tokenisation per run, then
Tune's trial actors, searcher and result handling on top. All three modes run in this process, one after the other.

    python benchmarks/tune_overhead.py                                   # tiny sweep, 4 trials
    python benchmarks/tune_overhead.py --sweep configs/tune/e5-small-cpu.yaml --trials 2 --steps 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from harness import write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "tune_overhead.json"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from msm.config import config_from_dict, merge, to_dict
    from msm.train.config import PretrainConfig
    from msm.train.trainer import ensure_ray, run_local, run_pretraining
    from msm.tune.config import SweepConfig, build_sweep
    from msm.tune.runner import run_sweep

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sweep", default=str(REPO / "configs" / "tune" / "tiny-cpu.yaml"))
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None, help="optim.max_steps per trial (default: the sweep's)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    import yaml

    raw = yaml.safe_load(Path(args.sweep).read_text())
    banks = [0, *(32 * 2 ** i for i in range(args.trials - 1))]
    overrides = dict(raw.get("overrides") or {})
    if args.steps:
        overrides = merge(overrides, {"optim": {"max_steps": args.steps}})
    work = Path(tempfile.mkdtemp(prefix="msm-tune-overhead-"))
    cfg = SweepConfig(**{**{k: v for k, v in raw.items() if k not in ("space", "asha", "overrides")},
                         "overrides": overrides, "space": {"model.memory_bank_size": {"grid": banks}},
                         "searcher": "grid", "num_samples": 1, "max_concurrent_trials": 1,
                         "output_dir": str(work / "tune"), "name": "overhead"})
    cfg.asha.enabled = False
    sweep = build_sweep(cfg, args.sweep, Path(args.sweep).parent)

    def trial_cfg(bank: int, out: Path) -> PretrainConfig:
        return config_from_dict(merge(sweep.base, {"model": {"memory_bank_size": bank}, "run": {"output_dir": str(out)}}),
                                PretrainConfig, "tune_overhead")

    if cfg.train_poll_s is not None:  # the sweep's trials poll at this interval; give the plain Train runs the same
        os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = str(cfg.train_poll_s)
    walls: dict[str, float] = {}
    t = time.perf_counter()
    for bank in banks:
        run_local(trial_cfg(bank, work / "bare" / str(bank)))
    walls["bare_sequential_s"] = time.perf_counter() - t
    ensure_ray()
    t = time.perf_counter()
    for bank in banks:
        run_pretraining(trial_cfg(bank, work / "train" / str(bank)), log=lambda *_: None)
    walls["ray_train_sequential_s"] = time.perf_counter() - t
    t = time.perf_counter()
    outcome = run_sweep(sweep, verbose=0, log=lambda *_: None)
    walls["tune_s"] = time.perf_counter() - t
    n = len(banks)
    result = {
        "sweep": args.sweep, "trials": n, "memory_bank_sizes": banks,
        "steps_per_trial": sweep.base["optim"]["max_steps"], "model": sweep.base["model"]["encoder"],
        "trials_finished": sum(r["status"] == "TERMINATED" for r in outcome.rows),
        **{k: round(v, 1) for k, v in walls.items()},
        "tune_vs_ray_train": round(walls["tune_s"] / walls["ray_train_sequential_s"], 3),
        "tune_vs_bare": round(walls["tune_s"] / walls["bare_sequential_s"], 3),
        "tune_overhead_per_trial_s": round((walls["tune_s"] - walls["ray_train_sequential_s"]) / n, 1),
        "ray_train_overhead_per_run_s": round((walls["ray_train_sequential_s"] - walls["bare_sequential_s"]) / n, 1),
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "config": to_dict(trial_cfg(0, work)),
    }
    for k in ("bare_sequential_s", "ray_train_sequential_s", "tune_s", "tune_vs_ray_train", "tune_vs_bare",
              "tune_overhead_per_trial_s", "ray_train_overhead_per_run_s", "trials_finished"):
        print(f"{k:32s} {result[k]}")
    write_results(args.out, result)
    print(f"wrote {args.out} (work dir {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
