"""``msm index`` (``jobs/build_index.py``): encode a large corpus with Ray Data and build a faiss index.

A job over the building blocks below it: mining's readers (:mod:`msm.data.sources`), the encoder and the index
(:mod:`msm.retrieval`). It sits beside the other jobs, not in ``msm.retrieval`` (it was ``msm.retrieval.build``),
so data flows one way: ``retrieval`` ← ``data`` ← ``indexing``.

corpus (JSONL or Parquet with ``id`` and ``text``; a file or a folder of them, local or any pyarrow URI) → Ray Data
blocks → ``map_batches(PassageEmbedder)`` on an actor pool (GPUs when asked) → embedding shards written by Ray Data
(``<out>/embeddings/*.parquet``: id, embedding) → read back by one Ray task that checks one vector per corpus record
and builds the :class:`SearchIndex` (``<out>/index``). Everything is staged beside ``<out>`` and published with
``build.json`` last (:func:`msm.uri.commit_dir`); the driver never holds the vectors.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from msm.data.config import InputConfig
from msm.encoders.resolve import check_model
from msm.errors import MSMError
from msm.output import Kind, claim, commit
from msm.retrieval.index import SearchIndex
from msm.runtime import ensure_ray
from msm.uri import resolve, sibling


class PassageEmbedder:
    """Ray Data callable: ``{"id", "text"}`` → ``{"id", "embedding"}`` (L2-normalised float32, passage prefix)."""

    def __init__(self, model: str, max_length: int, batch_size: int) -> None:
        from msm.retrieval.encoder import Encoder  # lazy: torch

        self.encoder = Encoder(model, max_length=max_length, batch_size=batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        emb = self.encoder.encode([str(t) for t in batch["text"]], kind="passage")
        return {"id": batch["id"], "embedding": np.asarray(emb, dtype=np.float32)}


CORPUS_NAME = "in0"  # the mining readers prefix ids with their input's name; an index keeps the corpus's own ids
def _index_settings(text: str) -> dict | None:
    """The settings of an ``msm index`` output's ``build.json`` (an older one, without them: ``{}``, so it counts
    as another settings' index, replaced with ``--overwrite``)."""

    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("verb", "index") != "index" or "passages" not in obj:
        return None
    return obj.get("settings") or {}


OUTPUT = Kind("index", "build.json", frozenset({"build.json", "embeddings", "index", "quarantine"}), _index_settings,
              what="--out")


def corpus_input(path: str | Path):
    """The corpus as one of mining's inputs (:class:`msm.data.config.InputConfig`): ``jsonl`` or ``parquet`` by the
    file's extension (a folder: by its files'), checked before Ray starts (:func:`msm.data.sources.check_input`)."""
    from msm.data.sources import EXTENSIONS, check_input  # lazy: ray

    loc = resolve(path)
    if not loc.exists():
        raise MSMError(f"--corpus {loc.uri}: not found; pass a .jsonl/.parquet file or a folder of them")
    names = [loc.path] if loc.is_file() else loc.files()
    if not names:
        raise MSMError(f"--corpus {loc.uri}: an empty folder; put .jsonl or .parquet files (id, text) there")
    kinds = {next((k for k in ("jsonl", "parquet") if any(f.endswith("." + e) for e in EXTENSIONS[k])), None)
             for f in names}
    if len(kinds) != 1 or None in kinds:
        found = sorted({posixpath.splitext(f)[1] or posixpath.basename(f) for f in names})[:6]
        raise MSMError(f"--corpus {loc.uri}: corpus files must all be .jsonl or all .parquet (found {', '.join(found)}); "
                       "convert them or point --corpus at one kind")
    inp = InputConfig(kind=kinds.pop(), path=loc.uri)
    check_input(inp, 0, Path.cwd())
    return inp


def to_passages(batch: pa.Table) -> pa.Table:
    """Reader records → ``id``, ``text`` and ``reason`` (null: indexed; else why it is quarantined)."""
    ids, texts, reasons = [], [], []
    for r in batch.to_pylist():
        ids.append(r["doc_id"].removeprefix(CORPUS_NAME + ":"))
        text = r["text"] or " ".join(r["sentences"] or [])
        texts.append(text)
        reasons.append(r["error"] or (None if text.strip() else "empty_text"))
    return pa.table({"id": ids, "text": texts, "reason": reasons})


def read_corpus(path: str | Path):
    """The corpus as a Ray Dataset of ``id``, ``text``, ``reason`` rows through mining's readers (a bad line or an
    unreadable file is a row with its ``reason``, naming the file and line; nothing fails the whole corpus)."""
    from msm.data.sources import read_input_dataset  # lazy: ray

    inp = corpus_input(path)
    return read_input_dataset(inp, 0, Path.cwd()).map_batches(to_passages, batch_format="pyarrow")


def index_from_shards(staged, expected: int, kind: str, model: str, use_gpu: bool, batch_rows: int = 65_536) -> dict:
    """Read the embedding shards under ``staged/embeddings`` back, check there is one vector per corpus record,
    build the faiss index and save it to ``staged/index``; returns the build statistics. Runs as a Ray task: the
    index (not the driver) holds the vectors."""



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


def _reason_counts(batch: pa.Table) -> pa.Table:
    codes = [None if r is None else r.split(":", 1)[0] for r in batch.column("reason").to_pylist()]
    found: dict = {}
    for c in codes:
        found[c] = found.get(c, 0) + 1
    return pa.table({"reason": list(found), "count": list(found.values())})


def _kept(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.is_null(batch.column("reason"))).select(["id", "text"])


def _quarantined(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.is_valid(batch.column("reason")))


def build_index(corpus: str | Path, model: str, out_dir: str | Path, kind: str = "flat", batch_size: int = 64,
                max_length: int = 256, pool_size: int = 1, num_gpus: float = 0.0, log=print,
                overwrite: bool = False) -> str:
    """Encode ``corpus`` with Ray Data into embedding shards at ``out_dir/embeddings``, build the index from them in
    a Ray task (``out_dir/index``) and publish both with ``build.json`` last; returns ``out_dir``.

    The corpus is read by mining's readers: a malformed line or an unreadable file is quarantined
    (``out_dir/quarantine``, with its file and line), not indexed, and counted (``input = indexed + quarantined``
    in ``build.json``). The output contract (:mod:`msm.output`) is applied before Ray starts: the same settings'
    complete index is reused, another's is replaced only with ``overwrite``, a folder holding anything else is
    refused; the corpus and the model are checked then too."""

    import ray  # lazy: ray
    import ray.data  # lazy: ray


    out = resolve(out_dir)
    settings = {"corpus": resolve(corpus).uri, "model": str(model), "kind": kind, "max_length": max_length}
    found = claim(out, OUTPUT, settings, overwrite)
    if found.state == "same" and not overwrite:
        log(f"{out.uri} already holds this corpus's index with these settings; reusing it (--overwrite rebuilds it)")
        return out.uri
    corpus_input(corpus)
    model_path = check_model(model, "--model")
    ensure_ray()
    t0 = time.perf_counter()
    staged = sibling(out, "staging")
    staged.delete()  # what a crashed run left
    rows = read_corpus(corpus)
    reasons: dict[str | None, int] = {}
    for r in rows.map_batches(_reason_counts, batch_format="pyarrow").take_all():
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + int(r["count"])
    expected = reasons.pop(None, 0)
    quarantined = sum(reasons.values())
    if not expected:
        raise MSMError(f"--corpus {resolve(corpus).uri}: no record to index ({quarantined} quarantined: "
                       f"{reasons or 'the corpus is empty'}); every line must be a JSON object with id and text "
                       "(or a Parquet file with those columns)")
    rows.map_batches(_kept, batch_format="pyarrow").map_batches(
        PassageEmbedder, fn_constructor_kwargs={"model": model_path, "max_length": max_length,
                                                "batch_size": batch_size},
        batch_size=batch_size * 4, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool_size),
        **({"num_gpus": num_gpus} if num_gpus else {})).write_parquet(staged.join("embeddings").path,
                                                                      filesystem=staged.fs)
    if quarantined:
        rows.map_batches(_quarantined, batch_format="pyarrow").write_parquet(staged.join("quarantine").path,
                                                                             filesystem=staged.fs)
    task = ray.remote(num_cpus=1, num_gpus=1 if num_gpus else 0)(index_from_shards)
    try:
        stats = ray.get(task.remote(staged, expected, kind, str(model), num_gpus > 0))
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.as_instanceof_cause(), MSMError):  # a short or duplicated corpus: the user's to see
            raise MSMError(str(exc.cause)) from exc
        raise
    stats.update(verb="index", settings=settings, corpus=str(corpus), seconds=round(time.perf_counter() - t0, 1),
                 counts={"input": expected + quarantined, "indexed": expected, "quarantined": reasons})
    commit(staged, out, OUTPUT, json.dumps(stats, indent=2))
    log(f"indexed {stats['passages']} passages from {stats['shards']} shards in {stats['seconds']}s → "
        f"{out.join('index').uri}" + (f"; quarantined {quarantined} {reasons} (see {out.join('quarantine').uri})"
                                      if quarantined else ""))
    return out.uri
