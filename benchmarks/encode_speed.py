"""Sentences/s of our ``Encoder`` vs sentence-transformers ``encode`` on the same model and texts, one run.

Texts: XQuAD-R candidate sentences of several languages. Both sides: same model folder (mean pooling,
"passage: " prefix, max 128 tokens, batch 64, CPU threads as configured). Also checks the two agree
(min cosine), which cross-checks the evaluation numbers made with our encoder. The 1-minute load average is
recorded before and after each side, and the process's CPU time beside the wall-clock time (the steadier of the
two on a shared machine).

    python benchmarks/encode_speed.py [--n 2000] [--model e5-small]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from harness import write_results

RESULTS = Path(__file__).parent / "results" / "encode_speed.json"


def texts(data_dir: Path, n: int) -> list[str]:
    from msm.eval.tasks.lareqa import LANGS, load

    data = load(data_dir / "xquad-r", LANGS)
    rng = np.random.default_rng(0)
    pool = [s for _, s, _ in data.candidates]
    return [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="e5-small")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    from sentence_transformers import SentenceTransformer, models

    from msm.smoke import default_data_dir
    from msm.encoders.resolve import resolve_model
    from msm.retrieval.encoder import Encoder

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    sample = texts(data_dir, args.n)
    path = resolve_model(args.model)
    ours = Encoder(path, max_length=128, batch_size=args.batch_size)
    word = models.Transformer(path, max_seq_length=128)
    pooling = models.Pooling(word.get_word_embedding_dimension(), "mean")
    st = SentenceTransformer(modules=[word, pooling,
                                    models.Normalize()], device="cpu")
    rows = {}
    for name, fn in [("ours", lambda: ours.encode(sample, kind="passage")),
                     ("sentence-transformers", lambda: st.encode(["passage: " + t for t in sample],
                                                                 batch_size=args.batch_size))]:
        fn() if len(sample) <= 64 else None
        load, start, start_cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
        emb = np.asarray(fn())
        sec = time.perf_counter() - start
        rows[name] = {"seconds": sec, "sentences_per_s": len(sample) / sec, "emb": emb,
                      "cpu_s": time.process_time() - start_cpu,
                      "load_avg_1m": [load, os.getloadavg()[0]]}
    cos = (rows["ours"]["emb"] * rows["sentence-transformers"]["emb"]).sum(1)
    speedup = rows["ours"]["sentences_per_s"] / rows["sentence-transformers"]["sentences_per_s"]
    print(f"{'encoder':24} {'sentences/s':>12} {'seconds':>8} {'CPU s':>7} {'load 1m':>10}")
    for name, r in rows.items():
        load = "→".join(f"{x:.1f}" for x in r["load_avg_1m"])
        print(f"{name:24} {r['sentences_per_s']:12.1f} {r['seconds']:8.1f} {r['cpu_s']:7.1f} {load:>10}")
    print(f"ours / sentence-transformers: {speedup:.2f}x; min cosine between them {cos.min():.6f}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (both, one process)")
    RESULTS.parent.mkdir(exist_ok=True)
    write_results(RESULTS, {
        "model": args.model, "n": len(sample), "batch_size": args.batch_size, "speedup": speedup,
        "min_cosine": float(cos.min()),
        "rows": {k: {key: v[key] for key in ("seconds", "sentences_per_s", "cpu_s", "load_avg_1m")}
                 for k, v in rows.items()},
        "cpu_threads": os.cpu_count(), "command": " ".join(["python", "benchmarks/encode_speed.py", *sys.argv[1:]]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


if __name__ == "__main__":
    main()
