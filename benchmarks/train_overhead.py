"""Ray Train overhead: the same MSM model, batches and steps through (a) the bare in-process PyTorch loop and
(b) Ray Train with 1 worker, then (c) Ray Train with 2 DDP workers (gloo) on CPU.

Steady-state steps/s = steps after ``--warmup`` over their wall-clock span in ``metrics.jsonl`` (so Ray's report waits
count); ``median_step_s`` is the compute of one step alone; ``wall_s`` includes start-up (Ray, worker group, Ray Data
tokenisation). Every mode runs torch with as many threads as its worker holds CPUs (Ray sets OMP_NUM_THREADS so).
Peak memory = the training process's max RSS.
Each mode runs in a fresh subprocess, one after the other.

    python benchmarks/train_overhead.py                     # e5-small, 2 docs x 8 sentences x 32 tokens, 30 steps
    python benchmarks/train_overhead.py --model tiny-random --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "train_overhead.json"


def run_mode(mode: str, args: argparse.Namespace, out: Path) -> dict:
    workers = 2 if mode == "ray-2" else 1
    cpus = 1.0 if workers == 1 else 0.75
    overrides = [f"model.encoder={args.model}", f"optim.max_steps={args.steps}", "validation.every_steps=-1",
                 "run.tensorboard=false", f"run.checkpoint_every={args.steps}", f"run.output_dir={out}",
                 f"data.docs_per_batch={args.docs}", "model.max_sentences=8", "model.max_tokens=32",
                 "data.max_docs_per_lang=16", f"run.num_workers={workers}",
                 f"run.cpus_per_worker={cpus}"]
    code = f"""
import os, sys, json
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from msm.config import load_config, parse_overrides
from msm.train.config import PretrainConfig
from msm.train.trainer import run_local, run_pretraining
cfg = load_config({str(REPO / 'configs/pretrain/tiny-cpu.yaml')!r}, PretrainConfig, parse_overrides({overrides!r}))
if {mode!r} == "bare":
    run_local(cfg)
else:
    import ray
    ray.init(num_cpus=2, log_to_driver=False)
    run_pretraining(cfg, log=lambda *a: None)
"""
    t0 = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, int(cpus))))  # as Ray sets it for a worker holding `cpus` CPUs
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [r["step_s"] for r in rows[args.warmup:]]
    span = rows[-1]["time"] - rows[args.warmup - 1]["time"]  # wall clock of the steady steps, reports included
    return {"mode": mode, "workers": workers, "steps": len(rows), "wall_s": round(wall, 1),
            "median_step_s": round(statistics.median(steady), 4), "mean_step_s": round(statistics.mean(steady), 4),
            "steps_per_s": round((len(rows) - args.warmup) / span, 3),
            "peak_rss_mb": round(max(r["max_rss_mb"] for r in rows), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="e5-small")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--docs", type=int, default=2, help="documents per batch (per worker)")
    p.add_argument("--modes", default="bare,ray-1,ray-2")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            r = run_mode(mode, args, Path(tmp) / mode)
            results.append(r)
            print(json.dumps(r), flush=True)
    by = {r["mode"]: r for r in results}
    summary = {}
    if "bare" in by and "ray-1" in by:  # target <= 1.05
        summary["bare_over_ray1_steps_per_s"] = round(by["bare"]["steps_per_s"] / by["ray-1"]["steps_per_s"], 3)
    if "ray-1" in by and "ray-2" in by:  # 2 workers process 2x the documents per step
        summary["ray2_over_ray1_docs_per_s"] = round(2 * by["ray-2"]["steps_per_s"] / by["ray-1"]["steps_per_s"], 3)
    print(f"{'mode':8} {'median s/step':>14} {'steps/s':>8} {'wall s':>7} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['mode']:8} {r['median_step_s']:14.3f} {r['steps_per_s']:8.3f} {r['wall_s']:7.1f} {r['peak_rss_mb']:12.0f}")
    print(json.dumps(summary))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, {"benchmark": "train_overhead", "model": args.model, "docs_per_batch": args.docs,
                            "sentences": 8, "tokens": 32, "results": results, "summary": summary})


if __name__ == "__main__":
    main()
