"""The embed stage of ``msm mine``: a Ray Data actor adding sentence and document embeddings to prepared documents.

``map_batches(DocumentEmbedder, compute=ActorPoolStrategy(...))`` over :data:`msm.data.prepare.PREPARED` rows; kept
documents get ``sentence_embeddings`` (one L2-normalised float32 vector per sentence, the shared
``msm.retrieval.encoder.Encoder`` with ``kind="passage"``, length-sorted batches) and ``doc_embedding``;
quarantined rows pass through with empty embeddings. ``part`` is the row's language, or ``_quarantine``: the
staged output is partitioned by it, so the pairing stage reads one language's folder.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

QUARANTINE_PART = "_quarantine"


def load_encoder(model: str, max_length: int, batch_size: int):
    """The project's encoder for ``model`` (an alias such as "e5-small", a folder or a hub id)."""
    from msm.retrieval.encoder import Encoder  # lazy: torch

    return Encoder(model, pooling=None, max_length=max_length, batch_size=batch_size)


def document_embeddings(sentence_emb: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Document embedding = L2-normalised mean of its sentence embeddings; doc d owns rows offsets[d]:offsets[d+1]."""
    sums = np.add.reduceat(sentence_emb, offsets[:-1], axis=0) if len(offsets) > 1 else sentence_emb[:0]
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def nested_vectors(vectors: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    """Rows ``offsets[d]:offsets[d+1]`` of ``vectors`` (n, dim) as one Arrow list of fixed-size float32 lists each."""
    flat = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat)


def unnest_vectors(column: pa.ChunkedArray | pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`nested_vectors`: ``(vectors (n, dim), offsets)`` of a list<fixed_size_list> column."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = arr.flatten().flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(-1, dim), offsets


class DocumentEmbedder:
    """Ray Data callable class (Arrow in, Arrow out): adds ``part``, ``n_sentences``, ``sentence_embeddings`` and
    ``doc_embedding`` to prepared document rows."""

    def __init__(self, model: str, max_length: int, batch_size: int):
        self.encoder = load_encoder(model, max_length, batch_size)
        self.dim = int(self.encoder.encode(["dimension probe"], kind="passage").shape[1])

    def __call__(self, batch: pa.Table) -> pa.Table:
        kept = batch.column("reason").is_null().to_pylist()
        sentences = batch.column("sentences").to_pylist()
        counts = [len(s) if k else 0 for s, k in zip(sentences, kept)]
        texts = [t for s, k in zip(sentences, kept) if k for t in s]
        emb = (np.asarray(self.encoder.encode(texts, kind="passage"), np.float32) if texts
               else np.zeros((0, self.dim), np.float32))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        docs = np.zeros((len(counts), self.dim), np.float32)  # quarantined rows have no vector
        nz = np.flatnonzero(counts)
        if len(nz):  # documents with sentences own contiguous rows: reduce at their starts
            docs[nz] = document_embeddings(emb, np.append(offsets[nz], offsets[-1]))
        lang = batch.column("lang").to_pylist()
        part = [lg if k else QUARANTINE_PART for lg, k in zip(lang, kept)]
        return (batch.append_column("part", pa.array(part, pa.string()))
                .append_column("n_sentences", pa.array(counts, pa.int32()))
                .append_column("sentence_embeddings", nested_vectors(emb, offsets))
                .append_column("doc_embedding", pa.FixedSizeListArray.from_arrays(
                    pa.array(docs.reshape(-1), pa.float32()), self.dim)))
