"""Monotonic sentence alignment inside a document pair (Vecalign/Bertalign-style dynamic programming).

Links are 1-1, 1-2, 2-1 (scored with the normalised mean embedding of the merged side), 1-0 and 0-1.
The alignment maximises ``sum over links of (cos(link) - bias)`` minus ``skip_penalty`` per 1-0/0-1 link,
where ``bias`` (default: the mean of the document pair's sentence similarity matrix) makes an unrelated
link worth about zero, so the number of links does not drive the result. Between alignments of equal score
the DP keeps, at every cell, the first move in ``MOVES_MANY`` order (a 1-1 link before a skip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (source sentences consumed, target sentences consumed)
MOVES_MANY = ((1, 1), (1, 0), (0, 1), (1, 2), (2, 1))
MOVES_ONE = ((1, 1), (1, 0), (0, 1))


@dataclass(frozen=True)
class Link:
    src: tuple[int, ...]
    tgt: tuple[int, ...]
    score: float  # cosine of the link's two sides; 0.0 for 1-0 / 0-1


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def link_similarities(a: np.ndarray, b: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Cosine of every candidate link type, keyed by move; entry ``[i, j]`` is the link starting at (i, j)."""
    a2 = _unit(a[:-1] + a[1:]) if len(a) > 1 else np.zeros((0, a.shape[1]), a.dtype)
    b2 = _unit(b[:-1] + b[1:]) if len(b) > 1 else np.zeros((0, b.shape[1]), b.dtype)
    return {(1, 1): a @ b.T, (1, 2): a @ b2.T, (2, 1): a2 @ b.T}


def link_weight(move: tuple[int, int], sims: dict, i: int, j: int, bias: float, skip_penalty: float) -> tuple[float, float]:
    """(objective weight, cosine) of the link of type ``move`` starting at source ``i`` / target ``j``."""
    if 0 in move:
        return -skip_penalty, 0.0
    s = float(sims[move][i, j])
    return s - bias, s


def align(a: np.ndarray, b: np.ndarray, skip_penalty: float = 0.1, bias: float | None = None,
          allow_many: bool = True) -> list[Link]:
    """Best monotonic alignment of L2-normalised sentence embeddings ``a`` (n, d) and ``b`` (m, d)."""
    n, m = len(a), len(b)
    sims = link_similarities(a, b)
    if bias is None:
        bias = float(sims[(1, 1)].mean()) if n and m else 0.0
    moves = MOVES_MANY if allow_many else MOVES_ONE
    best = np.full((n + 1, m + 1), -np.inf)
    back = np.zeros((n + 1, m + 1), dtype=np.int8)
    best[0, 0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 and j == 0:
                continue
            for k, (di, dj) in enumerate(moves):
                pi, pj = i - di, j - dj
                if pi < 0 or pj < 0 or best[pi, pj] == -np.inf:
                    continue
                w, _ = link_weight((di, dj), sims, pi, pj, bias, skip_penalty)
                if best[pi, pj] + w > best[i, j]:
                    best[i, j] = best[pi, pj] + w
                    back[i, j] = k
    links: list[Link] = []
    i, j = n, m
    while i or j:
        di, dj = moves[back[i, j]]
        i, j = i - di, j - dj
        _, s = link_weight((di, dj), sims, i, j, bias, skip_penalty)
        links.append(Link(tuple(range(i, i + di)), tuple(range(j, j + dj)), s))
    return links[::-1]


def alignment_objective(links: list[Link], a: np.ndarray, b: np.ndarray, skip_penalty: float, bias: float) -> float:
    """The objective :func:`align` maximises, for any list of links (used to check it)."""
    sims = link_similarities(a, b)
    return sum(link_weight((len(l.src), len(l.tgt)), sims, l.src[0] if l.src else 0, l.tgt[0] if l.tgt else 0,
                           bias, skip_penalty)[0] for l in links)
