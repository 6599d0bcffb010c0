"""msm.data.align: tests aimed at the mutants a mutmut run left alive (defaults, the default bias, empty and
one-sentence documents, dtypes, tie-breaking). References are hand-computed or brute-forced from the module
docstring's objective; no align.py helper is used to build an expected value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from msm.data.align import _unit, align, link_similarities


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray, src, tgt) -> float:
    u, v = a[list(src)].mean(0), b[list(tgt)].mean(0)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def score(links, a, b, bias: float, skip: float) -> float:
    """The docstring objective: cos(link) - bias per 1-1/1-2/2-1 link, -skip per 1-0/0-1 link."""
    return sum(-skip if not s or not t else cosine(a, b, s, t) - bias for s, t in links)


def alignments(n: int, m: int):
    """Every monotonic cover of n source / m target sentences by 1-1, 1-0, 0-1, 1-2, 2-1 links."""
    def walk(i, j):
        if (i, j) == (n, m):
            yield []
            return
        for di, dj in ((1, 1), (1, 0), (0, 1), (1, 2), (2, 1)):
            if i + di <= n and j + dj <= m:
                for rest in walk(i + di, j + dj):
                    yield [(tuple(range(i, i + di)), tuple(range(j, j + dj)))] + rest
    return list(walk(0, 0))


def pairs(links):
    return [(l.src, l.tgt) for l in links]


def test_default_skip_penalty_is_one_tenth():
    """With the default skip_penalty (0.1) an orthogonal pair at bias 0.5 is better skipped (2 * -0.1 = -0.2) than
    linked (0 - 0.5 = -0.5); a penalty of 1.1 would link it."""  # kills x_align_1 (default 0.1 -> 1.1)
    a, b = np.eye(2)[:1], np.eye(2)[1:]
    links = align(a, b, bias=0.5)
    assert sorted(pairs(links)) == [((), (0,)), ((0,), ())]
    assert all(l.score == 0.0 for l in links)


def test_default_bias_is_mean_sentence_similarity_hand_computed():
    """a = [e0, e1], b = [e0, e0]: sentence cosines [[1, 1], [0, 0]], default bias 0.5. By hand (skip 0.1):
    1-2 (a0 -> b0+b1) + skip a1 = 0.5 - 0.1 = 0.4 beats two 1-1 links = 0.5 - 0.5 = 0.0 and
    1-1 + two skips = 0.3. With bias 0 the two 1-1 links (1.0) would beat 0.9."""  # kills x_align_11 (bias 0.0)
    e = np.eye(3)
    a, b = e[[0, 1]], e[[0, 0]]
    links = align(a, b)
    assert pairs(links) == [((0,), (0, 1)), ((1,), ())]
    assert [l.score for l in links] == pytest.approx([1.0, 0.0], abs=1e-12)


def test_default_bias_and_skip_by_brute_force():
    """A 3x2 document pair whose unique optimum (margin > 0.1) under the documented defaults (bias = mean of all
    sentence cosines, skip 0.1) differs from the optimum under bias 0, under bias = mean of the 2-1 merged cosines,
    and under skip 1.1."""  # kills x_align_14 (sims[(2, 1)].mean()), also x_align_11 and x_align_1
    rng = np.random.default_rng(310)
    a, b = unit(rng.normal(size=(3, 3))), unit(rng.normal(size=(2, 3)))
    bias = float(np.mean([[x @ y for y in b] for x in a]))
    ranked = sorted(alignments(3, 2), key=lambda x: -score(x, a, b, bias, 0.1))
    best = ranked[0]
    assert score(best, a, b, bias, 0.1) - score(ranked[1], a, b, bias, 0.1) > 0.1  # the optimum is unique
    merged_bias = float(np.mean([[cosine(a, b, (i, i + 1), (j,)) for j in range(2)] for i in range(2)]))
    for other_bias, other_skip in ((0.0, 0.1), (merged_bias, 0.1), (bias, 1.1)):  # the test can tell these apart
        assert max(alignments(3, 2), key=lambda x: score(x, a, b, other_bias, other_skip)) != best
    assert pairs(align(a, b)) == best


@pytest.mark.parametrize("n,m", [(0, 0), (0, 3), (3, 0)])
def test_empty_document_aligns_without_numpy_warnings(n, m):
    """An empty side gives only skips (-0.1 each) and no RuntimeWarning: the default bias must not take the mean
    of an empty similarity matrix."""  # kills x_align_12 ("or True") and x_align_16 ("n or m")
    a, b = unit(np.ones((n, 4))), unit(np.ones((m, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        links = align(a, b)
    assert pairs(links) == [((i,), ()) for i in range(n)] + [((), (j,)) for j in range(m)]
    assert all(l.score == 0.0 for l in links)


@pytest.mark.parametrize("n,m", [(1, 3), (3, 1), (1, 1)])
def test_link_similarities_keep_float32(n, m):
    """float32 embeddings give float32 similarities for every link type, including the empty 2-1 / 1-2 matrix of a
    one-sentence side, with the documented shapes."""  # kills x_link_similarities_12/14/28/30 (dtype dropped)
    rng = np.random.default_rng(0)
    a = unit(rng.normal(size=(n, 5))).astype(np.float32)
    b = unit(rng.normal(size=(m, 5))).astype(np.float32)
    sims = link_similarities(a, b)
    assert {k: v.shape for k, v in sims.items()} == {(1, 1): (n, m), (1, 2): (n, m - 1), (2, 1): (n - 1, m)}
    assert all(v.dtype == np.float32 for v in sims.values())


def test_unit_normalises_the_last_axis_of_any_rank():
    """_unit divides by the L2 norm over the last axis, for a 1-D vector and a 3-D stack alike (3-4-5 triangle)."""
    # kills x__unit_12 (axis=-1 -> axis=+1: an AxisError on 1-D input, the wrong axis on 3-D input)
    np.testing.assert_allclose(_unit(np.array([3.0, 4.0])), [0.6, 0.8], atol=1e-12)
    v = np.array([[[3.0, 4.0], [0.0, 2.0]]])  # shape (1, 2, 2)
    np.testing.assert_allclose(_unit(v), [[[0.6, 0.8], [0.0, 1.0]]], atol=1e-12)


def test_exact_tie_keeps_the_one_to_one_link():
    """Pins the tie-break: orthogonal 1x1 pair, bias 0.5, skip 0.25, so one 1-1 link (0 - 0.5) and two skips
    (-0.25 - 0.25) tie exactly at -0.5; the first move in MOVES order (1-1) is kept, later equal moves do not
    replace it (the module docstring)."""  # kills x_align_83 (">" -> ">=")
    a, b = np.eye(2)[:1], np.eye(2)[1:]
    links = align(a, b, skip_penalty=0.25, bias=0.5)
    assert pairs(links) == [((0,), (0,))]
    assert links[0].score == 0.0
