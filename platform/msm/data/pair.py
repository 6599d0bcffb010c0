"""Cross-lingual document pairing by ratio margin (Artetxe & Schwenk 2019), with faiss kNN.

:func:`mine_pairs` is LASER-style "max" mining: each document's best-margin candidate among its k nearest
neighbours, kept when both sides agree (mutual best) and the margin clears a threshold.
:func:`pair_documents` is what ``msm mine`` calls; on top of :func:`mine_pairs` it can

* ``center``: remove each side's mean before kNN. A document embedding is the mean of its sentence embeddings,
  so every document of one language (and domain) shares a large common component; subtracting each side's
  centroid leaves the content (the language-mean-centering of Libovický et al. 2020);
* ``rescore``: replace the document-embedding cosine of every kNN candidate pair by sentence-level evidence
  (``bestmatch``: mean over the sentences of both documents of their best cosine in the other document; or
  ``align``: the coverage-weighted cosine of the monotonic DP alignment of :mod:`msm.data.align`), then mine with
  the same ratio margin over those scores ("bitext mining + alignment re-ranking");
* ``assign``: after the mutual-best pairs, link the documents both sides left unpaired one-to-one by competitive
  linking (Melamed 2000): candidate pairs in decreasing margin, each taken if both documents are still free
  and its margin clears the threshold. A document whose translation is missing keeps no partner unless some
  free candidate clears the threshold on its own;
* ``min_coverage`` (with ``rescore``): a candidate pair needs that share of its sentences to be mutual nearest
  neighbours (:func:`sentence_coverage`), which rejects two different articles on the same story;
* ``score_z`` / ``length_z`` (with ``rescore``): consistency evidence. A candidate whose sentence evidence lies far
  below that of the pairs this language pair is confident about (:func:`weak_scores`), or whose length ratio is
  an outlier among theirs (:func:`length_outliers`), can not be paired: two leftovers on one theme.

Measurements and the choice of defaults (``msm.data.config.PairConfig``): docs/mining.md, "Document pairing".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import faiss
import numpy as np

from msm.data.align import align
from msm.data.calibrate import FLOOR, Calibration, choose_threshold, null_margins, unpartnered

Rescore = Literal["none", "bestmatch", "align"]
Assign = Literal["none", "greedy"]


EXACT_KNN_MAX = 200_000  # documents per side searched exactly; above it an IVF index (see knn)
QUERY_BLOCK = 16_384  # queries per faiss search call: bounds the (block, k) result buffers, not the index


def knn(query: np.ndarray, base: np.ndarray, k: int, exact_max: int = EXACT_KNN_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product k nearest neighbours of every ``query`` row in ``base``: ``(sims, idx)``, each (n, k).

    Exact (``IndexFlatIP``) up to ``exact_max`` base rows; above, IVF-Flat with 4·sqrt(n) lists and nprobe = an
    eighth of them (at least 16), trained on at most 256 vectors a list, which kept recall@10 at 0.985 on 72k real
    e5-small vectors (docs/evaluation.md, search speed). Queries go in blocks of :data:`QUERY_BLOCK`.
    """
    base = np.ascontiguousarray(base, dtype=np.float32)
    dim = base.shape[1]
    if len(base) <= exact_max:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = int(4 * np.sqrt(len(base)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(len(base), min(len(base), 256 * nlist), replace=False)
        index.train(base[np.sort(sample)])
        index.nprobe = min(nlist, max(16, nlist // 8))
    index.add(base)
    sims, idx = zip(*(index.search(np.ascontiguousarray(query[s:s + QUERY_BLOCK], dtype=np.float32), k)
                      for s in range(0, len(query), QUERY_BLOCK))) if len(query) else ((np.zeros((0, k), np.float32),),
                                                                                     (np.zeros((0, k), np.int64),))
    return np.concatenate(sims), np.concatenate(idx)


class _Centred(Sequence):
    """``rows[i] - mean``, L2-normalised, made when asked for: a document's sentences are read only if it is a
    candidate (``rows`` may be a lazy store over a memory map)."""

    def __init__(self, rows: Sequence[np.ndarray], mean) -> None:
        self.rows, self.mean = rows, mean

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        return _unit(self.rows[i] - self.mean)


def _row_mean(rows: Sequence[np.ndarray]):
    """Mean of all rows of all documents (0.0 when there are fewer than two rows), read one document at a time."""
    total, n = 0.0, 0
    for r in rows:
        if len(r):
            total = total + r.astype(np.float64).sum(0)
            n += len(r)
    return (total / n).astype(np.float32) if n > 1 else 0.0


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def center(v: np.ndarray) -> np.ndarray:
    """Rows minus their mean, L2-normalised (one language's documents or sentences)."""
    return _unit(v - v.mean(0, keepdims=True)) if len(v) > 1 else _unit(v)


def margin_scores(x: np.ndarray, y: np.ndarray, k: int,
                  exact_max: int = EXACT_KNN_MAX) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate margins for L2-normalised ``x`` (n, d) against ``y`` (m, d).

    ratio margin(x, y) = cos(x, y) / (mean_{z in NN_k(x)} cos(x, z) / 2 + mean_{z in NN_k(y)} cos(y, z) / 2).
    Returns ``(fwd_idx, fwd_margin, bwd_idx, bwd_margin)``: the k nearest candidates of each x in y and of each
    y in x, with their margins.
    """
    kx, ky = min(k, len(y)), min(k, len(x))
    sim_xy, idx_xy = knn(x, y, kx, exact_max)
    sim_yx, idx_yx = knn(y, x, ky, exact_max)
    mean_x, mean_y = sim_xy.mean(1), sim_yx.mean(1)
    fwd = sim_xy / ((mean_x[:, None] + mean_y[idx_xy]) / 2)
    bwd = sim_yx / ((mean_y[:, None] + mean_x[idx_yx]) / 2)
    return idx_xy, fwd, idx_yx, bwd


def _mutual_best(idx_xy, fwd, idx_yx, bwd, threshold: float, mutual: bool) -> list[tuple[int, int, float]]:
    best_x = {i: (int(idx_xy[i, a]), float(fwd[i, a])) for i, a in enumerate(fwd.argmax(1))}
    best_y = {j: (int(idx_yx[j, b]), float(bwd[j, b])) for j, b in enumerate(bwd.argmax(1))}
    return _select(best_x, best_y, threshold, mutual)


def _select(best_x: dict[int, tuple[int, float]], best_y: dict[int, tuple[int, float]], threshold: float,
            mutual: bool) -> list[tuple[int, int, float]]:
    """Pairs from each side's best candidate: those both sides agree on (``mutual``) or, otherwise, the union of
    both directions; only margins ``>= threshold``."""
    pairs: dict[tuple[int, int], float] = {}
    for i, (j, m) in best_x.items():
        if not mutual or best_y[j][0] == i:
            pairs[(i, j)] = m
    if not mutual:
        for j, (i, m) in best_y.items():
            pairs[(i, j)] = max(pairs.get((i, j), m), m)
    return sorted((i, j, m) for (i, j), m in pairs.items() if m >= threshold)


def mine_pairs(x: np.ndarray, y: np.ndarray, k: int = 4, threshold: float = 1.0,
               mutual: bool = True) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, margin)`` of ``x[i]`` and ``y[j]``: each side's best-margin candidate among its k nearest
    neighbours by cosine (LASER "max" mining), kept when both agree
    (``mutual``) or, otherwise, the union of both directions' best; only margins ``>= threshold``."""
    if len(x) == 0 or len(y) == 0:
        return []
    return _mutual_best(*margin_scores(x, y, k), threshold, mutual)


def _candidates(idx_xy, fwd, idx_yx, bwd) -> dict[tuple[int, int], float]:
    """Every (i, j) in either side's kNN list with its margin (the same value from both sides)."""
    cand: dict[tuple[int, int], float] = {}
    for i in range(len(idx_xy)):
        for a in range(idx_xy.shape[1]):
            cand[(i, int(idx_xy[i, a]))] = float(fwd[i, a])
    for j in range(len(idx_yx)):
        for b in range(idx_yx.shape[1]):
            cand.setdefault((int(idx_yx[j, b]), j), float(bwd[j, b]))
    return cand


def competitive_linking(pairs: list[tuple[int, int, float]], candidates: dict[tuple[int, int], float],
                        threshold: float) -> list[tuple[int, int, float]]:
    """``pairs`` plus one-to-one links between documents ``pairs`` leaves free: candidates in decreasing margin
    (ties by index), each kept when both ends are still free and its margin is ``>= threshold``."""
    used_x, used_y = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
    out = list(pairs)
    for (i, j), m in sorted(candidates.items(), key=lambda c: (-c[1], c[0])):
        if m >= threshold and i not in used_x and j not in used_y:
            out.append((i, j, m))
            used_x.add(i)
            used_y.add(j)
    return sorted(out)


def sentence_evidence(a: np.ndarray, b: np.ndarray, how: Rescore = "bestmatch", skip_penalty: float = 0.1) -> float:
    """Similarity of two documents from their L2-normalised sentence embeddings ``a`` (n, d), ``b`` (m, d).

    ``bestmatch``: (mean_i max_j cos(a_i, b_j) + mean_j max_i cos(a_i, b_j)) / 2.
    ``align``: the DP alignment of :func:`msm.data.align.align`; Σ over links of cos × sentences covered,
    divided by n + m (skipped sentences count 0), i.e. the mean cosine a sentence gets in the alignment.
    """
    if len(a) == 0 or len(b) == 0:
        return 0.0
    if how == "bestmatch":
        s = a @ b.T
        return float((s.max(1).mean() + s.max(0).mean()) / 2)
    if how == "align":

        links = align(a, b, skip_penalty=skip_penalty)
        return float(sum(l.score * (len(l.src) + len(l.tgt)) for l in links) / (len(a) + len(b)))
    raise ValueError(f"unknown sentence evidence {how!r}")


def sentence_coverage(a: np.ndarray, b: np.ndarray, tol: int = 1) -> float:
    """Share of the sentences of both documents that are mutual nearest neighbours in the pair's sentence
    similarity matrix, up to ``tol`` positions: sentence ``a_i`` counts when its nearest ``b_j`` has its own
    nearest ``a`` within ``i ± tol`` (and the same the other way). ``tol=1`` keeps a sentence split in two or
    three (1-2 / 1-3 links) covered. Translations score ≈ 1; two articles on the same story typically < 0.6."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    return _coverage(a @ b.T, tol)


def _coverage(sim: np.ndarray, tol: int) -> float:
    bx, by = sim.argmax(1), sim.argmax(0)
    cx = np.abs(by[bx] - np.arange(sim.shape[0])) <= tol
    cy = np.abs(bx[by] - np.arange(sim.shape[1])) <= tol
    return float((cx.sum() + cy.sum()) / (sim.shape[0] + sim.shape[1]))


def _evidence_scores(cand: Sequence[tuple[int, int]], xs: Sequence[np.ndarray], ys: Sequence[np.ndarray],
                     how: Rescore, skip_penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sentence_evidence` and :func:`sentence_coverage` of every candidate pair, from one product per
    source document."""
    by_x: dict[int, list[int]] = {}
    for c, (i, _) in enumerate(cand):
        by_x.setdefault(i, []).append(c)
    score, cover = np.zeros(len(cand)), np.zeros(len(cand))
    for i, cs in by_x.items():
        blocks = [ys[cand[c][1]] for c in cs]
        if len(xs[i]) == 0:
            continue
        sim = xs[i] @ np.concatenate(blocks).T  # (n_i, sum of candidate lengths), split back per candidate
        for c, part in zip(cs, np.split(sim, np.cumsum([len(b) for b in blocks])[:-1], axis=1)):
            if part.shape[1]:
                cover[c] = _coverage(part, 1)
                score[c] = ((part.max(1).mean() + part.max(0).mean()) / 2 if how == "bestmatch"
                            else sentence_evidence(xs[i], ys[cand[c][1]], how, skip_penalty))
    return score, cover


def _rescored_margins(cand: Sequence[tuple[int, int]], scores: np.ndarray, n: int, m: int,
                      k: int) -> dict[tuple[int, int], float]:
    """Ratio margin over sparse candidate scores: score / ((mean of x's k best + mean of y's k best) / 2)."""
    by_x: list[list[float]] = [[] for _ in range(n)]
    by_y: list[list[float]] = [[] for _ in range(m)]
    for (i, j), s in zip(cand, scores):
        by_x[i].append(s)
        by_y[j].append(s)
    rx = np.array([np.mean(sorted(v, reverse=True)[:k]) if v else 1.0 for v in by_x])
    ry = np.array([np.mean(sorted(v, reverse=True)[:k]) if v else 1.0 for v in by_y])
    return {(i, j): float(s / max((rx[i] + ry[j]) / 2, 1e-12)) for (i, j), s in zip(cand, scores)}


def _bests(margins: dict[tuple[int, int], float]) -> tuple[dict, dict]:
    """Each document's best candidate ``{i: (j, margin)}`` and ``{j: (i, margin)}`` (ties: the first by index)."""
    best_x: dict[int, tuple[int, float]] = {}
    best_y: dict[int, tuple[int, float]] = {}
    for (i, j), mg in sorted(margins.items()):
        if i not in best_x or mg > best_x[i][1]:
            best_x[i] = (j, mg)
        if j not in best_y or mg > best_y[j][1]:
            best_y[j] = (i, mg)
    return best_x, best_y


EVIDENCE_MIN_PAIRS = 20  # confident pairs needed to estimate a language pair's evidence and length ratio
LENGTH_MIN_SPREAD = 0.05  # floor of the robust spread of log length ratios (identical lengths would give 0)
SCORE_MIN_SPREAD = 1e-3  # floor of the robust spread of evidence scores


def length_outliers(cand: Sequence[tuple[int, int]], confident: Sequence[tuple[int, int]], x_lengths: Sequence[int],
                    y_lengths: Sequence[int], z: float) -> set[tuple[int, int]]:
    """Candidates whose log length ratio lies more than ``z`` robust deviations from that of the ``confident``
    pairs: ``|log(lx/ly) − median| > z · 1.4826 · MAD`` (Gale & Church 1993's observation that translation
    lengths are proportional, with the ratio and its spread estimated on this pair of sides, so no per-language
    constant is needed). Fewer than :data:`EVIDENCE_MIN_PAIRS` confident pairs: nothing is dropped."""
    if len(confident) < EVIDENCE_MIN_PAIRS:
        return set()

    def ratio(i: int, j: int) -> float:
        return float(np.log(max(x_lengths[i], 1) / max(y_lengths[j], 1)))

    r = np.array([ratio(i, j) for i, j in confident])
    mid = float(np.median(r))
    spread = max(1.4826 * float(np.median(np.abs(r - mid))), LENGTH_MIN_SPREAD)
    return {(i, j) for i, j in cand if abs(ratio(i, j) - mid) > z * spread}


def weak_scores(scores: dict[tuple[int, int], float], confident: Sequence[tuple[int, int]],
                z: float) -> set[tuple[int, int]]:
    """Candidates whose sentence evidence is more than ``z`` robust deviations below the ``confident`` pairs'
    (``score < median − z · 1.4826 · MAD``). Two documents without a partner can still be each other's best
    candidate by margin (their neighbourhoods are weak), yet their evidence is that of unrelated text on the same
    theme, well below that of this pair of sides' translations. Fewer than :data:`EVIDENCE_MIN_PAIRS` confident
    pairs: nothing is dropped."""
    if len(confident) < EVIDENCE_MIN_PAIRS:
        return set()
    s = np.array([scores[c] for c in confident])
    mid = float(np.median(s))
    floor = mid - z * max(1.4826 * float(np.median(np.abs(s - mid))), SCORE_MIN_SPREAD)
    return {c for c, v in scores.items() if v < floor}


def pair_documents(x: np.ndarray, y: np.ndarray, **options) -> list[tuple[int, int, float]]:
    """:func:`pair_documents_with_stats` without its calibration report."""
    return pair_documents_with_stats(x, y, **options)[0]


def pair_documents_with_stats(
        x: np.ndarray, y: np.ndarray, *, k: int = 4, threshold: float = 1.0, mutual: bool = True,
        center_embeddings: bool = False, rescore: Rescore = "none", rescore_k: int = 4, assign: Assign = "none",
        x_sentences: Sequence[np.ndarray] | None = None, y_sentences: Sequence[np.ndarray] | None = None,
        min_coverage: float = 0.0, skip_penalty: float = 0.1, exact_max: int = EXACT_KNN_MAX,
        calibrate: float | None = None, score_z: float | None = None, length_z: float | None = None,
        x_lengths: Sequence[int] | None = None, y_lengths: Sequence[int] | None = None,
        report: dict | None = None) -> tuple[list[tuple[int, int, float]], Calibration | None]:
    """Document pairs ``(i, j, margin)`` between ``x`` (n, d) and ``y`` (m, d), L2-normalised document
    embeddings, and the threshold's calibration (None unless ``calibrate``); see the module docstring. With
    every option off this is :func:`mine_pairs`.

    ``calibrate`` (a target precision, with ``rescore``): the threshold is chosen for this pair of sides by
    :mod:`msm.data.calibrate` (``threshold`` only when the null is too small to estimate).

    ``rescore`` needs ``x_sentences[i]`` / ``y_sentences[j]``: each document's sentence embeddings; candidates are
    each side's ``rescore_k`` nearest neighbours by document cosine, the margin's neighbourhood is ``k``.
    ``min_coverage`` (with ``rescore`` only): candidates whose :func:`sentence_coverage` is lower can not be
    paired (they still count in the margin's neighbourhood). ``x_sentences`` / ``y_sentences`` may be lazy
    sequences: only the candidates' documents are read. kNN is exact up to ``exact_max`` documents a side (:func:`knn`).
    ``length_z`` (with ``rescore``; needs ``x_lengths`` / ``y_lengths``, characters per document): candidates whose
    length ratio is an outlier among this pair of sides' confident pairs can not be paired (:func:`length_outliers`);
    ``score_z`` (with ``rescore``): nor those whose sentence evidence lies that far below theirs (:func:`weak_scores`).
    ``report``: a dict that gets what the evidence rules did (candidates, confident pairs, candidates rejected).
    """
    if len(x) == 0 or len(y) == 0:
        return [], None
    if calibrate is not None and rescore == "none":
        raise ValueError("pair_documents(calibrate=...) needs rescore (sentence evidence)")
    center_embeddings = center_embeddings and min(len(x), len(y)) >= 2  # a lone document has no mean to remove
    if center_embeddings:
        x, y = center(x), center(y)
    if rescore == "none":
        if min_coverage > 0:
            raise ValueError("pair_documents(min_coverage=...) needs rescore (sentence embeddings)")
        idx_xy, fwd, idx_yx, bwd = margin_scores(x, y, k, exact_max)
        pairs = _mutual_best(idx_xy, fwd, idx_yx, bwd, threshold, mutual)
        if assign == "greedy":
            pairs = competitive_linking(pairs, _candidates(idx_xy, fwd, idx_yx, bwd), threshold)
        return pairs, None
    if x_sentences is None or y_sentences is None:
        raise ValueError("pair_documents(rescore=...) needs x_sentences and y_sentences")
    xs, ys = x_sentences, y_sentences
    if center_embeddings:  # the same centering at the sentence level, one mean per side
        xs, ys = _Centred(xs, _row_mean(xs)), _Centred(ys, _row_mean(ys))
    kx, ky = min(rescore_k, len(y)), min(rescore_k, len(x))
    _, idx_xy = knn(x, y, kx, exact_max)
    _, idx_yx = knn(y, x, ky, exact_max)
    cand = sorted({(i, int(j)) for i in range(len(x)) for j in idx_xy[i]}
                  | {(int(i), j) for j in range(len(y)) for i in idx_yx[j]})
    scores, cover = _evidence_scores(cand, xs, ys, rescore, skip_penalty)
    margins = _rescored_margins(cand, scores, len(x), len(y), k)
    if min_coverage > 0:
        margins = {c: mg for (c, mg), cv in zip(margins.items(), cover) if cv >= min_coverage}
    best_x, best_y = _bests(margins)
    if length_z is not None or score_z is not None:
        confident = [(i, j) for i, j, _ in _select(best_x, best_y, threshold, mutual)]
        weak, long = set(), set()
        if length_z is not None:
            if x_lengths is None or y_lengths is None:
                raise ValueError("pair_documents(length_z=...) needs x_lengths and y_lengths")
            long = length_outliers(list(margins), confident, x_lengths, y_lengths, length_z)
        if score_z is not None:
            weak = weak_scores({c: float(v) for c, v in zip(cand, scores) if c in margins}, confident, score_z)
        drop = weak | long
        if report is not None:
            report.update({"candidates": len(margins), "confident": len(confident),
                           "rejected_weak_evidence": len(weak), "rejected_length": len(long - weak)})
        margins = {c: mg for c, mg in margins.items() if c not in drop}
        best_x, best_y = _bests(margins)
    calibration = None
    if calibrate is not None:
        floor = _select(best_x, best_y, FLOOR, mutual)
        null = null_margins(cand, scores, [p for p in floor if p[2] >= threshold] or floor, k)
        n0 = min(unpartnered(np.array([m for _, m in best_x.values()]), null),
                 unpartnered(np.array([m for _, m in best_y.values()]), null))
        if assign == "greedy":
            floor = competitive_linking(floor, margins, FLOOR)
        calibration = choose_threshold(np.array([m for _, _, m in floor]), null, n0, calibrate, threshold)
        threshold = calibration.threshold
    pairs = _select(best_x, best_y, threshold, mutual)  # a candidate's margin is one value from both sides
    if assign == "greedy":
        pairs = competitive_linking(pairs, margins, threshold)
    return pairs, calibration
