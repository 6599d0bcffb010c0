"""Consistency evidence of document pairing: weak sentence evidence and length-ratio outliers (msm.data.pair)."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pyarrow as pa
import pytest

from msm.data.pair import EVIDENCE_MIN_PAIRS, length_outliers, pair_documents_with_stats, weak_scores
from msm.data.pair_stage import _characters

# tests/data is on sys.path (rootdir-relative imports)
from test_calibrate import precision_recall, same_theme_corpus, same_theme_options


def _robust_floor(values: list[float], z: float) -> float:
    """median − z · 1.4826 · MAD, with the standard library (a second implementation)."""
    mid = statistics.median(values)
    return mid - z * 1.4826 * statistics.median([abs(v - mid) for v in values])


def test_weak_scores_drops_exactly_the_candidates_below_the_robust_floor():
    rng = random.Random(0)
    confident = [(i, i) for i in range(30)]
    scores = {(i, i): 0.9 + rng.uniform(-0.02, 0.02) for i in range(30)}
    scores.update({(i, (i + 1) % 30): rng.uniform(0.7, 0.9) for i in range(30)})  # wrong candidates, some weak
    floor = _robust_floor([scores[c] for c in confident], 3.0)
    dropped = weak_scores(scores, confident, 3.0)
    assert dropped == {c for c, v in scores.items() if v < floor}
    assert 0 < len(dropped) < 30 and not dropped & set(confident)
    # the z scale: a larger bound drops a subset
    assert weak_scores(scores, confident, 5.0) < dropped


def test_length_outliers_is_two_sided_on_the_log_ratio():
    confident = [(i, i) for i in range(25)]
    x_len = [100 + 3 * i for i in range(25)] + [100, 100]
    y_len = [round(1.5 * (100 + 3 * i) * (1 + 0.01 * (i % 5 - 2))) for i in range(25)] + [40, 600]
    cand = confident + [(25, 25), (26, 26), (0, 25), (3, 26)]
    ratios = [math.log(x_len[i] / y_len[j]) for i, j in confident]
    mid = statistics.median(ratios)
    bound = 3.0 * max(1.4826 * statistics.median([abs(r - mid) for r in ratios]), 0.05)
    expected = {(i, j) for i, j in cand if abs(math.log(x_len[i] / y_len[j]) - mid) > bound}
    assert length_outliers(cand, confident, x_len, y_len, 3.0) == expected
    assert {(25, 25), (26, 26)} <= expected  # far too long and far too short a partner
    assert not expected & set(confident)


def test_too_few_confident_pairs_drop_nothing():
    confident = [(i, i) for i in range(EVIDENCE_MIN_PAIRS - 1)]
    scores = {c: 0.9 for c in confident} | {(0, 1): 0.1}
    assert weak_scores(scores, confident, 3.0) == set()
    assert length_outliers([(0, 1)], confident, [10] * 20, [1000] * 20, 3.0) == set()


@pytest.mark.parametrize("seed", range(3))
def test_weak_evidence_keeps_leftovers_apart_on_one_theme(seed):
    """The synthetic same-theme corpus with 40 of 160 partners missing a side: the fixed threshold pairs leftovers
    with each other (precision 0.964-0.988); rejecting weak sentence evidence (z = 3) leaves none and keeps R."""
    x, y, xs, ys, truth = same_theme_corpus(seed)
    opts = same_theme_options(xs, ys)
    fixed, _ = pair_documents_with_stats(x, y, **opts)
    report: dict = {}
    checked, _ = pair_documents_with_stats(x, y, score_z=3.0, report=report, **opts)
    assert report["confident"] >= EVIDENCE_MIN_PAIRS and report["rejected_weak_evidence"] > 0
    assert report["rejected_length"] == 0 and report["candidates"] >= len(checked)
    assert precision_recall(fixed, truth)[0] < 0.99
    p, r = precision_recall(checked, truth)
    assert p >= 0.99 and r >= 0.95, (p, r)
    assert {(i, j) for i, j, _ in checked} <= {(i, j) for i, j, _ in fixed} | {(i, truth[i]) for i in truth}


def test_length_evidence_needs_lengths():
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="x_lengths"):
        pair_documents_with_stats(x, x, rescore="bestmatch", x_sentences=list(x[:, None]), y_sentences=list(x[:, None]),
                                  length_z=3.0)


def test_characters_per_document_of_a_sliced_list_column():
    docs = [["ab", "c"], [], None, ["ééé"], ["x", None]]
    arr = pa.array(docs, pa.list_(pa.string()))
    want = [sum(len(s or "") for s in d or []) for d in docs]
    assert _characters(arr).tolist() == want
    assert _characters(arr.slice(2)).tolist() == want[2:]
    assert _characters(pa.chunked_array([arr.slice(1, 3)])).tolist() == want[1:4]
