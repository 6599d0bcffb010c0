"""``msm.data.pair`` against a second implementation written from its docstrings (found by mutation: defaults,
option plumbing, the rescored margin's neighbourhood, evidence rules at their boundaries, the IVF branch of kNN).

The reference below computes every step densely in float64 with plain loops: cosines, each side's k nearest
candidates, ratio margins (Artetxe & Schwenk 2019), sentence evidence and coverage, mutual best, the length and
evidence outlier rules, competitive linking. Only the threshold calibration itself is taken from
``msm.data.calibrate`` (tested in tests/data/test_calibrate.py); its inputs are the reference's own.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

import msm.data.pair as pair
from msm.data.align import align
from msm.data.calibrate import FLOOR, choose_threshold, null_margins, unpartnered


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _corpus(seed: int, n_pairs: int = 24, n_extra: int = 6, d: int = 16, empty_first: bool = False):
    """Translations (shared sentence vectors plus noise, sometimes two sentences merged into one), documents
    without a partner on each side, one common theme; y shuffled. Returns doc embeddings, sentences, lengths."""
    rng = np.random.default_rng(seed)
    theme = rng.normal(size=d)
    xs, ys, xl, yl = [], [], [], []
    for _ in range(n_pairs):
        base = rng.normal(size=(int(rng.integers(1, 7)), d)) + 0.8 * theme
        xs.append(base + 0.45 * rng.normal(size=base.shape))
        yb = base + 0.45 * rng.normal(size=base.shape)
        if len(yb) >= 3 and rng.random() < 0.5:  # a 2-1 link: coverage within one position
            t = int(rng.integers(0, len(yb) - 1))
            yb = np.vstack([yb[:t], yb[t] + yb[t + 1], yb[t + 2:]])
        ys.append(yb)
        n_chars = int(rng.integers(30, 300)) * len(base)
        xl.append(n_chars)
        yl.append(int(n_chars * rng.uniform(1.1, 1.3)))
    for _ in range(n_extra):
        for side, lens in ((xs, xl), (ys, yl)):
            s = rng.normal(size=(int(rng.integers(1, 7)), d)) + 0.8 * theme
            side.append(s)
            lens.append(int(rng.integers(30, 900)) * len(s))
    yl[0] *= 6  # one translation whose length ratio is an outlier
    perm = rng.permutation(len(ys))
    ys, yl = [ys[p] for p in perm], [yl[p] for p in perm]
    if empty_first:  # a document without sentences first on each side (its evidence is 0: ties)
        for side, lens in ((xs, xl), (ys, yl)):
            side.insert(0, np.zeros((0, d)))
            lens.insert(0, 0)
    xs = [_unit(s).astype(np.float32) for s in xs]
    ys = [_unit(s).astype(np.float32) for s in ys]
    doc = lambda s: _unit(s.mean(0)) if len(s) else _unit(rng.normal(size=d))  # noqa: E731
    x = np.stack([doc(s) for s in xs]).astype(np.float32)
    y = np.stack([doc(s) for s in ys]).astype(np.float32)
    return x, y, xs, ys, xl, yl


def _knn_lists(sims: np.ndarray, k: int) -> list[list[int]]:
    return [list(np.argsort(-row, kind="stable")[:k]) for row in sims]


def _coverage(sim: np.ndarray) -> float:
    """Share of sentences whose nearest neighbour's nearest neighbour is within one position (tol=1)."""
    n, m = sim.shape
    bx = [int(np.argmax(sim[i])) for i in range(n)]
    by = [int(np.argmax(sim[:, j])) for j in range(m)]
    hits = sum(abs(by[bx[i]] - i) <= 1 for i in range(n)) + sum(abs(bx[by[j]] - j) <= 1 for j in range(m))
    return hits / (n + m)


def _evidence(a: np.ndarray, b: np.ndarray, how: str, skip_penalty: float) -> float:
    if len(a) == 0 or len(b) == 0:
        return 0.0
    s = a.astype(np.float64) @ b.astype(np.float64).T
    if how == "bestmatch":
        return (np.mean([row.max() for row in s]) + np.mean([col.max() for col in s.T])) / 2
    links = align(a, b, skip_penalty=skip_penalty)  # the mean cosine a sentence gets in the alignment
    covered = sum(link.score * (len(link.src) + len(link.tgt)) for link in links)
    return covered / (len(a) + len(b))


def _bests(margins: dict) -> tuple[dict, dict]:
    """Each document's best candidate; ties go to the smallest index on the other side."""
    best_x, best_y = {}, {}
    for (i, j), m in margins.items():
        if i not in best_x or m > best_x[i][1] or (m == best_x[i][1] and j < best_x[i][0]):
            best_x[i] = (j, m)
        if j not in best_y or m > best_y[j][1] or (m == best_y[j][1] and i < best_y[j][0]):
            best_y[j] = (i, m)
    return best_x, best_y


def _select(best_x, best_y, threshold, mutual):
    chosen = {(i, j): m for i, (j, m) in best_x.items() if not mutual or best_y[j][0] == i}
    if not mutual:
        chosen.update({(i, j): m for j, (i, m) in best_y.items()})
    return sorted((i, j, m) for (i, j), m in chosen.items() if m >= threshold)


def _link(pairs, candidates, threshold):
    used_x, used_y, out = {p[0] for p in pairs}, {p[1] for p in pairs}, list(pairs)
    for (i, j), m in sorted(candidates.items(), key=lambda c: (-c[1], c[0])):
        if m >= threshold and i not in used_x and j not in used_y:
            out.append((i, j, m))
            used_x.add(i)
            used_y.add(j)
    return sorted(out)


def _robust(values) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    mid = float(np.median(v))
    return mid, 1.4826 * float(np.median(np.abs(v - mid)))


def reference(x, y, xs=None, ys=None, *, k=4, threshold=1.0, mutual=True, center_embeddings=False, rescore="none",
              rescore_k=4, assign="none", min_coverage=0.0, skip_penalty=0.1, calibrate=None, score_z=None,
              length_z=None, x_lengths=None, y_lengths=None):
    """(pairs, calibration or None, report) as the module docstring and pair_documents_with_stats define them."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    center = center_embeddings and min(len(x), len(y)) >= 2
    if center:
        x, y = _unit(x - x.mean(0)), _unit(y - y.mean(0))
    sims = x @ y.T
    if rescore == "none":
        kx, ky = min(k, len(y)), min(k, len(x))
        nx, ny = _knn_lists(sims, kx), _knn_lists(sims.T, ky)
        mean_x = [np.mean([sims[i, j] for j in nx[i]]) for i in range(len(x))]
        mean_y = [np.mean([sims[i, j] for i in ny[j]]) for j in range(len(y))]
        margin = lambda i, j: sims[i, j] / ((mean_x[i] + mean_y[j]) / 2)  # noqa: E731
        best_x = {i: max(((j, margin(i, j)) for j in nx[i]), key=lambda c: c[1]) for i in range(len(x))}
        best_y = {j: max(((i, margin(i, j)) for i in ny[j]), key=lambda c: c[1]) for j in range(len(y))}
        pairs = _select(best_x, best_y, threshold, mutual)
        if assign == "greedy":
            cands = {(i, j): margin(i, j) for i in range(len(x)) for j in nx[i]}
            cands.update({(i, j): margin(i, j) for j in range(len(y)) for i in ny[j]})
            pairs = _link(pairs, cands, threshold)
        return pairs, None, {}
    if center:  # one mean over all sentences of a side (none with fewer than two sentences)
        def centred(docs):
            rows = np.concatenate([d.astype(np.float64) for d in docs if len(d)] or [np.zeros((0, x.shape[1]))])
            mean = rows.mean(0) if len(rows) > 1 else 0.0
            return [_unit(d - mean) if len(d) else d for d in docs]
        xs, ys = centred(xs), centred(ys)
    nx, ny = _knn_lists(sims, min(rescore_k, len(y))), _knn_lists(sims.T, min(rescore_k, len(x)))
    cand = sorted({(i, int(j)) for i in range(len(x)) for j in nx[i]} | {(int(i), j) for j in range(len(y)) for i in ny[j]})
    score = {c: _evidence(xs[c[0]], ys[c[1]], rescore, skip_penalty) for c in cand}
    cover = {c: _coverage(xs[c[0]].astype(np.float64) @ ys[c[1]].astype(np.float64).T)
             if len(xs[c[0]]) and len(ys[c[1]]) else 0.0 for c in cand}
    top = lambda vals: np.mean(sorted(vals, reverse=True)[:k])  # noqa: E731  the k best candidate scores
    rx = {i: top([score[c] for c in cand if c[0] == i]) for i in range(len(x))}
    ry = {j: top([score[c] for c in cand if c[1] == j]) for j in range(len(y))}
    margins = {c: score[c] / max((rx[c[0]] + ry[c[1]]) / 2, 1e-12) for c in cand}
    if min_coverage > 0:
        margins = {c: m for c, m in margins.items() if cover[c] >= min_coverage}
    best_x, best_y = _bests(margins)
    report = {}
    if length_z is not None or score_z is not None:
        confident = [(i, j) for i, j, _ in _select(best_x, best_y, threshold, mutual)]
        weak, long = set(), set()
        if len(confident) >= 20 and length_z is not None:
            ratio = lambda i, j: np.log(max(x_lengths[i], 1) / max(y_lengths[j], 1))  # noqa: E731
            mid, spread = _robust([ratio(i, j) for i, j in confident])
            long = {c for c in margins if abs(ratio(*c) - mid) > length_z * max(spread, 0.05)}
        if len(confident) >= 20 and score_z is not None:
            mid, spread = _robust([score[c] for c in confident])
            weak = {c for c in margins if score[c] < mid - score_z * max(spread, 1e-3)}
        report = {"candidates": len(margins), "confident": len(confident), "rejected_weak_evidence": len(weak),
                  "rejected_length": len(long - weak)}
        margins = {c: m for c, m in margins.items() if c not in weak | long}
        best_x, best_y = _bests(margins)
    calibration = None
    if calibrate is not None:
        floor = _select(best_x, best_y, FLOOR, mutual)
        null = null_margins(cand, [score[c] for c in cand], [p for p in floor if p[2] >= threshold] or floor, k)
        n0 = min(unpartnered(np.array([m for _, m in best_x.values()]), null),
                 unpartnered(np.array([m for _, m in best_y.values()]), null))
        if assign == "greedy":
            floor = _link(floor, margins, FLOOR)
        calibration = choose_threshold(np.array([m for _, _, m in floor]), null, n0, calibrate, threshold)
        threshold = calibration.threshold
    pairs = _select(best_x, best_y, threshold, mutual)
    if assign == "greedy":
        pairs = _link(pairs, margins, threshold)
    return pairs, calibration, report


def _same(got, want):
    assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in want]
    np.testing.assert_allclose([m for *_, m in got], [m for *_, m in want], rtol=1e-5, atol=1e-6)


def test_defaults_are_mine_pairs_with_k4_and_threshold_1():
    """Every option off: LASER max mining, k=4, margin >= 1.0, mutual (mine_pairs and pair_documents alike)."""
    x, y, *_ = _corpus(0)
    want, _, _ = reference(x, y, k=4, threshold=1.0)
    assert 15 <= len(want) < len(x)  # some pairs, not every document
    _same(pair.pair_documents(x, y), want)
    _same(pair.mine_pairs(x, y), want)


@pytest.mark.parametrize("options", [
    dict(k=2, threshold=1.02, mutual=False),
    dict(k=3, threshold=1.0, center_embeddings=True, assign="greedy"),
    dict(k=6, threshold=0.95, assign="greedy"),
])
def test_document_level_options(options):
    x, y, *_ = _corpus(1)
    want, _, _ = reference(x, y, **options)
    _same(pair.pair_documents(x, y, **options), want)


def test_rescore_defaults():
    """rescore alone: rescore_k 4, margin neighbourhood k 4, threshold 1.0; align's skip penalty 0.1."""
    x, y, xs, ys, *_ = _corpus(2)
    for how in ("bestmatch", "align"):
        want, _, _ = reference(x, y, xs, ys, rescore=how)
        assert len(want) >= 15
        _same(pair.pair_documents(x, y, rescore=how, x_sentences=xs, y_sentences=ys), want)


@pytest.mark.parametrize("options", [
    dict(rescore="bestmatch", rescore_k=6, k=2, threshold=1.01),
    dict(rescore="align", rescore_k=5, k=3, skip_penalty=0.4, center_embeddings=True),
    dict(rescore="bestmatch", rescore_k=4, min_coverage=0.5, assign="greedy", threshold=0.97),
    dict(rescore="bestmatch", rescore_k=4, min_coverage=1.0),
    dict(rescore="bestmatch", rescore_k=5, mutual=False, threshold=0.0),
    dict(rescore="bestmatch", length_z=3.0, score_z=2.0, threshold=1.0),
    dict(rescore="align", length_z=2.0, mutual=False),
    dict(rescore="bestmatch", score_z=0.5, assign="greedy", threshold=0.98),
    dict(rescore="align", assign="greedy", threshold=0.95),
], ids=["k", "align-center", "coverage-greedy", "coverage-1", "union-0", "evidence", "length-union",
        "score-greedy", "align-greedy"])
@pytest.mark.parametrize("empty_first", [False, True], ids=["", "empty-doc"])
def test_rescore_options(options, empty_first):
    x, y, xs, ys, xl, yl = _corpus(3, empty_first=empty_first)
    want, _, want_report = reference(x, y, xs, ys, x_lengths=xl, y_lengths=yl, **options)
    report = {}
    got, calibration = pair.pair_documents_with_stats(x, y, x_sentences=xs, y_sentences=ys, x_lengths=xl,
                                                      y_lengths=yl, report=report, **options)
    _same(got, want)
    assert report == want_report and calibration is None


def test_greedy_linking_adds_pairs_after_rescoring():
    """Competitive linking pairs documents the mutual-best step leaves free (3 more on this corpus)."""
    x, y, xs, ys, *_ = _corpus(3)
    kw = dict(rescore="align", threshold=0.95, x_sentences=xs, y_sentences=ys)
    mutual, greedy = pair.pair_documents(x, y, **kw), pair.pair_documents(x, y, assign="greedy", **kw)
    assert set(mutual) < set(greedy) and len(greedy) - len(mutual) == 3
    _same(greedy, reference(x, y, xs, ys, rescore="align", threshold=0.95, assign="greedy")[0])


def test_too_small_a_null_keeps_the_configured_threshold():
    """Fewer than MIN_NULL (20) null margins: no calibration, the threshold given stands."""
    x, y, xs, ys, *_ = _corpus(12, n_pairs=6, n_extra=1)
    got, cal = pair.pair_documents_with_stats(x, y, rescore="bestmatch", x_sentences=xs, y_sentences=ys,
                                              calibrate=0.98, threshold=1.05)
    assert cal.threshold == 1.05 and not cal.calibrated and cal.null < 20
    _same(got, reference(x, y, xs, ys, rescore="bestmatch", threshold=1.05)[0])


def test_evidence_rules_drop_what_they_name():
    """The corpus is built so that both rules act: the outlier-length translation, weak leftovers."""
    x, y, xs, ys, xl, yl = _corpus(3)
    _, _, rep = reference(x, y, xs, ys, rescore="bestmatch", length_z=3.0, score_z=2.0, x_lengths=xl, y_lengths=yl)
    assert rep["confident"] >= 20 and rep["rejected_length"] >= 1 and rep["rejected_weak_evidence"] >= 1


@pytest.mark.parametrize("assign", ["none", "greedy"])
def test_calibrated_threshold(assign):
    x, y, xs, ys, *_ = _corpus(4, n_pairs=40, n_extra=14)
    want, want_cal, _ = reference(x, y, xs, ys, rescore="bestmatch", calibrate=0.98, assign=assign, threshold=1.05)
    got, cal = pair.pair_documents_with_stats(x, y, rescore="bestmatch", x_sentences=xs, y_sentences=ys,
                                              calibrate=0.98, assign=assign, threshold=1.05)
    _same(got, want)
    assert cal.candidates == want_cal.candidates and cal.accepted == want_cal.accepted and cal.null == want_cal.null
    assert cal.threshold == pytest.approx(want_cal.threshold, rel=1e-6)
    assert cal.unpartnered == pytest.approx(want_cal.unpartnered)


def test_a_pair_at_the_threshold_is_kept():
    """``>= threshold``: the threshold set to a pair's own margin keeps that pair."""
    x, y, xs, ys, *_ = _corpus(2)
    kw = dict(rescore="bestmatch", x_sentences=xs, y_sentences=ys)
    base = pair.pair_documents(x, y, **kw)
    lowest = min(base, key=lambda p: p[2])
    assert lowest in pair.pair_documents(x, y, threshold=lowest[2], **kw)


def test_option_errors_name_what_is_missing():
    x, y, xs, ys, xl, yl = _corpus(5)
    with pytest.raises(ValueError, match=r"^pair_documents\(calibrate=\.\.\.\) needs rescore \(sentence evidence\)$"):
        pair.pair_documents(x, y, calibrate=0.98)
    with pytest.raises(ValueError, match=r"^pair_documents\(min_coverage=\.\.\.\) needs rescore"):
        pair.pair_documents(x, y, min_coverage=0.3)
    for given in (dict(x_sentences=xs), dict(y_sentences=ys)):
        with pytest.raises(ValueError, match=r"^pair_documents\(rescore=\.\.\.\) needs x_sentences and y_sentences$"):
            pair.pair_documents(x, y, rescore="bestmatch", **given)
    for given in (dict(x_lengths=xl), dict(y_lengths=yl)):
        with pytest.raises(ValueError, match=r"^pair_documents\(length_z=\.\.\.\) needs x_lengths and y_lengths$"):
            pair.pair_documents(x, y, rescore="bestmatch", x_sentences=xs, y_sentences=ys, length_z=3.0, **given)


def test_two_documents_a_side_are_centred_and_one_is_not():
    """Two documents a side are enough to remove each side's mean. By hand (k=1): uncentred, x0's nearest y is y1
    (cos 0.956 vs 0.647), which prefers x1, so only (1, 1) is mutual; centred, x0 - x1 and y0 - y1 point the same
    way and both pairs are mutual."""
    x = _unit(np.array([[1.0, 0.2], [1.0, -0.2]])).astype(np.float32)
    y = _unit(np.array([[0.5, 0.9], [1.0, -0.1]])).astype(np.float32)
    assert [(i, j) for i, j, _ in pair.pair_documents(x, y, k=1, threshold=0.0)] == [(1, 1)]
    centred = pair.pair_documents(x, y, center_embeddings=True, k=1, threshold=0.0)
    assert [(i, j) for i, j, _ in centred] == [(0, 0), (1, 1)]
    _same(centred, reference(x, y, center_embeddings=True, k=1, threshold=0.0)[0])
    one = pair.mine_pairs(x[:1], y[:1], k=1, threshold=0.0)
    assert [(i, j) for i, j, _ in one] == [(0, 0)]  # one document a side: a pair of margin 1
    assert [(i, j) for i, j, _ in pair.pair_documents(x[:1], y, center_embeddings=True, k=1, threshold=0.0)] == [(0, 1)]


def test_center_and_row_mean_definitions():
    rng = np.random.default_rng(7)
    v = rng.normal(size=(3, 5)) + 2
    np.testing.assert_allclose(pair.center(v), _unit(v - v.mean(0)), rtol=1e-6)
    np.testing.assert_allclose(pair.center(v[:2]), _unit(v[:2] - v[:2].mean(0)), rtol=1e-6)
    np.testing.assert_allclose(pair.center(v[:1]), _unit(v[:1]), rtol=1e-6)  # a lone row has no mean to remove
    assert pair.center(v).dtype == np.float32
    docs = [v[:2].astype(np.float32), np.zeros((0, 5), np.float32), v[2:].astype(np.float32)]
    np.testing.assert_allclose(pair._row_mean(docs), v.mean(0), rtol=1e-6)
    assert pair._row_mean([v[:1], v[:0]]) == 0.0 and pair._row_mean([]) == 0.0  # fewer than two rows
    np.testing.assert_allclose(pair._row_mean([v[:2]]), v[:2].mean(0), rtol=1e-6)  # two rows are enough
    np.testing.assert_allclose(pair._unit(np.array([3.0, 4.0])), [0.6, 0.8])  # the last axis, also of a vector


def test_competitive_linking_by_hand():
    """Decreasing margin, ties by index, each document once, ``>= threshold``."""
    cands = {(2, 2): 0.8, (1, 2): 0.8, (2, 1): 0.8, (0, 0): 1.0, (0, 1): 0.9, (3, 3): 0.5}
    assert pair.competitive_linking([], cands, 0.8) == [(0, 0, 1.0), (1, 2, 0.8), (2, 1, 0.8)]
    assert pair.competitive_linking([(3, 0, 2.0)], cands, 0.5) == [(0, 1, 0.9), (1, 2, 0.8), (3, 0, 2.0)]


def _confident(n=20):
    return [(i, i) for i in range(n)]


def test_length_outliers_by_hand():
    """|log(lx/ly) - median| > z * max(1.4826 MAD, 0.05) over exactly 20 confident pairs; lengths floored at 1."""
    xl, yl = [100] * 20 + [1, 2, 100, 100], [100] * 20 + [2, 1, 100, 100]
    assert pair.length_outliers([(20, 20), (21, 21)], _confident(), xl, yl, 3.0) == {(20, 20), (21, 21)}
    assert pair.length_outliers([(20, 20)], _confident(19), xl, yl, 3.0) == set()  # fewer than 20: nothing
    assert pair.length_outliers([(0, 0), (22, 22)], _confident(), xl, yl, 0.0) == set()  # at the median: kept
    # spread from the MAD: ratios e^{±0.2}, MAD 0.2 -> spread 0.2965; z=2 -> cut 0.593
    r = np.array([0.2, -0.2] * 10)
    xl2 = [int(round(1000 * np.exp(v))) for v in r] + [int(round(1000 * np.exp(0.7))), int(round(1000 * np.exp(0.5)))]
    yl2 = [1000] * 22
    mid, spread = _robust([np.log(a / b) for a, b in zip(xl2[:20], yl2[:20])])
    assert 0.55 < 2 * spread < 0.65 and abs(mid) < 0.01
    assert pair.length_outliers([(20, 20), (21, 21)], _confident(), xl2, yl2, 2.0) == {(20, 20)}


def test_weak_scores_by_hand():
    """score < median - z * max(1.4826 MAD, 1e-3) over exactly 20 confident pairs."""
    scores = {(i, i): 0.9 for i in range(20)} | {(20, 20): 0.85, (21, 21): 0.9}
    assert pair.weak_scores(scores, _confident(), 2.0) == {(20, 20)}
    assert pair.weak_scores(scores, _confident(19), 2.0) == set()
    assert pair.weak_scores(scores, _confident(), 0.0) == {(20, 20)}  # at the floor (the median): kept


def test_sentence_evidence_definitions():
    x, y, xs, ys, *_ = _corpus(8)
    a, b = xs[3], ys[5]
    assert pair.sentence_evidence(a, b) == pytest.approx(_evidence(a, b, "bestmatch", 0.1))  # default bestmatch
    for penalty in (0.1, 0.6):
        assert pair.sentence_evidence(a, b, "align", skip_penalty=penalty) == pytest.approx(
            _evidence(a, b, "align", penalty))
    assert pair.sentence_evidence(a, b, "align") == pytest.approx(_evidence(a, b, "align", 0.1))
    # by hand: a1 has no translation. Skipped at the default penalty 0.1: links (a0, b0) and (a2, b1) of cosine 1
    # cover 4 of 5 sentences -> 0.8; a penalty of 1.1 would merge a0+a1 -> b0 (cosine 1/sqrt 2) instead.
    e = np.eye(3, dtype=np.float32)
    assert pair.sentence_evidence(e, e[[0, 2]], "align") == pytest.approx(0.8)
    assert pair.sentence_evidence(e, e[[0, 2]], "align", skip_penalty=1.1) == pytest.approx((3 / 2 ** 0.5 + 2) / 5)


class _RecordingFaiss:
    """faiss with IndexIVFFlat recorded: its arguments, the training rows and nprobe (read after search)."""

    def __init__(self):
        self.ivf = []

    def __getattr__(self, name):
        return getattr(faiss, name)

    def IndexIVFFlat(self, quantizer, dim, nlist, metric):  # noqa: N802 (faiss's name)
        rec = {"quantizer_d": quantizer.d, "quantizer_ip": isinstance(quantizer, faiss.IndexFlatIP), "dim": dim,
               "nlist": nlist, "metric": metric, "train": []}
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
        self.ivf.append(rec)

        class Recorded:
            def train(self, rows):
                rec["train"].append(np.array(rows))
                index.train(rows)

            def __getattr__(self, name):
                return getattr(index, name)

            def __setattr__(self, name, value):
                rec[name] = value
                setattr(index, name, value)

        rec["index"] = Recorded()
        return rec["index"]


@pytest.fixture
def recording(monkeypatch):
    rec = _RecordingFaiss()
    monkeypatch.setattr(pair, "faiss", rec)
    return rec


@pytest.mark.parametrize("n,nlist,nprobe", [(1100, 132, 16), (3000, 219, 27)])
def test_knn_above_exact_max_is_the_documented_ivf(recording, n, nlist, nprobe):
    """4·sqrt(n) lists, nprobe = an eighth of them (at least 16), trained on up to 256 rows a list drawn once each;
    and its neighbours are (almost all) the exact ones."""
    rng = np.random.default_rng(9)
    centres = rng.normal(size=(40, 12))
    base = _unit(centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, 12)))
    query = _unit(base[:200] + 0.1 * rng.normal(size=(200, 12)))
    sims, idx = pair.knn(query, base, 5, exact_max=n - 1)
    (rec,) = recording.ivf
    assert (rec["nlist"], rec["dim"], rec["quantizer_d"], rec["nprobe"]) == (nlist, 12, 12, nprobe)
    assert rec["quantizer_ip"] and rec["metric"] == faiss.METRIC_INNER_PRODUCT
    (rows,) = rec["train"]
    assert rows.dtype == np.float32 and len(rows) == min(n, 256 * nlist)
    assert len(np.unique(rows, axis=0)) == len(rows)  # without replacement
    assert idx.shape == sims.shape == (200, 5) and sims.dtype == np.float32 and idx.dtype == np.int64
    exact = np.argsort(-(query @ base.T), axis=1)[:, :5]
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(idx, exact)])
    assert recall >= 0.9
    np.testing.assert_allclose(sims, np.take_along_axis(query @ base.T, idx, 1), atol=1e-5)


def test_knn_is_exact_up_to_exact_max_and_handles_no_queries(recording):
    rng = np.random.default_rng(10)
    base = _unit(rng.normal(size=(50, 6)))
    sims, idx = pair.knn(base[:7], base, 3, exact_max=50)
    assert recording.ivf == []
    np.testing.assert_array_equal(idx, np.argsort(-(base[:7] @ base.T), axis=1)[:, :3])
    sims, idx = pair.knn(base[:0], base, 3)
    assert sims.shape == idx.shape == (0, 3) and sims.dtype == np.float32 and idx.dtype == np.int64


@pytest.mark.parametrize("rescore", ["none", "bestmatch"])
def test_exact_max_reaches_knn(recording, rescore):
    """pair_documents(exact_max=...) is the kNN's: above it both directions use the IVF index."""
    x, y, xs, ys, *_ = _corpus(11, n_pairs=40, n_extra=0)
    pair.pair_documents(x, y, rescore=rescore, x_sentences=xs, y_sentences=ys, exact_max=10)
    assert len(recording.ivf) == 2
