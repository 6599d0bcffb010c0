"""A margin threshold calibrated per language pair from the pair's own score distribution (no hand tuning).

A fixed ratio-margin threshold (1.3 was chosen on NTREX news) is wrong in both directions on other corpora: among
short documents on one theme a true pair's margin is small (its neighbours are all alike), and where documents
lack a partner two leftovers can pair with each other above it. What a wrong pair's margin looks like is
measured on the corpus itself, by **leaving the partner out**: for a document of a mutual-best pair, its best
*other* candidate, with both margin denominators (each side's mean of its ``k`` best scores) recomputed without
that document's partner and without the candidate's own partner — the margin it would have had as a leftover
facing a leftover. These margins are the null (``null_margins``).

The estimated number of wrong pairs accepted at a threshold ``t`` is ``n0 · S(t)``: ``S`` the null's survival
function and ``n0`` the documents without a partner, estimated as in Storey (2002). A leftover's best margin is
at most as high as the null's (its best candidate is usually a partnered document, whose margin denominator
holds its partner's score), so the documents whose best margin lies below the null's 90th percentile, divided
by 0.9, estimate them (the smaller of the two sides', as a wrong 1-1 pair needs a leftover on each).
``choose_threshold`` takes the smallest ``t`` whose estimated precision ``1 − n0·S(t) / accepted(t)`` reaches
the target. Measured against the truth: docs/mining.md, "Calibrated threshold".

Hand-written: the margin and the leave-one-out null are specific to this pairing (no library computes them);
the estimator itself is a few lines of NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

MIN_NULL = 20  # fewer null margins than this: no calibration (the configured threshold stands)
FLOOR = 1.0  # never below: a margin under 1 scores below the pair's own neighbourhood average
LAMBDA = 0.1  # Storey's lambda (on null p-values); small, since a leftover's best margin lies below the null's


@dataclass(frozen=True)
class Calibration:
    threshold: float
    estimated_precision: float | None  # of the accepted pairs (None: not calibrated)
    candidates: int  # pairs selected at the floor
    accepted: int  # of those, at the threshold
    null: int  # null margins measured
    unpartnered: float  # estimated documents without a partner (the smaller side's)
    calibrated: bool

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _top_mean(values: list[float], k: int) -> float:
    return float(np.mean(sorted(values, reverse=True)[:k])) if values else 0.0


def null_margins(cand: Sequence[tuple[int, int]], scores: Sequence[float], pairs: Sequence[tuple[int, int, float]],
                 k: int) -> np.ndarray:
    """Leave-partner-out margins (module docstring) of both sides' documents in ``pairs``.

    ``cand``/``scores``: every candidate ``(i, j)`` with its (sentence-evidence) score; ``pairs``: the
    selected ``(i, j, margin)``; ``k``: the margin's neighbourhood."""
    by_x: dict[int, list[tuple[float, int]]] = {}
    by_y: dict[int, list[tuple[float, int]]] = {}
    for (i, j), s in zip(cand, scores):
        by_x.setdefault(i, []).append((float(s), j))
        by_y.setdefault(j, []).append((float(s), i))
    partner_x = {i: j for i, j, _ in pairs}
    partner_y = {j: i for i, j, _ in pairs}

    def side(by_a, by_b, partner_a, partner_b) -> list[float]:
        out = []
        for a, b_star in partner_a.items():
            others = [(s, b) for s, b in by_a.get(a, []) if b != b_star]
            if not others:
                continue
            s, b = max(others)
            ra = _top_mean([v for v, _ in others], k)
            rb = _top_mean([v for v, a2 in by_b.get(b, []) if a2 != partner_b.get(b)], k)  # (a, b) included
            out.append(s / max((ra + rb) / 2, 1e-12))
        return out

    return np.array(side(by_x, by_y, partner_x, partner_y) + side(by_y, by_x, partner_y, partner_x))


def unpartnered(best_margins: np.ndarray, null: np.ndarray, lam: float = LAMBDA) -> float:
    """Storey's estimate of the documents without a partner: those whose best margin has a null p-value above
    ``lam`` (i.e. lies below the null's ``1 - lam`` quantile), divided by ``1 - lam`` (at most all of them)."""
    if len(best_margins) == 0 or len(null) == 0:
        return float(len(best_margins))
    return float(min(len(best_margins), np.sum(best_margins < np.quantile(null, 1 - lam)) / (1 - lam)))


def choose_threshold(selected: np.ndarray, null: np.ndarray, n0: float, target: float, fallback: float) -> Calibration:
    """The smallest threshold ``t >= FLOOR`` at which the estimated precision of the ``selected`` margins
    (pairs chosen at the floor) reaches ``target``; ``fallback`` when the null is smaller than :data:`MIN_NULL`.
    No threshold reaches it: one above every margin (nothing accepted)."""
    selected = np.sort(np.asarray(selected, dtype=np.float64))
    null = np.sort(np.asarray(null, dtype=np.float64))
    if len(null) < MIN_NULL:
        return Calibration(fallback, None, len(selected), int(np.sum(selected >= fallback)), len(null), n0, False)
    for t in [FLOOR, *selected[selected > FLOOR]]:
        accepted = len(selected) - np.searchsorted(selected, t, side="left")
        if accepted == 0:
            break
        wrong = n0 * (len(null) - np.searchsorted(null, t, side="left")) / len(null)
        precision = 1.0 - min(wrong, accepted) / accepted
        if precision >= target:
            return Calibration(float(t), float(precision), len(selected), int(accepted), len(null), n0, True)
    top = float(selected[-1]) + 1e-6 if len(selected) else FLOOR
    return Calibration(max(top, FLOOR), None, len(selected), 0, len(null), n0, True)
