"""``msm index --corpus FILE --model M --out DIR``: encode a corpus with Ray Data and build a faiss index."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from msm.retrieval.build import build_index

    build_index(args.corpus, args.model, args.out, kind=args.kind, batch_size=args.batch_size,
                max_length=args.max_length, pool_size=args.pool_size, num_gpus=args.num_gpus)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="encode a corpus (JSONL/Parquet with id, text) with Ray Data; build a faiss index")
    p.add_argument("--corpus", required=True, help="a .jsonl/.parquet file or a folder of them")
    p.add_argument("--model", default="e5-small", help="HF folder, MSM export, hub id or 'e5-small'")
    p.add_argument("--out", required=True, help="output folder: embeddings/ shards, index/, build.json")
    p.add_argument("--kind", default="flat", choices=["flat", "ivf", "hnsw"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--pool-size", type=int, default=1, help="encoder actors (one per GPU or a few CPU cores each)")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per encoder actor (0: CPU)")
    p.set_defaults(func=_run)
