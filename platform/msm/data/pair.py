"""Cross-lingual document pairing by ratio margin (Artetxe & Schwenk 2019), with faiss kNN."""

from __future__ import annotations

import faiss
import numpy as np


def _knn(query: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    return index.search(np.ascontiguousarray(query, dtype=np.float32), k)


def margin_scores(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate margins for L2-normalised ``x`` (n, d) against ``y`` (m, d).

    ratio margin(x, y) = cos(x, y) / (mean_{z in NN_k(x)} cos(x, z) / 2 + mean_{z in NN_k(y)} cos(y, z) / 2).
    Returns ``(fwd_idx, fwd_margin, bwd_idx, bwd_margin)``: the k nearest candidates of each x in y and of each
    y in x, with their margins.
    """
    kx, ky = min(k, len(y)), min(k, len(x))
    sim_xy, idx_xy = _knn(x, y, kx)
    sim_yx, idx_yx = _knn(y, x, ky)
    mean_x, mean_y = sim_xy.mean(1), sim_yx.mean(1)
    fwd = sim_xy / ((mean_x[:, None] + mean_y[idx_xy]) / 2)
    bwd = sim_yx / ((mean_y[:, None] + mean_x[idx_yx]) / 2)
    return idx_xy, fwd, idx_yx, bwd


def mine_pairs(x: np.ndarray, y: np.ndarray, k: int = 4, threshold: float = 1.0,
               mutual: bool = True) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, margin)`` of ``x[i]`` and ``y[j]``: each side's best-margin candidate among its k nearest
    neighbours by cosine (LASER "max" mining), kept when both agree
    (``mutual``) or, otherwise, the union of both directions' best; only margins ``>= threshold``."""
    if len(x) == 0 or len(y) == 0:
        return []
    idx_xy, fwd, idx_yx, bwd = margin_scores(x, y, k)
    best_x = {i: (int(idx_xy[i, a]), float(fwd[i, a])) for i, a in enumerate(fwd.argmax(1))}
    best_y = {j: (int(idx_yx[j, b]), float(bwd[j, b])) for j, b in enumerate(bwd.argmax(1))}
    pairs: dict[tuple[int, int], float] = {}
    for i, (j, m) in best_x.items():
        if not mutual or best_y[j][0] == i:
            pairs[(i, j)] = m
    if not mutual:
        for j, (i, m) in best_y.items():
            pairs[(i, j)] = max(pairs.get((i, j), m), m)
    return sorted((i, j, m) for (i, j), m in pairs.items() if m >= threshold)
