"""Task loaders on the real shared data and end-to-end numbers with the offline e5-small."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import lareqa, tatoeba


def test_lareqa_pool_and_relevance_on_real_files(shared_data):
    data = lareqa.load(shared_data / "xquad-r", ["en", "de"], max_questions=5)
    en = json.loads((shared_data / "xquad-r" / "en.json").read_text())
    n_sent = sum(len(p["sentence_breaks"]) for a in en["data"] for p in a["paragraphs"])
    assert data.candidate_lang.count("en") == n_sent
    assert len(data.questions) == 10
    first = en["data"][0]["paragraphs"][0]
    qa = first["qas"][0]
    start = qa["answers"][0]["answer_start"]
    pos = next(i for i, (s, e) in enumerate(first["sentence_breaks"]) if s <= start < e)
    rel = data.relevant[qa["id"]]
    assert f"en_1_{pos}" in rel and len(rel) == 2 and any(u.startswith("de_1_") for u in rel)


def test_tatoeba_accuracy_counts_diagonal_hits():
    x = np.eye(3, dtype=np.float32)
    y = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32)
    assert tatoeba.accuracy(x, y) == pytest.approx(1 / 3)


def test_bad_inputs(tmp_path, shared_data):
    with pytest.raises(MSMError, match="no files for language 'xx'"):
        tatoeba.load_pairs(shared_data / "tatoeba", "xx")
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "en.json").write_text("{not json")
    with pytest.raises(MSMError, match="en.json: not SQuAD-format XQuAD-R JSON"):
        lareqa.load(tmp_path / "xquad-r", ["en"])
    with pytest.raises(MSMError, match="klingon.json not found"):
        lareqa.load(tmp_path / "xquad-r", ["klingon"])


@pytest.fixture(scope="module")
def e5_encoder():
    from msm.retrieval.encoder import Encoder

    return Encoder("e5-small", max_length=128, batch_size=32)


def test_e5_small_on_tatoeba_slice_is_accurate(e5_encoder, shared_data):
    results = tatoeba.evaluate(e5_encoder, shared_data, langs=["deu"], limit=100)
    acc = next(r.value for r in results if r.language == "deu" and r.metric == "acc@1 xxx->eng")
    assert acc >= 0.95


def test_encoder_errors(e5_encoder, tmp_path):
    from msm.retrieval.encoder import Encoder

    with pytest.raises(MSMError, match="text 1 is empty"):
        e5_encoder.encode(["fine", "   "])
    (tmp_path / "nomodel").mkdir()
    with pytest.raises(MSMError, match="is not a model folder"):
        Encoder(str(tmp_path / "nomodel"))
    vec = e5_encoder.encode(["word " * 400])
    assert e5_encoder.truncated == 1 and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)


def test_sentence_context_pairs_with_a_sentence_longer_than_the_budget(e5_encoder):
    vec = e5_encoder.encode([("word " * 300, "short context"), ("short sentence", "context " * 300)])
    assert vec.shape == (2, 384) and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
