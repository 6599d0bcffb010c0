"""The calibrated margin threshold (msm.data.calibrate) against hand-computed values, a brute-force scan, and a
synthetic same-theme corpus with a quarter of the partners missing on each side."""

from __future__ import annotations

import numpy as np
import pytest

from msm.data.calibrate import FLOOR, MIN_NULL, choose_threshold, null_margins, unpartnered
from msm.data.pair import pair_documents_with_stats


def test_null_margin_leaves_both_partners_out():
    # x0-y0 and x1-y1 are pairs; x0's best other candidate is y1 (score 0.5), y1's partner x1 is left out too
    cand = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 0), (2, 1)]
    scores = [0.9, 0.5, 0.3, 0.8, 0.2, 0.4]
    got = null_margins(cand, scores, [(0, 0, 2.0), (1, 1, 2.0)], k=2)
    # x0: others {y1: 0.5, y2: 0.3} -> mean 0.4; y1 without x1: {x0: 0.5, x2: 0.4} -> 0.45; 0.5 / 0.425
    # x1: others {y0: 0.2} -> 0.2; y0 without x0: {x1: 0.2} -> 0.2; 0.2 / 0.2
    # y0: others {x1: 0.2} -> 0.2; x1 without y1: {y0: 0.2} -> 0.2; 1.0
    # y1: others {x0: 0.5, x2: 0.4} -> 0.45; x0 without y0: {y1: 0.5, y2: 0.3} -> 0.4; 0.5 / 0.425
    assert got.tolist() == pytest.approx([0.5 / 0.425, 1.0, 1.0, 0.5 / 0.425])


def test_unpartnered_counts_best_margins_below_the_null_quantile():
    null = np.linspace(1.0, 1.2, 11)  # 90th percentile 1.18, median 1.1
    assert unpartnered(np.array([1.05, 1.08, 1.5, 2.0, 1.9]), null) == pytest.approx(2 / 0.9)
    assert unpartnered(np.array([1.05, 1.08, 1.5, 2.0, 1.9]), null, lam=0.5) == 4.0
    assert unpartnered(np.array([1.05, 1.0]), null) == 2.0  # at most all of them


def brute_force(selected, null, n0, target):
    """The smallest candidate threshold (the floor or a selected margin) meeting the target, scanned directly."""
    for t in sorted({FLOOR, *[m for m in selected if m > FLOOR]}):
        accepted = sum(m >= t for m in selected)
        if accepted == 0:
            return None
        wrong = n0 * sum(v >= t for v in null) / len(null)
        if 1 - min(wrong, accepted) / accepted >= target:
            return t
    return None


@pytest.mark.parametrize("seed", range(5))
def test_choose_threshold_equals_a_brute_force_scan(seed):
    rng = np.random.default_rng(seed)
    true, wrong = rng.uniform(1.3, 2.5, 100), rng.uniform(0.95, 1.35, 25)
    null = rng.uniform(0.95, 1.35, 60)
    selected = np.concatenate([true, wrong])
    for target in (0.9, 0.98, 0.99):
        got = choose_threshold(selected, null, 25.0, target, fallback=1.3)
        want = brute_force(selected.tolist(), null.tolist(), 25.0, target)
        assert got.calibrated and got.threshold == pytest.approx(want)
        assert got.accepted == int(np.sum(selected >= want)) and got.estimated_precision >= target


def test_a_small_null_keeps_the_configured_threshold():
    got = choose_threshold(np.array([1.5, 2.0]), np.ones(MIN_NULL - 1), 1.0, 0.99, fallback=1.3)
    assert not got.calibrated and got.threshold == 1.3 and got.accepted == 2


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def same_theme_corpus(seed: int, n: int = 160, left: int = 40, d: int = 48):
    """Short documents (1-4 sentences) sharing a strong theme vector; ``n - 2·left`` translated pairs (noisy
    copies), ``left`` documents on each side without a partner. Returns x, y (doc vectors), sentences, truth."""
    rng = np.random.default_rng(seed)
    theme = 2.0 * rng.normal(size=d)

    def doc():
        return rng.normal(size=(rng.integers(1, 5), d))

    shared = [doc() for _ in range(n)]
    xs = [_unit(theme + s + 0.6 * rng.normal(size=s.shape)) for s in shared[:n - left]]
    xs += [_unit(theme + doc()) for _ in range(left)]
    ys = [_unit(theme + s + 0.6 * rng.normal(size=s.shape)) for s in shared[left:]]
    ys += [_unit(theme + doc()) for _ in range(left)]
    perm = rng.permutation(len(ys))
    where = np.argsort(perm)
    ys = [ys[p] for p in perm]
    truth = {i: int(where[i - left]) for i in range(left, n - left)}
    return (_unit(np.array([v.mean(0) for v in xs])), _unit(np.array([v.mean(0) for v in ys])), xs, ys, truth)


def same_theme_options(xs, ys) -> dict:
    """The pairing settings both same-theme tests use: the fixed threshold 1.3, best-match rescoring, greedy."""
    return dict(k=4, threshold=1.3, center_embeddings=True, rescore="bestmatch", assign="greedy", x_sentences=xs,
                y_sentences=ys)


def precision_recall(pairs, truth: dict[int, int]) -> tuple[float, float]:
    """Document-pair precision and recall of ``pairs`` ((i, j, score) triples) against ``truth`` (i -> j)."""
    ok = sum(truth.get(i) == j for i, j, _ in pairs)
    return ok / max(len(pairs), 1), ok / len(truth)


@pytest.mark.parametrize("seed", range(3))
def test_calibrated_pairing_keeps_precision_where_leftovers_pair_with_each_other(seed):
    x, y, xs, ys, truth = same_theme_corpus(seed)
    opts = same_theme_options(xs, ys)
    fixed, none = pair_documents_with_stats(x, y, **opts)
    calibrated, cal = pair_documents_with_stats(x, y, calibrate=0.99, **opts)
    assert none is None and cal.calibrated and cal.null >= MIN_NULL
    p_fixed, _ = precision_recall(fixed, truth)
    p, r = precision_recall(calibrated, truth)
    assert p_fixed < 0.99  # the fixed threshold pairs leftovers with leftovers (measured: 0.964-0.988)
    assert p >= 0.98 and r >= 0.95, (p, r, cal)
    assert cal.estimated_precision - p <= 0.02  # the estimate does not overstate the precision
