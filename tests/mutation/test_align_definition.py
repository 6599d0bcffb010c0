"""msm.data.align against its module docstring, with scoring code of its own (no align.py helper is reused):
every monotonic alignment of small documents is enumerated and scored from the definition."""

from __future__ import annotations

import numpy as np
import pytest

from msm.data.align import align, alignment_objective, link_similarities


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray, src, tgt) -> float:
    """Cosine of the normalised means of the two sides (a merged side is the mean of its sentences)."""
    return float(unit(a[list(src)].mean(0)) @ unit(b[list(tgt)].mean(0)))


def score(links, a, b, bias, skip) -> float:
    return sum(-skip if not s or not t else cosine(a, b, s, t) - bias for s, t in links)


def alignments(n: int, m: int, many: bool):
    """Every sequence of 1-1, 1-0, 0-1 (and 1-2, 2-1) links covering both documents in order."""
    moves = [(1, 1), (1, 0), (0, 1)] + ([(1, 2), (2, 1)] if many else [])

    def walk(i, j):
        if (i, j) == (n, m):
            yield []
            return
        for di, dj in moves:
            if i + di <= n and j + dj <= m:
                for rest in walk(i + di, j + dj):
                    yield [(tuple(range(i, i + di)), tuple(range(j, j + dj)))] + rest
    return list(walk(0, 0))


@pytest.mark.parametrize("many", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_best_alignment_by_enumeration(seed, many):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    a = unit(rng.normal(size=(n, 6)))
    b = unit(np.concatenate([a[: min(n, m)] + 0.6 * rng.normal(size=(min(n, m), 6)),
                             rng.normal(size=(m - min(n, m), 6))]))
    skip = float(rng.choice([0.0, 0.1, 0.3]))
    bias = float(np.mean(a @ b.T))  # the default: mean sentence similarity of the pair
    links = align(a, b, skip_penalty=skip, allow_many=many)
    got = [(l.src, l.tgt) for l in links]
    best = max(score(x, a, b, bias, skip) for x in alignments(n, m, many))
    assert score(got, a, b, bias, skip) == pytest.approx(best, abs=1e-9)
    assert got in alignments(n, m, many)  # a valid monotonic cover
    for l in links:  # each link's reported cosine, 0.0 for skips
        assert l.score == pytest.approx(cosine(a, b, l.src, l.tgt) if l.src and l.tgt else 0.0, abs=1e-9)
    assert alignment_objective(links, a, b, skip, bias) == pytest.approx(best, abs=1e-9)
    with_bias = align(a, b, skip_penalty=skip, bias=0.25, allow_many=many)
    assert score([(l.src, l.tgt) for l in with_bias], a, b, 0.25, skip) == pytest.approx(
        max(score(x, a, b, 0.25, skip) for x in alignments(n, m, many)), abs=1e-9)


def test_merges_and_splits_only_when_allowed():
    b = unit(np.eye(4)[:3])
    a = unit(np.array([b[0], b[1] + b[2]]))  # a[1] is the merge of b[1] and b[2]
    many = [(l.src, l.tgt) for l in align(a, b, skip_penalty=0.5)]
    assert many == [((0,), (0,)), ((1,), (1, 2))]
    assert [(l.src, l.tgt) for l in align(b, a, skip_penalty=0.5)] == [((0,), (0,)), ((1, 2), (1,))]
    one = [(l.src, l.tgt) for l in align(a, b, skip_penalty=0.5, allow_many=False)]
    assert all(len(s) <= 1 and len(t) <= 1 for s, t in one) and len(one) == 3


def test_empty_sides():
    a = unit(np.ones((2, 3)))
    assert align(a[:0], a[:0]) == []
    assert [(l.src, l.tgt, l.score) for l in align(a, a[:0])] == [((0,), (), 0.0), ((1,), (), 0.0)]
    assert [(l.src, l.tgt) for l in align(a[:0], a)] == [((), (0,)), ((), (1,))]
    sims = link_similarities(a[:1], a[:1])
    assert sims[(1, 2)].shape == (1, 0) and sims[(2, 1)].shape == (0, 1)
