"""The align stage of ``msm mine``: ``map_batches(align_batch)`` over the pair stage's rows (which carry both
documents' sentence embeddings) → :data:`msm.data.schema.PAIRS` rows with their monotonic sentence alignment."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from msm.data.align import align
from msm.data.schema import PAIRS


def _vectors(doc: list[list[float]]) -> np.ndarray:
    return np.asarray(doc, np.float32).reshape(len(doc), -1)


def align_batch(batch: pa.Table, skip_penalty: float, allow_many: bool) -> pa.Table:
    """Align every pair of the batch (:func:`msm.data.align.align`); drops the embedding columns."""
    links_col, scores = [], []
    for a, b in zip(batch.column("src_embeddings").to_pylist(), batch.column("tgt_embeddings").to_pylist()):
        links = align(_vectors(a), _vectors(b), skip_penalty=skip_penalty, allow_many=allow_many)
        links_col.append([{"src": list(l.src), "tgt": list(l.tgt), "score": l.score} for l in links])
        real = [l.score for l in links if l.src and l.tgt]
        scores.append(float(np.mean(real)) if real else 0.0)
    cols = {name: batch.column(name) for name in ("pair_id", "src_doc_id", "src_lang", "tgt_doc_id", "tgt_lang",
                                                   "pair_score")}
    return pa.table({**cols, "links": pa.array(links_col, PAIRS.field("links").type),
                     "align_score": pa.array(scores, pa.float32())}, schema=PAIRS)


def link_type_counts(batch: pa.Table) -> pa.Table:
    """One row per link type (``"1-1"``, ``"1-2"``, ...) of the batch's pairs with its count (summed by the driver
    through a Ray Data aggregate)."""
    counts: dict[str, int] = {}
    for links in batch.column("links").to_pylist():
        for l in links:
            key = f"{len(l['src'])}-{len(l['tgt'])}"
            counts[key] = counts.get(key, 0) + 1
    return pa.table({"link_type": list(counts), "count": pa.array(list(counts.values()), pa.int64())})
