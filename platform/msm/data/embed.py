"""Sentence embeddings as a Ray Data actor: ``map_batches(SentenceEmbedder, compute=ActorPoolStrategy(...))``.

Uses the shared encoder ``msm.retrieval.encoder.Encoder`` (L2-normalised float32, ``kind="passage"``).
"""

from __future__ import annotations

import numpy as np


def load_encoder(model: str, max_length: int, batch_size: int):
    """The project's encoder for ``model`` (an alias such as "e5-small", a folder or a hub id)."""
    from msm.retrieval.encoder import Encoder

    return Encoder(model, pooling=None, max_length=max_length, batch_size=batch_size)


class SentenceEmbedder:
    """Ray Data callable class: adds an ``embedding`` column (float32, L2-normalised) for the ``text`` column."""

    def __init__(self, model: str, max_length: int, batch_size: int):
        self.encoder = load_encoder(model, max_length, batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        emb = self.encoder.encode([str(t) for t in batch["text"]], kind="passage")
        return {"key": batch["key"], "embedding": np.asarray(emb, dtype=np.float32)}


def document_embeddings(sentence_emb: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Document embedding = L2-normalised mean of its sentence embeddings; doc d owns rows offsets[d]:offsets[d+1]."""
    sums = np.add.reduceat(sentence_emb, offsets[:-1], axis=0) if len(offsets) > 1 else sentence_emb[:0]
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
