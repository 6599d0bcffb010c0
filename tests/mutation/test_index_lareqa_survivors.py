"""SearchIndex and LAReQA details a fork-safe mutation run found untested: inner-product scores of the IVF and HNSW
indexes, the GPU default when faiss sees one GPU, the model named in a query-dimension error, and which sentence
holds an answer that starts a sentence."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

import msm.retrieval.index as index_module
from msm.errors import MSMError
from msm.eval.tasks import lareqa
from msm.retrieval.index import SearchIndex


def rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)  # not unit: L2 ranks differently


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_scores_are_inner_products(kind):
    """Every kind scores by inner product (not L2 distance): the returned scores are q . x of the returned ids,
    in decreasing order, and the top hit is the brute-force argmax."""
    x, q = rows(300), rows(5, seed=1)
    ids = [f"d{i}" for i in range(300)]
    built = SearchIndex.build(x, ids, kind=kind, nlist=4, nprobe=4)
    scores, hits = built.search(q, 5)
    dots = q @ x.T
    for r in range(5):
        expected = [dots[r, int(h[1:])] for h in hits[r]]
        np.testing.assert_allclose(scores[r], expected, rtol=1e-4, atol=1e-4)
        assert list(scores[r]) == sorted(scores[r], reverse=True)
        assert hits[r][0] == f"d{int(np.argmax(dots[r]))}"


@pytest.fixture()
def one_gpu(monkeypatch):
    """faiss reporting one GPU, its CPU->GPU converter recorded (CPU faiss has none)."""
    calls = []
    monkeypatch.setattr(index_module, "gpu_count", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", lambda index: calls.append(index) or index, raising=False)
    return calls


def test_one_visible_gpu_is_used_by_default(one_gpu, tmp_path):
    """use_gpu=None means "when faiss sees a GPU": one is enough, for build and load alike; False keeps the CPU."""
    x = rows(20)
    ids = [str(i) for i in range(20)]
    built = SearchIndex.build(x, ids)
    assert built.meta.get("gpu") is True and one_gpu == [built.index]
    assert "gpu" not in SearchIndex.build(x, ids, use_gpu=False).meta and len(one_gpu) == 1
    SearchIndex.build(x, ids, use_gpu=False).save(tmp_path / "idx")
    loaded = SearchIndex.load(tmp_path / "idx")
    assert loaded.meta.get("gpu") is True and len(one_gpu) == 2
    assert isinstance(one_gpu[-1], faiss.Index) and one_gpu[-1].ntotal == 20  # the index read from disk
    assert "gpu" not in SearchIndex.load(tmp_path / "idx", use_gpu=False).meta


def test_query_dimension_error_names_the_model():
    built = SearchIndex.build(rows(10), [str(i) for i in range(10)], model="e5-small")
    with pytest.raises(MSMError, match=r"queries have dimension 4, the index 8 \(built with model e5-small\); "
                                       r"encode with the same model"):
        built.search(rows(2, d=4), 3)
    anonymous = SearchIndex.build(rows(10), [str(i) for i in range(10)])
    with pytest.raises(MSMError, match=r"\(built with model \?\)"):
        anonymous.search(rows(2, d=4), 3)


def _write_xquad(folder, paragraphs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "en.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}), "utf-8")


def test_an_answer_that_starts_a_sentence_belongs_to_that_sentence(tmp_path):
    """Sentence breaks are half-open [start, end): an answer at a sentence's first character is in that sentence,
    not in the one before (whose end is the same offset)."""
    context = "One two. Three four. Five six."
    breaks = [[0, 9], [9, 21], [21, 30]]
    qas = [{"id": "q0", "question": "first?", "answers": [{"answer_start": 0, "text": "One"}]},
           {"id": "q1", "question": "second?", "answers": [{"answer_start": 9, "text": "Three"}]},
           {"id": "q2", "question": "third?", "answers": [{"answer_start": 21, "text": "Five"}]}]
    _write_xquad(tmp_path, [{"context": context, "sentence_breaks": breaks, "qas": qas}])
    data = lareqa.load(tmp_path, ["en"])
    assert data.relevant == {"q0": {"en_1_0"}, "q1": {"en_1_1"}, "q2": {"en_1_2"}}


def test_a_question_without_an_answer_sentence_skips_only_itself(tmp_path):
    """An answer outside every sentence drops that question; the paragraph's next questions still load, and so
    do the questions of later paragraphs up to max_questions."""
    context = "One two. Three four."
    breaks = [[0, 9], [9, 20]]
    first = [{"id": "lost", "question": "?", "answers": [{"answer_start": 25, "text": "x"}]},
             {"id": "a", "question": "a?", "answers": [{"answer_start": 10, "text": "Three"}]}]
    second = [{"id": "b", "question": "b?", "answers": [{"answer_start": 0, "text": "One"}]},
              {"id": "c", "question": "c?", "answers": [{"answer_start": 1, "text": "ne"}]}]
    _write_xquad(tmp_path, [{"context": context, "sentence_breaks": breaks, "qas": first},
                            {"context": context, "sentence_breaks": breaks, "qas": second}])
    assert [q[1] for q in lareqa.load(tmp_path, ["en"]).questions] == ["a", "b", "c"]
    capped = lareqa.load(tmp_path, ["en"], max_questions=2)
    assert [q[1] for q in capped.questions] == ["a", "b"] and len(capped.candidates) == 4  # every sentence stays


LOCALE_SCRIPT = """
import json, locale, sys
from pathlib import Path
from msm.eval.tasks import lareqa, tatoeba
folder = Path(sys.argv[1])
data = lareqa.load(folder / "xquad-r", ["en"])
src, eng = tatoeba.load_pairs(folder / "tatoeba", "fra")
print(json.dumps({"encoding": locale.getpreferredencoding(False), "question": data.questions[0][2],
                  "src": src, "eng": eng}, ensure_ascii=True))
"""


def test_task_files_are_read_as_utf8_under_an_ascii_locale(tmp_path, run_under_ascii_locale):
    """XQuAD-R JSON and Tatoeba text are UTF-8 whatever the locale (LC_ALL=C, UTF-8 mode off, in a subprocess:
    open() takes the locale's encoding in C code); Tatoeba lines come back as written, only the final newline
    dropped."""
    context = "Où est-il ? Ici."
    qas = [{"id": "q", "question": "Où ?", "answers": [{"answer_start": 0, "text": "Où"}]}]
    _write_xquad(tmp_path / "xquad-r", [{"context": context, "sentence_breaks": [[0, 12], [12, 16]], "qas": qas}])
    (tmp_path / "tatoeba").mkdir()
    (tmp_path / "tatoeba" / "tatoeba.fra-eng.fra").write_text("Ça va.\nÀ demain \n", "utf-8")
    (tmp_path / "tatoeba" / "tatoeba.fra-eng.eng").write_text("Fine.\nSee you\n", "utf-8")
    got = run_under_ascii_locale(LOCALE_SCRIPT, str(tmp_path))
    assert got["question"] == "Où ?"
    assert got["src"] == ["Ça va.", "À demain "] and got["eng"] == ["Fine.", "See you"]
