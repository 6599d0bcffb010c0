"""The DP aligner against brute-force enumeration of every monotonic alignment, and recovery on synthetic data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from msm.data.align import _unit, align, alignment_objective, Link, link_similarities, MOVES_MANY, MOVES_ONE

from factories import unit


def all_alignments(n: int, m: int, moves) -> list[list[Link]]:
    """Every monotonic alignment of n source and m target sentences built from ``moves`` (brute force)."""
    if n == 0 and m == 0:
        return [[]]
    out = []
    for di, dj in moves:
        if di <= n and dj <= m:
            for rest in all_alignments(n - di, m - dj, moves):
                link = Link(tuple(range(n - di, n)), tuple(range(m - dj, m)), 0.0)
                out.append(rest + [link])
    return out


def objective(links: list[Link], a: np.ndarray, b: np.ndarray, skip: float, bias: float) -> float:
    """The module docstring's objective, written here from its definition (not with align.py's helpers): each
    1-0/0-1 link costs ``skip``; any other link scores cos(mean of its source rows, mean of its target rows) - bias."""
    total = 0.0
    for link in links:
        if not link.src or not link.tgt:
            total -= skip
        else:
            u, v = a[list(link.src)].mean(0), b[list(link.tgt)].mean(0)
            total += float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))) - bias
    return total


@pytest.mark.parametrize("allow_many", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_dp_matches_brute_force(seed: int, allow_many: bool) -> None:
    """Kills e.g. ``s + bias`` for ``s - bias`` in ``link_weight``, or a merged side scored without re-normalising."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 5, size=2)
    a, b = unit(rng.normal(size=(n, 8))), unit(rng.normal(size=(m, 8)))
    skip, bias = float(rng.uniform(0, 0.5)), float(rng.uniform(-0.3, 0.3))
    if seed % 3 == 0:  # the default bias: the mean cosine of all sentence pairs
        bias, passed = float(np.mean([[x @ y for y in b] for x in a])), None
    else:
        passed = bias
    moves = MOVES_MANY if allow_many else MOVES_ONE
    candidates = all_alignments(n, m, moves)
    brute = max(objective(c, a, b, skip, bias) for c in candidates)
    links = align(a, b, skip_penalty=skip, bias=passed, allow_many=allow_many)
    assert objective(links, a, b, skip, bias) == pytest.approx(brute, abs=1e-9)
    # the result is itself a valid monotonic alignment covering every sentence exactly once
    assert [i for l in links for i in l.src] == list(range(n))
    assert [j for l in links for j in l.tgt] == list(range(m))
    assert all((len(l.src), len(l.tgt)) in moves for l in links)
    # each link's score is the cosine of its two (merged) sides, 0 for an insertion or deletion
    for l in links:
        want = objective([l], a, b, 0.0, 0.0) if l.src and l.tgt else 0.0
        assert l.score == pytest.approx(want, abs=1e-9)


def test_brute_force_counts_match_known_numbers() -> None:
    # 1-1/1-0/0-1 alignments of n x m are the Delannoy numbers: D(2,2)=13, D(3,3)=63
    assert len(all_alignments(2, 2, MOVES_ONE)) == 13
    assert len(all_alignments(3, 3, MOVES_ONE)) == 63


def test_recovers_merges_splits_and_insertions() -> None:
    """Target = source meanings with two sentences merged, one split and one inserted; similarity is meaningful."""
    rng = np.random.default_rng(0)
    meanings = unit(rng.normal(size=(10, 64)))
    src = unit(meanings + 0.2 * rng.normal(size=meanings.shape) / 8)
    tgt_rows, truth = [], []
    j = 0
    for i in range(10):
        if i == 2:  # 2 and 3 are merged on the target side
            tgt_rows.append(unit(meanings[2] + meanings[3]))
            truth.append(((2, 3), (j,)))
            j += 1
        elif i == 3:
            continue
        elif i == 6:  # 6 is split into two target sentences whose mean is its meaning
            d = unit(rng.normal(size=64))
            tgt_rows += [unit(meanings[6] + 0.6 * d), unit(meanings[6] - 0.6 * d)]
            truth.append(((6,), (j, j + 1)))
            j += 2
        else:
            tgt_rows.append(meanings[i] + 0.02 * rng.normal(size=64))
            truth.append(((i,), (j,)))
            j += 1
        if i == 8:  # an unrelated inserted sentence
            tgt_rows.append(unit(rng.normal(size=64)))
            truth.append(((), (j,)))
            j += 1
    tgt = unit(np.array(tgt_rows))
    links = align(src, tgt, skip_penalty=0.1)
    assert [(l.src, l.tgt) for l in links] == truth
    assert all(l.score > 0.8 for l in links if l.src and l.tgt)


def cosine(a: np.ndarray, b: np.ndarray, src, tgt) -> float:
    """Cosine of the normalised means of the two sides (a merged side is the mean of its sentences)."""
    return float(unit(a[list(src)].mean(0)) @ unit(b[list(tgt)].mean(0)))


def score(links, a, b, bias, skip) -> float:
    return sum(-skip if not s or not t else cosine(a, b, s, t) - bias for s, t in links)


def alignments(n: int, m: int, many: bool = True):
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


def pairs(links):
    return [(l.src, l.tgt) for l in links]


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
