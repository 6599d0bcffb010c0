"""``msm index --corpus FILE --out LOCATION [--model M]``: encode a corpus with Ray Data and build a faiss index."""

from __future__ import annotations

import argparse

from msm.commands import add_out, positive_int


def _run(args: argparse.Namespace) -> int:
    from msm.indexing import build_index  # lazy: numpy, pyarrow

    build_index(args.corpus, args.model, args.out, kind=args.kind, batch_size=args.batch_size,
                max_length=args.max_length, pool_size=args.pool_size, num_gpus=args.num_gpus,
                overwrite=args.overwrite)
    return 0


def _gpus(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected GPUs >= 0, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="encode a corpus (JSONL/Parquet with id, text) with Ray Data; build a faiss index")
    p.add_argument("--corpus", required=True, help="a .jsonl/.parquet file or a folder of them, local or a URI; a bad "
                   "line is quarantined (out/quarantine), not indexed")
    p.add_argument("--model", default="e5-small", help="HF folder, MSM export, hub id or 'e5-small' (default: e5-small)")
    add_out(p, required=True)
    p.add_argument("--kind", default="flat", choices=["flat", "ivf", "hnsw"], help="faiss index kind (default: flat)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="texts per encoder batch (default: 64)")
    p.add_argument("--max-length", type=positive_int, default=256, help="tokens per passage (default: 256)")
    p.add_argument("--pool-size", type=positive_int, default=1,
                   help="encoder actors (one per GPU or a few CPU cores each) (default: 1)")
    p.add_argument("--num-gpus", type=_gpus, default=0.0, help="GPUs per encoder actor (default: 0: CPU)")
    p.set_defaults(func=_run)
