"""Encode a large corpus with Ray Data and build a faiss index: ``jobs/build_index.py`` / ``msm index``.

corpus (JSONL or Parquet with ``id`` and ``text``; a file or a folder of them) → Ray Data blocks →
``map_batches(PassageEmbedder)`` on an actor pool (GPUs when asked) → embedding shards
(``<out>/embeddings/*.parquet``: id, embedding) → merged into one :class:`SearchIndex` (``<out>/index``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from msm.errors import MSMError
from msm.io import atomic_dir


class PassageEmbedder:
    """Ray Data callable: ``{"id", "text"}`` → ``{"id", "embedding"}`` (L2-normalised float32, passage prefix)."""

    def __init__(self, model: str, max_length: int, batch_size: int) -> None:
        from msm.retrieval.encoder import Encoder

        self.encoder = Encoder(model, max_length=max_length, batch_size=batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        emb = self.encoder.encode([str(t) for t in batch["text"]], kind="passage")
        return {"id": batch["id"], "embedding": np.asarray(emb, dtype=np.float32)}


def read_corpus(path: str | Path):
    """A Ray Dataset with columns ``id`` (str) and ``text`` (str) from JSONL or Parquet files."""
    import ray.data

    p = Path(path).expanduser()
    files = sorted(p.glob("*")) if p.is_dir() else [p]
    if not p.exists() or not files:
        raise MSMError(f"{p}: corpus not found; pass a .jsonl/.parquet file or a folder of them")
    kinds = {f.suffix for f in files}
    try:
        if kinds <= {".jsonl", ".json"}:
            ds = ray.data.read_json([str(f) for f in files], lines=True)
        elif kinds == {".parquet"}:
            ds = ray.data.read_parquet([str(f) for f in files])
        else:
            raise MSMError(f"{p}: corpus files must all be .jsonl or all .parquet (found {sorted(kinds)})")
        columns = ds.columns()
    except MSMError:
        raise
    except Exception as exc:  # pyarrow/ray raise several types for malformed files
        raise MSMError(f"{p}: unreadable corpus ({type(exc).__name__}: {str(exc)[:200]}); every line must be a "
                       "JSON object with id and text (or a Parquet file with those columns)") from exc
    missing = [c for c in ("id", "text") if c not in (columns or [])]
    if missing:
        raise MSMError(f"{p}: corpus lacks column(s) {missing} (has {columns}); each record needs id and text")
    return ds.select_columns(["id", "text"]).map_batches(
        lambda b: {"id": np.asarray([str(x) for x in b["id"]], dtype=object),
                   "text": np.asarray([str(x) for x in b["text"]], dtype=object)}, batch_format="numpy")


def build_index(corpus: str | Path, model: str, out_dir: str | Path, kind: str = "flat", batch_size: int = 64,
                max_length: int = 256, pool_size: int = 1, num_gpus: float = 0.0, log=print) -> Path:
    """Encode ``corpus`` in parallel, write embedding shards, merge them into an index; returns ``out_dir``."""
    import pyarrow.parquet as pq
    import ray
    import ray.data

    from msm.models.resolve import resolve_model
    from msm.retrieval.index import SearchIndex

    if not ray.is_initialized():
        ray.init()
    t0 = time.perf_counter()
    model_path = resolve_model(model)
    ds = read_corpus(corpus).map_batches(
        PassageEmbedder, fn_constructor_kwargs={"model": model_path, "max_length": max_length,
                                                "batch_size": batch_size},
        batch_size=batch_size * 4, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool_size),
        **({"num_gpus": num_gpus} if num_gpus else {}))
    out = Path(out_dir)
    with atomic_dir(out, overwrite=True) as tmp:
        ds.write_parquet(str(tmp / "embeddings"))
        shards = sorted((tmp / "embeddings").glob("*.parquet"))
        tables = [pq.read_table(f) for f in shards]
        ids = [i for t in tables for i in t.column("id").to_pylist()]
        if not ids:
            raise MSMError(f"{corpus}: the corpus has no records")
        if len(set(ids)) != len(ids):
            raise MSMError(f"{corpus}: duplicate ids (e.g. {next(i for i in ids if ids.count(i) > 1)!r}); ids must "
                           "be unique to map hits back to passages")
        emb = np.concatenate([np.stack(t.column("embedding").to_numpy(zero_copy_only=False)) for t in tables])
        index = SearchIndex.build(emb.astype(np.float32), ids, kind=kind, model=str(model), use_gpu=num_gpus > 0)
        index.save(tmp / "index")
        stats = {"corpus": str(corpus), "model": str(model), "kind": kind, "passages": len(ids),
                 "shards": len(shards), "dim": int(emb.shape[1]), "seconds": round(time.perf_counter() - t0, 1)}
        (tmp / "build.json").write_text(json.dumps(stats, indent=2))
    log(f"indexed {stats['passages']} passages from {stats['shards']} shards in {stats['seconds']}s → {out / 'index'}")
    return out
