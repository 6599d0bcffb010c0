"""Edge cases of msm.eval.metrics the ranx comparison does not reach (found by mutation testing)."""

from __future__ import annotations

import pytest

from msm.eval import metrics as m


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
