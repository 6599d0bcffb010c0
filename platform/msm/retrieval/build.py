"""Encode a large corpus with Ray Data and build a faiss index: ``jobs/build_index.py`` / ``msm index``.

corpus (JSONL or Parquet with ``id`` and ``text``; a file or a folder of them, local or any pyarrow URI) → Ray Data
blocks → ``map_batches(PassageEmbedder)`` on an actor pool (GPUs when asked) → embedding shards written by Ray Data
(``<out>/embeddings/*.parquet``: id, embedding) → read back by one Ray task that checks one vector per corpus record
and builds the :class:`SearchIndex` (``<out>/index``). Everything is staged beside ``<out>`` and published with
``build.json`` last (:func:`msm.uri.commit_dir`); the driver never holds the vectors.
"""

from __future__ import annotations

import posixpath
import time
from pathlib import Path

import numpy as np

from msm.errors import MSMError


class PassageEmbedder:
    """Ray Data callable: ``{"id", "text"}`` → ``{"id", "embedding"}`` (L2-normalised float32, passage prefix)."""

    def __init__(self, model: str, max_length: int, batch_size: int) -> None:
        from msm.retrieval.encoder import Encoder

        self.encoder = Encoder(model, max_length=max_length, batch_size=batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        emb = self.encoder.encode([str(t) for t in batch["text"]], kind="passage")
        return {"id": batch["id"], "embedding": np.asarray(emb, dtype=np.float32)}


def read_corpus(path: str | Path):
    """A Ray Dataset with columns ``id`` (str) and ``text`` (str) from JSONL or Parquet files (a local path or URI)."""
    import ray.data

    from msm.uri import resolve

    loc = resolve(path)
    if not loc.exists():
        raise MSMError(f"{loc.uri}: corpus not found; pass a .jsonl/.parquet file or a folder of them")
    files = [loc.path] if loc.is_file() else loc.files()
    if not files:
        raise MSMError(f"{loc.uri}: corpus folder is empty; pass a .jsonl/.parquet file or a folder of them")
    kinds = {posixpath.splitext(f)[1] for f in files}
    try:
        if kinds <= {".jsonl", ".json"}:
            ds = ray.data.read_json(files, filesystem=loc.fs)  # pyarrow reads newline-delimited JSON
        elif kinds == {".parquet"}:
            ds = ray.data.read_parquet(files, filesystem=loc.fs)
        else:
            raise MSMError(f"{loc.uri}: corpus files must all be .jsonl or all .parquet (found {sorted(kinds)})")
        columns = ds.columns()
    except MSMError:
        raise
    except Exception as exc:  # pyarrow/ray raise several types for malformed files
        raise MSMError(f"{loc.uri}: unreadable corpus ({type(exc).__name__}: {str(exc)[:200]}); every line must be a "
                       "JSON object with id and text (or a Parquet file with those columns)") from exc
    missing = [c for c in ("id", "text") if c not in (columns or [])]
    if missing:
        raise MSMError(f"{loc.uri}: corpus lacks column(s) {missing} (has {columns}); each record needs id and text")
    return ds.select_columns(["id", "text"]).map_batches(
        lambda b: {"id": np.asarray([str(x) for x in b["id"]], dtype=object),
                   "text": np.asarray([str(x) for x in b["text"]], dtype=object)}, batch_format="numpy")


def index_from_shards(staged, expected: int, kind: str, model: str, use_gpu: bool, batch_rows: int = 65_536) -> dict:
    """Read the embedding shards under ``staged/embeddings`` back, check there is one vector per corpus record,
    build the faiss index and save it to ``staged/index``; returns the build statistics. Runs as a Ray task: the
    index (not the driver) holds the vectors."""
    import tempfile

    import pyarrow.dataset as pads

    from msm.retrieval.index import SearchIndex

    shards = staged.join("embeddings").files(".parquet")
    ids: list[str] = []
    parts = []
    for batch in pads.dataset(shards, filesystem=staged.fs, format="parquet").to_batches(batch_size=batch_rows):
        ids.extend(batch.column("id").to_pylist())
        parts.append(np.stack(batch.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32))
    if len(ids) != expected:
        raise MSMError(f"{staged.uri}: {len(ids)} vectors in {len(shards)} embedding shards for {expected} corpus "
                       "records: shards were lost; nothing was published, re-run msm index")
    if not ids:
        raise MSMError("the corpus has no records")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise MSMError(f"duplicate ids (e.g. {dup!r}); ids must be unique to map hits back to passages")
    emb = np.concatenate(parts)
    index = SearchIndex.build(emb, ids, kind=kind, model=model, use_gpu=use_gpu)
    if staged.local:
        index.save(staged.join("index").path)
    else:  # saved on local disk, then put beside the shards
        with tempfile.TemporaryDirectory() as tmp:
            index.save(Path(tmp) / "index")
            for f in (Path(tmp) / "index").iterdir():
                staged.join("index", f.name).write_bytes(f.read_bytes())
    return {"kind": kind, "model": model, "passages": len(ids), "shards": len(shards), "dim": int(emb.shape[1])}


def build_index(corpus: str | Path, model: str, out_dir: str | Path, kind: str = "flat", batch_size: int = 64,
                max_length: int = 256, pool_size: int = 1, num_gpus: float = 0.0, log=print) -> str:
    """Encode ``corpus`` with Ray Data into embedding shards at ``out_dir/embeddings``, build the index from them in
    a Ray task (``out_dir/index``) and publish both with ``build.json`` last; returns ``out_dir``."""
    import json

    import ray
    import ray.data

    from msm.models.resolve import resolve_model
    from msm.runtime import ensure_ray
    from msm.uri import commit_dir, resolve, sibling

    ensure_ray()
    t0 = time.perf_counter()
    out = resolve(out_dir)
    staged = sibling(out, "staging")
    staged.delete()  # what a crashed run left
    model_path = resolve_model(model)
    corpus_ds = read_corpus(corpus)
    expected = corpus_ds.count()
    corpus_ds.map_batches(
        PassageEmbedder, fn_constructor_kwargs={"model": model_path, "max_length": max_length,
                                                "batch_size": batch_size},
        batch_size=batch_size * 4, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool_size),
        **({"num_gpus": num_gpus} if num_gpus else {})).write_parquet(staged.join("embeddings").path,
                                                                      filesystem=staged.fs)
    task = ray.remote(num_cpus=1, num_gpus=1 if num_gpus else 0)(index_from_shards)
    try:
        stats = ray.get(task.remote(staged, expected, kind, str(model), num_gpus > 0))
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.as_instanceof_cause(), MSMError):  # a short or duplicated corpus: the user's to see
            raise MSMError(str(exc.cause)) from exc
        raise
    stats.update(corpus=str(corpus), seconds=round(time.perf_counter() - t0, 1))
    commit_dir(staged, out, json.dumps(stats, indent=2), manifest_name="build.json")
    log(f"indexed {stats['passages']} passages from {stats['shards']} shards in {stats['seconds']}s → "
        f"{out.join('index').uri}")
    return out.uri
