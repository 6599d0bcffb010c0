"""Margin-based document pairing against a brute-force NumPy computation of the ratio margin."""

from __future__ import annotations

import numpy as np
import pytest

from msm.data.embed import document_embeddings
from msm.data.pair import mine_pairs, pair_documents, sentence_coverage, sentence_evidence

from factories import unit


def brute_force_pairs(x, y, k, threshold, mutual):
    sim = x @ y.T
    kx, ky = min(k, len(y)), min(k, len(x))
    rx = np.sort(sim, axis=1)[:, ::-1][:, :kx].mean(1)
    ry = np.sort(sim, axis=0)[::-1, :][:ky].mean(0)
    margin = sim / ((rx[:, None] + ry[None, :]) / 2)
    # candidates are each side's k nearest neighbours by cosine (LASER); the best margin among them wins
    cand_x = np.argsort(-sim, axis=1)[:, :kx]
    cand_y = np.argsort(-sim, axis=0)[:ky].T
    fwd = {i: int(max(cand_x[i], key=lambda j: margin[i, j])) for i in range(len(x))}
    bwd = {j: int(max(cand_y[j], key=lambda i: margin[i, j])) for j in range(len(y))}
    pairs = {(i, j) for i, j in fwd.items() if not mutual or bwd[j] == i}
    if not mutual:
        pairs |= {(i, j) for j, i in bwd.items()}
    return sorted((i, j, float(margin[i, j])) for i, j in pairs if margin[i, j] >= threshold)


@pytest.mark.parametrize("mutual", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed: int, mutual: bool) -> None:
    rng = np.random.default_rng(seed)
    x = unit(rng.normal(size=(30, 16)).astype(np.float32))
    y = unit((x[rng.permutation(30)[:25]] + 0.8 * rng.normal(size=(25, 16))).astype(np.float32))
    for k, threshold in [(1, 0.0), (4, 1.0), (8, 1.05)]:
        got = mine_pairs(x, y, k=k, threshold=threshold, mutual=mutual)
        want = brute_force_pairs(x, y, k, threshold, mutual)
        assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in want]
        assert np.allclose([m for *_, m in got], [m for *_, m in want], atol=1e-5)


def test_recovers_planted_permutation_and_rejects_unpaired() -> None:
    rng = np.random.default_rng(1)
    x = unit(rng.normal(size=(50, 32)).astype(np.float32))
    perm = rng.permutation(50)
    y = unit(x[perm] + 0.3 * rng.normal(size=(50, 32)).astype(np.float32) / np.sqrt(32))
    y[:5] = unit(rng.normal(size=(5, 32)).astype(np.float32))  # 5 documents without a translation
    pairs = mine_pairs(x, y, k=4, threshold=1.1, mutual=True)
    assert {(i, j) for i, j, _ in pairs} == {(int(perm[j]), j) for j in range(5, 50)}


def test_empty_side() -> None:
    assert mine_pairs(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32)) == []


def test_document_embedding_is_normalised_mean_of_sentences() -> None:
    rng = np.random.default_rng(2)
    s = unit(rng.normal(size=(7, 8)).astype(np.float32))
    d = document_embeddings(s, np.array([0, 3, 4, 7]))
    for row, (a, b) in zip(d, [(0, 3), (3, 4), (4, 7)]):
        assert np.allclose(row, unit(s[a:b].mean(0)), atol=1e-6)


def test_a_document_without_sentences_has_no_evidence():
    a = np.eye(3, dtype=np.float32)
    for empty_first in (True, False):
        x, y = (a[:0], a) if empty_first else (a, a[:0])
        assert sentence_coverage(x, y) == 0.0
        assert sentence_evidence(x, y, "bestmatch") == 0.0 and sentence_evidence(x, y, "align") == 0.0
    assert sentence_coverage(a, a) == 1.0 and sentence_evidence(a, a, "bestmatch") == pytest.approx(1.0)


def test_argument_checks():
    a = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown sentence evidence 'cosine'"):
        sentence_evidence(a, a, "cosine")
    with pytest.raises(ValueError, match=r"min_coverage=\.\.\.\) needs rescore"):
        pair_documents(a, a, min_coverage=0.5)
    assert pair_documents(a[:0], a) == [] and pair_documents(a, a[:0], rescore="bestmatch") == []
