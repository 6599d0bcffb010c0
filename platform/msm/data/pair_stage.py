"""The pair stage of ``msm mine``: one task per language pair, over the staged embeddings of its two languages.

A task reads ``<work>/prepared/part=<lang>/`` of each side in Arrow batches: document ids and document
embeddings go to memory (what the kNN index needs), sentence embeddings to a memory-mapped scratch file, so the
sentence-evidence re-scoring of :func:`msm.data.pair.pair_documents` reads only its candidates' rows. The mined
pairs are written, with both documents' sentence embeddings for the align stage, to
``<work>/pairs_raw/<src>-<tgt>.parquet``. Nothing of the corpus passes through the driver.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from msm.data.config import AlignConfig, PairConfig
from msm.data.embed import nested_vectors, unnest_vectors
from msm.data.pair import pair_documents_with_stats
from msm.uri import Location

RAW_PAIRS = pa.schema([
    ("pair_id", pa.string()), ("src_doc_id", pa.string()), ("src_lang", pa.string()), ("tgt_doc_id", pa.string()),
    ("tgt_lang", pa.string()), ("pair_score", pa.float32()),
    ("src_embeddings", pa.list_(pa.list_(pa.float32()))), ("tgt_embeddings", pa.list_(pa.list_(pa.float32()))),
])


class SentenceStore(Sequence):
    """Sentence embeddings of one language's documents: ``store[d]`` is document ``d``'s (n_d, dim) rows, read
    from a memory map (resident pages are the OS's to drop, not the task's heap)."""

    def __init__(self, rows: np.memmap, starts: np.ndarray, ends: np.ndarray) -> None:
        self.rows, self.starts, self.ends = rows, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, d: int) -> np.ndarray:
        return np.asarray(self.rows[self.starts[d]:self.ends[d]])


@dataclass
class Side:
    lang: str
    ids: list[str]
    docs: np.ndarray  # (n, dim) document embeddings, rows in doc_id order
    sentences: SentenceStore
    chars: np.ndarray  # (n,) characters of each document's sentences: the length-consistency evidence
    uncertain: int = 0  # documents left out: language detected (none declared) below langid.min_confidence


def uncertain_language(declared: pa.Array | pa.ChunkedArray, flags: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Documents whose language nobody declared and language ID gave below ``langid.min_confidence`` (the
    ``low_lang_confidence`` flag of :mod:`msm.data.prepare`)."""
    flagged = np.array([bool(f) and "low_lang_confidence" in f for f in flags.to_pylist()], dtype=bool)
    return flagged & pc.is_null(declared).to_numpy(zero_copy_only=False)


def load_side(prepared: Location, lang: str, scratch: Path, batch_rows: int = 2048,
              skip_uncertain: bool = False) -> Side:
    """One language's staged documents, sorted by ``doc_id`` (the pairs do not depend on file order);
    ``skip_uncertain``: without those of :func:`uncertain_language`."""
    ds = pads.dataset(prepared.join(f"part={lang}").path, filesystem=prepared.fs, format="parquet")
    ids: list[str] = []
    docs, starts, ends, chars, unsure = [], [], [], [], []
    dim, total = None, 0
    path = scratch / f"{lang}.f32"
    with open(path, "wb") as fh:
        for batch in ds.to_batches(columns=["doc_id", "doc_embedding", "sentence_embeddings", "sentences",
                                            "declared_lang", "flags"], batch_size=batch_rows):
            if not batch.num_rows:
                continue
            col = batch.column("doc_embedding")
            dim = dim or col.type.list_size
            docs.append(col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim))
            sent, offsets = unnest_vectors(batch.column("sentence_embeddings"), dim)
            fh.write(np.ascontiguousarray(sent, np.float32).tobytes())
            starts.append(total + offsets[:-1])
            ends.append(total + offsets[1:])
            total += len(sent)
            ids.extend(batch.column("doc_id").to_pylist())
            chars.append(_characters(batch.column("sentences")))
            unsure.append(uncertain_language(batch.column("declared_lang"), batch.column("flags")) & skip_uncertain)
    dim = dim or 1
    left_out = np.concatenate(unsure) if unsure else np.zeros(0, bool)
    ids_kept = np.flatnonzero(~left_out)
    order = (ids_kept[np.argsort(np.asarray(ids, dtype=object)[ids_kept], kind="stable")] if ids
             else np.zeros(0, np.int64))
    rows = np.memmap(path, np.float32, "r", shape=(total, dim)) if total else np.zeros((0, dim), np.float32)
    cat = (lambda parts: np.concatenate(parts)[order]) if ids else (lambda parts: np.zeros(0, np.int64))
    return Side(lang, [ids[i] for i in order],
                np.concatenate(docs)[order] if ids else np.zeros((0, dim), np.float32),
                SentenceStore(rows, cat(starts), cat(ends)), cat(chars), int(left_out.sum()))


def _characters(sentences: pa.ChunkedArray | pa.ListArray) -> np.ndarray:
    """Characters of each document's sentences (a list<string> column), without building Python strings."""
    arr = sentences.combine_chunks() if isinstance(sentences, pa.ChunkedArray) else sentences
    lengths = pc.fill_null(pc.utf8_length(arr.flatten()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = arr.offsets.to_numpy() - arr.offsets[0].as_py()
    return np.diff(np.concatenate([[0], np.cumsum(lengths)])[offsets])


def _nest(blocks: list[np.ndarray], dim: int) -> pa.ListArray:
    """Per-document (n_i, dim) sentence blocks as one list<list<float32>> column."""
    flat = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
    inner = nested_vectors(flat, np.concatenate([[0], np.cumsum([len(x) for x in blocks])]))
    return inner.cast(pa.list_(pa.list_(pa.float32())))


def _write_pairs(pairs: list[tuple[int, int, float]], a: Side, b: Side, out: Location, chunk: int = 512) -> None:
    dim = a.docs.shape[1]
    with out.fs.open_output_stream(out.path) as sink, pq.ParquetWriter(sink, RAW_PAIRS) as writer:
        for s in range(0, max(len(pairs), 1), chunk):
            part = pairs[s:s + chunk]
            writer.write_table(pa.table({
                "pair_id": [f"{a.ids[i]}|{b.ids[j]}" for i, j, _ in part],
                "src_doc_id": [a.ids[i] for i, _, _ in part], "src_lang": [a.lang] * len(part),
                "tgt_doc_id": [b.ids[j] for _, j, _ in part], "tgt_lang": [b.lang] * len(part),
                "pair_score": pa.array([m for _, _, m in part], pa.float32()),
                "src_embeddings": _nest([a.sentences[i] for i, _, _ in part], dim),
                "tgt_embeddings": _nest([b.sentences[j] for _, j, _ in part], dim)}, schema=RAW_PAIRS))


def pair_language_pair(prepared: Location, src: str, tgt: str, pair: PairConfig, align: AlignConfig,
                       out: Location) -> dict:
    """Mine the document pairs of ``src``-``tgt`` and write them to ``out`` (a Parquet file); returns a summary."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"msm-pair-{src}-{tgt}-") as tmp:
        a, b = (load_side(prepared, lang, Path(tmp), skip_uncertain=pair.skip_uncertain_language)
                for lang in (src, tgt))
        use = pair.rescore != "none"
        evidence: dict = {}
        pairs, calibration = pair_documents_with_stats(
            a.docs, b.docs, k=pair.k, threshold=pair.margin_threshold, mutual=pair.mutual,
            center_embeddings=pair.center, rescore=pair.rescore, rescore_k=pair.rescore_k, assign=pair.assign,
            x_sentences=a.sentences if use else None, y_sentences=b.sentences if use else None,
            min_coverage=pair.min_coverage, skip_penalty=align.skip_penalty, exact_max=pair.exact_knn_max,
            calibrate=pair.target_precision, score_z=pair.score_z if use else None,
            length_z=pair.length_z if use else None, x_lengths=a.chars, y_lengths=b.chars, report=evidence)
        _write_pairs(pairs, a, b, out)
        exact = max(len(a.ids), len(b.ids)) <= pair.exact_knn_max
        return {"lang_pair": f"{src}-{tgt}", "src_documents": len(a.ids), "tgt_documents": len(b.ids),
                **({"uncertain_language_left_out": {src: a.uncertain, tgt: b.uncertain}}
                   if a.uncertain or b.uncertain else {}),
                "pairs": len(pairs), "knn": "exact" if exact else "ivf", "seconds": round(time.perf_counter() - t0, 3),
                **({"calibration": calibration.as_dict()} if calibration else {}),
                **({"evidence": evidence} if evidence else {})}
