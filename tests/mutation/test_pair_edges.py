"""msm.data.pair edge cases and argument checks the pairing-quality tests do not reach (found by mutation)."""

from __future__ import annotations

import numpy as np
import pytest

from msm.data.pair import pair_documents, sentence_coverage, sentence_evidence


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
