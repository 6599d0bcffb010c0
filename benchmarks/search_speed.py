"""Search speed and recall: msm ``SearchIndex`` vs raw faiss on the same index; IVF-Flat / HNSW recall@10.

Vectors (L2-normalised, 384-dim like e5-small): ``random`` = isotropic Gaussian, the hardest case for approximate
search (no structure to exploit); ``clustered`` = a Gaussian mixture around 1,000 random centres with noise of
the centre's norm (cosine ~0.7 to the centre, ~0.5 between members), a stand-in for real sentence embeddings; or
``--vectors FILE.npy`` with real embeddings ([n, dim] float32). Queries are held out from the same distribution.

Per index kind at the ``SearchIndex.build`` defaults (flat; ivf nlist = 4·sqrt(n), nprobe nlist/8; hnsw M 32,
efConstruction 200, efSearch 128): build seconds (wall clock, all threads); batch QPS (all queries in one call)
and single-query latency (one query a call, msm and faiss interleaved) through ``SearchIndex.search`` and through
the wrapped faiss index's own ``search`` (the difference is msm's input checks and id mapping); recall@10
against exact search. Then a sweep of nprobe / efSearch shows what other settings cost. Searches are
timed in process CPU time with faiss on ``--threads`` threads (default 1): on a shared machine wall-clock time
mostly measures waiting for a core, CPU time the work done.

    python benchmarks/search_speed.py [--n 100000] [--data random,clustered]   # writes results/search_speed.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from msm.retrieval.index import SearchIndex
from harness import write_results


def normalise(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def vectors(kind: str, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        return normalise(rng.standard_normal((n, dim), dtype=np.float32))
    centres = normalise(rng.standard_normal((1000, dim), dtype=np.float32))
    noise = rng.standard_normal((n, dim), dtype=np.float32) / np.sqrt(dim)
    return normalise(centres[rng.integers(0, len(centres), n)] + noise)


def recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def batch_qps(fns: dict, queries: np.ndarray, k: int, reps: int) -> dict[str, float]:
    """Queries/s of each search function on the whole batch: best of ``reps`` runs (the least disturbed by other
    load on the machine), the functions interleaved."""
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.process_time()
            fn(queries, k)
            times[name].append(time.process_time() - start)
    return {name: len(queries) / min(t) for name, t in times.items()}


def single_latency_us(fns: dict, queries: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-query microseconds, one query a call; the functions take turns going first (the second run of a query
    finds its data in cache)."""
    out = {name: [] for name in fns}
    for i, q in enumerate(queries):
        q = q[None, :]
        for name in list(fns)[:: 1 if i % 2 else -1]:
            start = time.process_time_ns()
            fns[name](q, k)
            out[name].append((time.process_time_ns() - start) / 1e3)
    return {name: np.asarray(v) for name, v in out.items()}


def measure(index: SearchIndex, queries: np.ndarray, exact: np.ndarray | None, k: int, reps: int,
            n_single: int) -> dict:
    fns = {"faiss": index.index.search, "msm": index.search}
    index.search(queries[:10], k)  # warm-up
    qps = batch_qps(fns, queries, k, reps)
    lat = single_latency_us(fns, queries[:n_single], k)
    return {
        "recall_at_k": 1.0 if exact is None else recall_at(index.index.search(queries, k)[1], exact),
        "batch_qps": qps, "batch_overhead_pct": 100 * (qps["faiss"] / qps["msm"] - 1),
        "single_us": {name: {"p50": float(np.median(v)), "p99": float(np.percentile(v, 99)), "mean": float(v.mean())}
                      for name, v in lat.items()},
        "single_overhead_pct": 100 * (float(np.median(lat["msm"])) / float(np.median(lat["faiss"])) - 1),
    }


def run(name: str, x: np.ndarray, queries: np.ndarray, args) -> dict:
    import faiss

    threads = faiss.omp_get_max_threads()
    ids = [f"d{i}" for i in range(len(x))]
    rows, sweep, exact = {}, [], None
    print(f"\n{name}: {len(x)} x {x.shape[1]}, {len(queries)} queries, k={args.k}")
    print(f"{'index':6} {'params':22} {'build s':>8} {'recall':>7} {'faiss q/s':>10} {'msm q/s':>9} {'ovh %':>6} "
          f"{'faiss p50 us':>12} {'msm p50 us':>10} {'ovh %':>6}")
    for kind in ("flat", "ivf", "hnsw"):
        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        index = SearchIndex.build(x, ids, kind=kind, use_gpu=False)
        build = time.perf_counter() - start
        faiss.omp_set_num_threads(args.threads)
        if kind == "flat":
            exact = index.index.search(queries, args.k)[1]
        row = measure(index, queries, None if kind == "flat" else exact, args.k, args.reps, args.single)
        row.update(build_s=build, params={p: v for p, v in index.meta.items() if p not in ("dim", "kind", "model",
                                                                                        "count")})
        rows[kind] = row
        params = ",".join(f"{p}={v}" for p, v in row["params"].items()) or "exact"
        print(f"{kind:6} {params:22} {build:8.1f} {row['recall_at_k']:7.3f} "
              f"{row['batch_qps']['faiss']:10.0f} {row['batch_qps']['msm']:9.0f} {row['batch_overhead_pct']:6.1f} "
              f"{row['single_us']['faiss']['p50']:12.1f} {row['single_us']['msm']['p50']:10.1f} "
              f"{row['single_overhead_pct']:6.1f}")
        knob, values = {"ivf": ("nprobe", args.nprobe), "hnsw": ("efSearch", args.ef_search)}.get(kind, (None, []))
        for value in values:
            if kind == "ivf":
                index.index.nprobe = value
            else:
                index.index.hnsw.efSearch = value
            ann = index.index.search(queries, args.k)[1]
            qps = batch_qps({"faiss": index.index.search}, queries, args.k, args.reps)["faiss"]
            sweep.append({"index": kind, knob: value, "recall_at_k": recall_at(ann, exact), "batch_qps": qps})
            print(f"{'':6} {f'{knob}={value}':22} {'':8} {sweep[-1]['recall_at_k']:7.3f} {qps:10.0f}")
    return {"n": len(x), "dim": int(x.shape[1]), "queries": len(queries), "indexes": rows, "sweep": sweep}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--data", default="random,clustered", help="comma-separated: random, clustered")
    ap.add_argument("--vectors", default=None, help="a [n, dim] .npy of real embeddings instead of --data")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="faiss threads while searching (building uses all)")
    ap.add_argument("--nprobe", default="16,32,64,256", help="IVF sweep around the default nlist/8")
    ap.add_argument("--ef-search", default="256,512", help="HNSW sweep beyond the default 128")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "search_speed.json"))
    args = ap.parse_args(argv)
    args.nprobe = [int(v) for v in args.nprobe.split(",") if v]
    args.ef_search = [int(v) for v in args.ef_search.split(",") if v]
    import faiss

    rng = np.random.default_rng(0)
    if args.vectors:
        x = normalise(np.load(args.vectors))
        perm = rng.permutation(len(x))
        datasets = {Path(args.vectors).name: (x[perm[args.queries:]], x[perm[:args.queries]])}
    else:
        datasets = {}
        for kind in args.data.split(","):
            x = vectors(kind, args.n + args.queries, args.dim, rng)
            datasets[kind] = (x[args.queries:], x[:args.queries])
    results = {name: run(name, x, q, args) for name, (x, q) in datasets.items()}
    write_results(args.out, {"faiss": faiss.__version__, "cpus": os.cpu_count(), "search_threads": args.threads,
                                 "timing": "process CPU time", "k": args.k, "reps": args.reps,
                                 "single_queries": args.single, "datasets": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
