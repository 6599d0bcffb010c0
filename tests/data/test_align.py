"""The DP aligner against brute-force enumeration of every monotonic alignment, and recovery on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from msm.data.align import MOVES_MANY, MOVES_ONE, Link, align


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


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


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
