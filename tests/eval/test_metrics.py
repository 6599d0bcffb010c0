"""Our metrics against ranx (an independent implementation) on random runs, and hand-computed cases."""

from __future__ import annotations

import random

import pytest

from msm.eval import metrics as m


def random_runs(seed: int, n_queries: int = 30, n_docs: int = 40):
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(n_queries):
        docs = [f"d{i}" for i in range(n_docs)]
        rel = rng.sample(docs, rng.randint(1, 6))
        ranked = rng.sample(docs, rng.randint(5, n_docs))
        qrels[f"q{q}"] = {d: 1 for d in rel}
        run[f"q{q}"] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 20])
def test_against_ranx(seed, k):
    ranx = pytest.importorskip("ranx")
    qrels, run = random_runs(seed)
    ours = {
        f"mrr@{k}": m.mean([m.reciprocal_rank(list(run[q]), set(qrels[q]), k) for q in qrels]),
        f"recall@{k}": m.mean([m.recall(list(run[q]), set(qrels[q]), k) for q in qrels]),
        f"ndcg@{k}": m.mean([m.ndcg(list(run[q]), set(qrels[q]), k) for q in qrels]),
    }
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(ours))
    for name, value in ours.items():
        assert value == pytest.approx(theirs[name], abs=1e-9), name


def test_map_at_k_follows_lareqa_divisor():
    # relevant {a, b, c}; hits at ranks 1 and 3 within k=2 → (1/1) / min(3, 2)
    assert m.average_precision(["a", "x", "b"], {"a", "b", "c"}, 2) == pytest.approx(0.5)
    # full ranking: (1/1 + 2/3) / 3
    assert m.average_precision(["a", "x", "b"], {"a", "b", "c"}, 20) == pytest.approx((1 + 2 / 3) / 3)
    assert m.average_precision(["x"], {"a"}, 20) == 0.0


@pytest.mark.parametrize("seed", [3, 4])
def test_map_against_ranx_when_k_exceeds_relevant(seed):
    ranx = pytest.importorskip("ranx")
    qrels, run = random_runs(seed)
    ours = m.mean([m.average_precision(list(run[q]), set(qrels[q]), 20) for q in qrels])
    # ranx's map@k divides by |relevant|; with |relevant| <= 6 < 20 both definitions agree
    assert ours == pytest.approx(ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), "map@20"), abs=1e-9)


def test_accuracy_and_answer_recall_at_tokens():
    assert m.accuracy_at_1(["a", "b"], {"a"}) == 1.0 and m.accuracy_at_1(["b", "a"], {"a"}) == 0.0
    passages = ["one two three", "four five Paris six"]
    assert m.answer_recall_at_tokens(passages, ["Paris"], 5) == 0.0  # cut after "five"
    assert m.answer_recall_at_tokens(passages, ["Paris"], 6) == 1.0


@pytest.mark.parametrize("metric", [m.reciprocal_rank, m.recall, m.average_precision, m.ndcg])
def test_no_relevant_document_scores_zero(metric):
    assert metric(["a", "b"], set(), 10) == 0.0


def test_mean_of_nothing_is_zero():
    assert m.mean([]) == 0.0 and m.mean([0.25, 0.75]) == 0.5


def test_a_repeated_hit_counts_once_in_average_precision():
    # by definition: hits at rank 1 only ("a" again at rank 2 is no new relevant document) -> (1/1) / min(2, 2)
    assert m.average_precision(["a", "a"], {"a", "b"}, 2) == 0.5
    assert m.average_precision(["a", "x", "b"], {"a", "b"}, 3) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_a_multi_word_answer_is_found_across_passages():
    # the budget joins the passages' whitespace tokens with single spaces: "New York" spans two passages here
    assert m.answer_recall_at_tokens(["flights to New", "York today"], ["New York"], 5) == 1.0
    assert m.answer_recall_at_tokens(["flights to New", "York today"], ["New York"], 3) == 0.0
