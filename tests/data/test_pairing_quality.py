"""pair_documents: 1-1 competitive linking after mutual best, centering and sentence-evidence re-scoring."""

from __future__ import annotations

import numpy as np
import pytest

from msm.data.config import PairConfig
from msm.data.pair import (
    _evidence_scores,
    competitive_linking,
    mine_pairs,
    pair_documents,
    sentence_coverage,
    sentence_evidence,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def near_duplicate_case(seed: int = 0):
    """30 translated documents where x[1] is a near-duplicate of x[0] (think synoptic Gospel chapters) and its
    translation is noisy, so x[1]'s nearest target is y(x[0]); plus 4 sources and 3 targets without a partner."""
    rng = np.random.default_rng(seed)
    d, n = 64, 30
    x = unit(rng.normal(size=(n, d)))
    x[1] = unit(x[0] + 0.35 * unit(rng.normal(size=d)))
    y = unit(x + 0.25 * unit(rng.normal(size=(n, d))))
    y[0] = unit(x[0] + 0.1 * unit(rng.normal(size=d)))
    y[1] = unit(x[1] + 0.9 * unit(rng.normal(size=d)))
    xs = np.vstack([x, unit(rng.normal(size=(4, d)))])
    perm = rng.permutation(n + 3)
    ys = np.vstack([y, unit(rng.normal(size=(3, d)))])[perm]
    truth = {(int(perm[j]), j) for j in range(n + 3) if perm[j] < n}
    return xs, ys, truth


def test_assignment_recovers_the_pair_mutual_best_misses_and_leaves_outliers() -> None:
    x, y, truth = near_duplicate_case()
    j0 = next(j for i, j in truth if i == 0)
    j1 = next(j for i, j in truth if i == 1)
    sim = x @ y.T
    assert sim[1, j0] > sim[1, j1]  # the case is what it claims: x[1]'s nearest target is x[0]'s translation
    mutual = {(i, j) for i, j, _ in mine_pairs(x, y, k=4, threshold=1.0)}
    assert (1, j1) not in mutual and mutual < truth  # mutual best misses it, and makes no error
    got = pair_documents(x, y, k=4, threshold=1.0, assign="greedy")
    assert {(i, j) for i, j, _ in got} == truth  # exactly the planted matching: no outlier is paired
    assert all(m >= 1.0 for *_, m in got)


def test_defaults_are_mine_pairs() -> None:
    x, y, _ = near_duplicate_case(3)
    for mutual in (True, False):
        assert pair_documents(x, y, k=4, threshold=1.0, mutual=mutual) == mine_pairs(x, y, 4, 1.0, mutual)


def test_competitive_linking_is_one_to_one_and_respects_threshold() -> None:
    cand = {(0, 0): 1.3, (1, 0): 1.2, (1, 1): 1.1, (2, 1): 1.15, (2, 2): 0.9, (3, 3): 1.05}
    got = competitive_linking([(3, 3, 1.05)], cand, threshold=1.0)
    assert got == [(0, 0, 1.3), (2, 1, 1.15), (3, 3, 1.05)]  # 1 loses both its candidates; (2, 2) < threshold


def test_centering_removes_a_shared_component() -> None:
    """Every document carries a large common direction per side (language/domain): raw margins are flat, so few
    pairs clear the threshold; centering each side recovers the matching."""
    rng = np.random.default_rng(4)
    n, d = 40, 48
    content = unit(rng.normal(size=(n, d)))
    common_x, common_y = unit(rng.normal(size=d)), unit(rng.normal(size=d))
    x = unit(3.0 * common_x + content)
    perm = rng.permutation(n)
    y = unit(3.0 * common_y + content[perm] + 0.6 * unit(rng.normal(size=(n, d))))
    truth = {(int(perm[j]), j) for j in range(n)}
    centered = {(i, j) for i, j, _ in pair_documents(x, y, k=4, threshold=1.0, center_embeddings=True)}
    assert centered == truth


@pytest.mark.parametrize("how", ["bestmatch", "align"])
def test_rescore_by_sentences_recovers_documents_with_a_shared_topic(how: str) -> None:
    """Documents made of sentences drawn from a few shared topics: their mean embeddings are close to each
    other, but their sentences (and order) identify the translation."""
    rng = np.random.default_rng(5)
    d, n, topics = 32, 20, unit(rng.normal(size=(3, 32)))
    xs, ys = [], []
    for _ in range(n):
        m = int(rng.integers(5, 12))
        s = unit(topics[rng.integers(0, 3, m)] + 0.5 * unit(rng.normal(size=(m, d))))
        xs.append(s)
        ys.append(unit(s + 0.3 * unit(rng.normal(size=(m, d)))))
    perm = rng.permutation(n)
    ys = [ys[p] for p in perm]
    x = unit(np.stack([s.mean(0) for s in xs]))
    y = unit(np.stack([s.mean(0) for s in ys]))
    truth = {(int(perm[j]), j) for j in range(n)}
    got = pair_documents(x, y, k=4, threshold=1.0, rescore=how, rescore_k=8, assign="greedy",
                         x_sentences=xs, y_sentences=ys)
    assert {(i, j) for i, j, _ in got} == truth
    assert sentence_evidence(xs[0], ys[int(np.argmax(perm == 0))], how) > sentence_evidence(xs[0], ys[0 if perm[0] else 1], how)


def test_rescore_needs_sentences() -> None:
    x, y, _ = near_duplicate_case()
    with pytest.raises(ValueError, match="x_sentences"):
        pair_documents(x, y, rescore="bestmatch")


def test_batched_bestmatch_equals_pairwise() -> None:
    rng = np.random.default_rng(6)
    xs = [unit(rng.normal(size=(int(rng.integers(1, 9)), 16))) for _ in range(6)]
    ys = [unit(rng.normal(size=(int(rng.integers(1, 9)), 16))) for _ in range(5)]
    cand = [(i, j) for i in range(6) for j in range(5) if (i + j) % 2 == 0]
    want = [sentence_evidence(xs[i], ys[j], "bestmatch") for i, j in cand]
    score, cover = _evidence_scores(cand, xs, ys, "bestmatch", 0.1)
    assert np.allclose(score, want, atol=1e-6)
    assert np.allclose(cover, [sentence_coverage(xs[i], ys[j]) for i, j in cand])


def topic_documents(rng, n: int, d: int = 32, noise: float = 0.3):
    """Sentences of n documents around a shared component (one language's style) and their noisy translations
    around another shared component."""
    style_x, style_y = unit(rng.normal(size=d)), unit(rng.normal(size=d))
    xs, ys = [], []
    for _ in range(n):
        m = int(rng.integers(5, 15))
        content = unit(rng.normal(size=(m, d)))
        xs.append(unit(2.0 * style_x + content))
        ys.append(unit(2.0 * style_y + content + noise * unit(rng.normal(size=(m, d)))))
    return xs, ys


def test_default_config_pairs_partial_overlap_without_errors() -> None:
    """PairConfig() on two collections where a fifth of each side has no translation: every true pair, no
    other pair (the documents without a partner stay unpaired)."""
    rng = np.random.default_rng(7)
    xs, ys = topic_documents(rng, 50)
    keep_x, keep_y = list(range(40)), list(range(10, 50))  # x 0-9 and y 40-49 have no partner
    perm = rng.permutation(len(keep_y))
    xs = [xs[i] for i in keep_x]
    ys = [ys[keep_y[p]] for p in perm]
    x = unit(np.stack([s.mean(0) for s in xs]))
    y = unit(np.stack([s.mean(0) for s in ys]))
    truth = {(keep_y[p], j) for j, p in enumerate(perm) if keep_y[p] < 40}
    cfg = PairConfig()
    got = pair_documents(x, y, k=cfg.k, threshold=cfg.margin_threshold, mutual=cfg.mutual,
                         center_embeddings=cfg.center, rescore=cfg.rescore, rescore_k=cfg.rescore_k,
                         assign=cfg.assign, x_sentences=xs, y_sentences=ys)
    assert {(i, j) for i, j, _ in got} == truth


def test_center_skips_a_lone_document() -> None:
    x = unit(np.array([[1.0, 0.2, 0.0]], np.float32))
    y = unit(np.array([[0.9, 0.3, 0.1], [0.0, 1.0, 0.0]], np.float32))
    assert [(i, j) for i, j, _ in pair_documents(x, y, k=1, threshold=0.0, center_embeddings=True)] == [(0, 0)]


def test_sentence_coverage_translation_split_and_same_story() -> None:
    rng = np.random.default_rng(8)
    a = unit(rng.normal(size=(12, 32)))
    translation = unit(a + 0.3 * unit(rng.normal(size=(12, 32))))
    assert sentence_coverage(a, translation) == 1.0
    # every third sentence split in two halves that each keep most of the meaning (1-2 links)
    split = []
    for i, s in enumerate(translation):
        split.extend([unit(s + 0.4 * unit(rng.normal(size=32))) for _ in range(2 if i % 3 == 0 else 1)])
    assert sentence_coverage(a, np.stack(split)) >= 0.9
    # another article on the same story: a few sentences in common, the rest different
    other = np.vstack([translation[[1, 5, 9]], unit(rng.normal(size=(7, 32)))])
    assert sentence_coverage(a, other) < 0.6
