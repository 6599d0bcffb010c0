"""Does the streamed input starve the training loop? Steady-state step time, streamed vs in memory, one run.

The same MSM model (e5-small by default), the same batch shape and the same optimiser step
(``msm.train.loop.accumulate_gradients`` + AdamW) are timed with three inputs, interleaved in rounds so machine
noise hits all three alike:

- ``memory``: batches taken from the stream beforehand and held as padded tensors (the old loop's list);
- ``stream``: ``next()`` of the worker's :class:`msm.train.stream.BatchStream` reading the corpus files directly
  (the loop without Ray);
- ``ray``: the same stream over the Ray Data iterator a Ray Train worker gets (``msm.train.shards.RankShards``,
  a local Ray in this process).

A step's time includes getting its batch. Target (issue "Pretraining at cluster scale"): streamed ≤ 1.05 × memory.

    python benchmarks/stream_step.py                      # e5-small, 4 documents x 16 sentences x 64 tokens
    python benchmarks/stream_step.py --encoder tiny-random --rounds 3 --steps 5     # seconds
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "platform"))
RESULTS = REPO / "benchmarks" / "results" / "stream_step.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoder", default="e5-small")
    p.add_argument("--docs", type=int, default=4)
    p.add_argument("--sentences", type=int, default=16)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=4, help="rounds of (memory, stream, ray)")
    p.add_argument("--steps", type=int, default=6, help="timed steps per input and round (after one warm-up)")
    p.add_argument("--data-dir", default=os.environ.get("MSM_DATA_DIR", str(REPO.parent / "shared" / "data")))
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import itertools

    import ray
    import torch

    from msm.config import load_config, parse_overrides
    from msm.model.msm import MSMModel
    from msm.train.config import PretrainConfig
    from msm.train.corpus import build_local, location
    from msm.train.loop import accumulate_gradients
    from msm.train.shards import RankShards
    from msm.train.stream import open_stream

    work = Path(tempfile.mkdtemp(prefix="msm-stream-step-"))
    cfg = load_config(REPO / "configs" / "pretrain" / "e5-small-cpu.yaml", PretrainConfig, parse_overrides([
        f"model.encoder={args.encoder}", f"model.max_sentences={args.sentences}", f"model.max_tokens={args.tokens}",
        f"data.docs_per_batch={args.docs}", "data.max_docs_per_lang=40", f"data.data_dir={args.data_dir}",
        f"run.output_dir={work}"]))
    manifest = build_local(cfg, log=print)
    need = args.rounds * (args.steps + 1)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    loc = location(cfg)
    files = [f["path"] for f in manifest["files"]]
    shard = RankShards(loc.path, files, cfg.run.seed, loc.fs).configure({"train": None}, 1, None, None)[0]["train"]
    inputs = {"memory": iter(list(itertools.islice(open_stream(cfg, manifest, 0, 1), need))),
              "stream": open_stream(cfg, manifest, 0, 1), "ray": open_stream(cfg, manifest, 0, 1, shard)}
    torch.manual_seed(0)
    model = MSMModel.from_config(cfg.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    times: dict[str, list[float]] = {k: [] for k in inputs}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for name, source in inputs.items():
            for s in range(args.steps + 1):
                t = time.perf_counter()
                batch = next(source)
                opt.zero_grad(set_to_none=True)
                accumulate_gradients(model, [batch], torch.device("cpu"))
                opt.step()
                if s:  # the first step of each round warms the input up (a fresh Ray Data read, a file open)
                    times[name].append(time.perf_counter() - t)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {statistics.median(v):.3f}s" for k, v in times.items()),
              flush=True)
    ray.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [{"input": k, "median_step_s": round(med[k], 4), "mean_step_s": round(statistics.fmean(v), 4),
             "ratio_to_memory": round(med[k] / med["memory"], 3), "steps": len(v)} for k, v in times.items()]
    print(f"\n{args.encoder}, {args.docs} x {args.sentences} x {args.tokens}, {need} batches of {manifest['blocks']} "
          f"blocks; load {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"{'input':8} {'median s':>9} {'mean s':>8} {'x memory':>9}")
    for row in rows:
        print(f"{row['input']:8} {row['median_step_s']:9.3f} {row['mean_step_s']:8.3f} {row['ratio_to_memory']:9.3f}")
    worst = max(r["ratio_to_memory"] for r in rows if r["input"] != "memory")
    print(f"target streamed <= 1.05 x memory: {'met' if worst <= 1.05 else 'NOT met'} (worst {worst:.3f})")
    out = {"benchmark": "stream_step", "encoder": args.encoder, "shape": [args.docs, args.sentences, args.tokens],
           "rounds": args.rounds, "steps_per_round": args.steps, "rows": rows, "target_met": worst <= 1.05,
           "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "command": "python benchmarks/stream_step.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
