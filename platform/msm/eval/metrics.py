"""Ranking metrics on one query: ``ranked`` ids best first, ``relevant`` the set of correct ids.

Definitions follow the official scripts: mAP@k as LAReQA/Mewsli-X (``average_precision_at_k``: sum of
precision at each hit within the top k, divided by min(|relevant|, k)); nDCG@k with binary gains and
log2(rank + 1) discounts; XOR Retrieve R@Nkt: the answer string occurs in the top passages truncated to
N whitespace tokens in total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def reciprocal_rank(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


def recall(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def average_precision(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    hits, score, seen = 0, 0.0, set()
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant and doc not in seen:
            hits += 1
            score += hits / (i + 1)
        seen.add(doc)
    return score / min(len(relevant), k) if relevant else 0.0


def ndcg(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def accuracy_at_1(ranked: Sequence[str], relevant: set[str]) -> float:
    return float(bool(ranked) and ranked[0] in relevant)


def answer_recall_at_tokens(passages: Sequence[str], answers: Iterable[str], max_tokens: int) -> float:
    """XOR Retrieve R@Nkt: 1 if an answer occurs in the first ``max_tokens`` whitespace tokens of the ranking."""
    tokens: list[str] = []
    for passage in passages:
        tokens.extend(passage.split())
        if len(tokens) >= max_tokens:
            break
    text = " ".join(tokens[:max_tokens])
    return float(any(a and a in text for a in answers))


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
