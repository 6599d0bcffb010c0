"""LAReQA (XQuAD-R): the candidate pool and its relevance on the real and on hand-written files, mAP@k by hand with
oracle and table encoders, answers at a sentence start and questions without an answer sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import lareqa

from eval_fakes import NormalisingTableEncoder, TableEncoder, write_xquad_paragraphs


def squad(contexts: list[tuple[str, list[tuple[str, int]]]]) -> dict:
    """SQuAD-format XQuAD-R: paragraphs of "."-ended sentences, questions as (id, index of the answer sentence)."""
    paragraphs = []
    for context, qas in contexts:
        starts = [0] + [i + 2 for i, ch in enumerate(context) if ch == "." and i + 2 < len(context)]
        breaks = [[s, (starts[n + 1] - 1) if n + 1 < len(starts) else len(context)] for n, s in enumerate(starts)]
        paragraphs.append({"context": context, "sentence_breaks": breaks, "qas": [
            {"id": qid, "question": f"{qid} in {context[:4]}?", "answers": [{"answer_start": breaks[hit][0] + 1}]}
            for qid, hit in qas]})
    return {"data": [{"paragraphs": paragraphs}]}


def squad_file(paragraphs) -> dict:
    return {"data": [{"title": "t", "paragraphs": paragraphs}]}


def paragraph(sentences, qas):
    context, breaks, pos = "", [], 0
    for s in sentences:
        breaks.append([pos, pos + len(s)])
        context += s + " "
        pos += len(s) + 1
    return {"context": context, "sentence_breaks": breaks,
            "qas": [{"id": qid, "question": q, "answers": [{"answer_start": context.index(a), "text": a}]}
                    for qid, q, a in qas]}


def write_xquad(tmp_path):
    folder = tmp_path / "xquad-r"
    folder.mkdir()
    en = squad_file([paragraph(["Paris is big.", "Rome is old."], [("q1", "big city?", "big"), ("q2", "old?", "old")]),
                paragraph(["Cats purr."], [("q3", "purr?", "purr")])])
    de = squad_file([paragraph(["Paris ist groß.", "Rom ist alt."],
                               [("q1", "große Stadt?", "groß"), ("q2", "alt?", "alt")]),
                paragraph(["Katzen schnurren."], [("q3", "schnurren?", "schnurren")])])
    de["data"][0]["paragraphs"][0]["qas"].append(  # answer outside every sentence break: dropped
        {"id": "q4", "question": "nowhere?", "answers": [{"answer_start": 999, "text": "x"}]})
    (folder / "en.json").write_text(json.dumps(en), encoding="utf-8")
    (folder / "de.json").write_text(json.dumps(de), encoding="utf-8")
    return folder


def average_precision(ranked, relevant, k):
    """mAP@k of LAReQA: precision at each hit in the top k, summed, over min(|relevant|, k)."""
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], 1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / min(len(relevant), k)


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


def test_lareqa_evaluate_with_an_oracle_encoder(tmp_path):
    """Two languages × one paragraph of three sentences, two questions asked in both languages. The oracle puts each
    candidate sentence on its own axis and each question on a chosen ranking; mAP@k is counted by hand below."""
    folder = tmp_path / "xquad-r"
    folder.mkdir()
    en, de = "Alpha one. Beta two. Gamma three.", "Alfa eins. Beta zwei. Gamma drei."
    (folder / "en.json").write_text(json.dumps(squad([(en, [("q1", 1), ("q2", 2)])])))
    (folder / "de.json").write_text(json.dumps(squad([(de, [("q1", 1), ("q2", 2)])])))
    sentences = {"en_0": "Alpha one.", "en_1": "Beta two.", "en_2": "Gamma three.",
                 "de_0": "Alfa eins.", "de_1": "Beta zwei.", "de_2": "Gamma drei."}
    axis = {u: np.eye(6)[i] for i, u in enumerate(sentences)}
    rankings = {  # relevant: q1 → en_1, de_1; q2 → en_2, de_2
        "q1 in Alph?": ["en_1", "en_0", "de_1", "de_0", "en_2", "de_2"],  # hits at 1, 3: AP (1 + 2/3) / 2
        "q2 in Alph?": ["de_2", "en_2", "en_0", "en_1", "de_0", "de_1"],  # hits at 1, 2: AP 1
        "q1 in Alfa?": ["en_0", "de_0", "en_2", "de_2", "en_1", "de_1"],  # hits at 5, 6: AP (1/5 + 2/6) / 2
        "q2 in Alfa?": ["de_2", "en_0", "de_0", "en_1", "de_1", "en_2"],  # hits at 1, 6: AP (1 + 2/6) / 2
    }
    table = {(s, en if u.startswith("en") else de): axis[u] for u, s in sentences.items()}
    table |= {q: sum(2.0 ** -r * axis[u] for r, u in enumerate(ranking)) for q, ranking in rankings.items()}
    oracle = TableEncoder(table)
    got = {(r.language, r.metric): r.value for r in lareqa.evaluate(oracle, tmp_path, langs=["en", "de"])}
    want_en, want_de = ((1 + 2 / 3) / 2 + 1) / 2, ((1 / 5 + 2 / 6) / 2 + (1 + 2 / 6) / 2) / 2
    assert got[("en", "mAP@20")] == pytest.approx(want_en) and got[("de", "mAP@20")] == pytest.approx(want_de)
    assert got[("mean", "mAP@20")] == pytest.approx((want_en + want_de) / 2)
    assert {oracle.kinds[q] for q in rankings} == {"query"} and {oracle.kinds[c] for c in table if
                                                                isinstance(c, tuple)} == {"passage"}
    # at k = 2 only the top two count, divided by min(|relevant| = 2, k = 2)
    at2 = {(r.language, r.metric): r.value for r in lareqa.evaluate(oracle, tmp_path, langs=["en", "de"], k=2)}
    assert at2[("en", "mAP@2")] == pytest.approx((1 / 2 + 1) / 2) and at2[("de", "mAP@2")] == pytest.approx(
        (0 + 1 / 2) / 2)


def test_an_answer_that_starts_a_sentence_belongs_to_that_sentence(tmp_path):
    """Sentence breaks are half-open [start, end): an answer at a sentence's first character is in that sentence,
    not in the one before (whose end is the same offset)."""
    context = "One two. Three four. Five six."
    breaks = [[0, 9], [9, 21], [21, 30]]
    qas = [{"id": "q0", "question": "first?", "answers": [{"answer_start": 0, "text": "One"}]},
           {"id": "q1", "question": "second?", "answers": [{"answer_start": 9, "text": "Three"}]},
           {"id": "q2", "question": "third?", "answers": [{"answer_start": 21, "text": "Five"}]}]
    write_xquad_paragraphs(tmp_path, [{"context": context, "sentence_breaks": breaks, "qas": qas}])
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
    write_xquad_paragraphs(tmp_path, [{"context": context, "sentence_breaks": breaks, "qas": first},
                            {"context": context, "sentence_breaks": breaks, "qas": second}])
    assert [q[1] for q in lareqa.load(tmp_path, ["en"]).questions] == ["a", "b", "c"]
    capped = lareqa.load(tmp_path, ["en"], max_questions=2)
    assert [q[1] for q in capped.questions] == ["a", "b"] and len(capped.candidates) == 4  # every sentence stays


def test_lareqa_pool_relevance_and_limits(tmp_path):
    folder = write_xquad(tmp_path)
    data = lareqa.load(folder, ["en", "de"])
    assert [u for u, _, _ in data.candidates] == ["en_1_0", "en_1_1", "en_2_0", "de_1_0", "de_1_1", "de_2_0"]
    assert data.candidates[1][1:] == ("Rome is old.", "Paris is big. Rome is old. ")  # sentence and its context
    assert data.candidate_lang == ["en"] * 3 + ["de"] * 3
    assert data.questions == [("en", "q1", "big city?"), ("en", "q2", "old?"), ("en", "q3", "purr?"),
                              ("de", "q1", "große Stadt?"), ("de", "q2", "alt?"), ("de", "q3", "schnurren?")]
    assert data.relevant == {"q1": {"en_1_0", "de_1_0"}, "q2": {"en_1_1", "de_1_1"}, "q3": {"en_2_0", "de_2_0"}}
    capped = lareqa.load(folder, ["en", "de"], max_questions=1)  # per language
    assert [(l, q) for l, q, _ in capped.questions] == [("en", "q1"), ("de", "q1")]
    assert len(capped.candidates) == 6  # the pool keeps every sentence
    with pytest.raises(MSMError, match=r"lareqa: .*xx.json not found \(known languages: ar, de, el, en, es,"):
        lareqa.load(folder, ["xx"])
    (folder / "en.json").write_text("[]")
    with pytest.raises(MSMError, match="not SQuAD-format XQuAD-R JSON"):
        lareqa.load(folder, ["en"])


def test_lareqa_evaluate_with_a_table_encoder(tmp_path):
    write_xquad(tmp_path)
    data = lareqa.load(tmp_path / "xquad-r", ["en", "de"])
    rng = np.random.default_rng(1)
    topic = {"q1": 0, "q2": 1, "q3": 2}
    table = {}
    for uid, s, c in data.candidates:  # relevant sentences near their question's topic, plus noise
        qid = next(q for q, rel in data.relevant.items() if uid in rel)
        table[(s, c)] = np.eye(3)[topic[qid]] + 0.9 * rng.normal(size=3)
    for _, qid, text in data.questions:
        table[text] = np.eye(3)[topic[qid]] + 0.3 * rng.normal(size=3)
    enc = NormalisingTableEncoder(table)
    results = lareqa.evaluate(enc, tmp_path, ["en", "de"], k=2)
    assert enc.kinds == ["passage", "query"] and enc.progress == [False, False]
    assert {r.task for r in results} == {"lareqa"}
    limited = lareqa.evaluate(enc, tmp_path, ["en"], limit=2, show_progress=True)
    assert [(r.language, r.count, r.metric) for r in limited] == [("en", 2, "mAP@20"), ("mean", 1, "mAP@20")]
    assert enc.progress[-2:] == [True, True]
    uids = [u for u, _, _ in data.candidates]
    cand = enc.encode([(s, c) for _, s, c in data.candidates])
    want = {}
    for lang, qid, text in data.questions:
        q = enc.encode([text])[0]
        ranked = sorted(uids, key=lambda u: -float(q @ cand[uids.index(u)]))
        want.setdefault(lang, []).append(average_precision(ranked, data.relevant[qid], 2))
    got = {r.language: (r.value, r.count, r.metric) for r in results}
    for lang, values in want.items():
        assert got[lang] == pytest.approx((np.mean(values), 3, "mAP@2"))
    assert got["mean"][0] == pytest.approx(np.mean([np.mean(v) for v in want.values()])) and got["mean"][1] == 2
    assert 0 < got["mean"][0] < 1  # the noise makes some rankings imperfect
    with pytest.raises(MSMError, match="lareqa: .*xquad-r not found"):
        lareqa.evaluate(enc, tmp_path / "nowhere")


def _pool(n_candidates: int, langs=("en", "de")) -> lareqa.LAReQAData:
    """Questions q0 (en) and q1 (de); candidate c<i> in langs[i % 2]; q0's answers are c0 and c1, q1's c2 and c3."""
    data = lareqa.LAReQAData()
    data.questions = [("en", "q0", "question zero"), ("de", "q1", "question one")]
    data.candidates = [(f"c{i}", f"sentence {i}", f"context {i}") for i in range(n_candidates)]
    data.candidate_lang = [langs[i % 2] for i in range(n_candidates)]
    data.relevant = {"q0": {"c0", "c1"}, "q1": {"c2", "c3"}}
    return data


def test_rank_keeps_the_top_twenty_by_default_and_encodes_without_progress_bars():
    data = _pool(25)
    rng = np.random.default_rng(3)
    table = {(s, c): rng.normal(size=4) for _, s, c in data.candidates}
    table.update({text: rng.normal(size=4) for _, _, text in data.questions})
    enc = NormalisingTableEncoder(table)
    top = lareqa.rank(enc, data)
    cand = enc.encode([(s, c) for _, s, c in data.candidates])
    ques = enc.encode([t for _, _, t in data.questions])
    assert top.shape == (2, 20)
    assert top.tolist() == [list(np.argsort(-(cand @ q))[:20]) for q in ques]  # a second reading of "best first"
    assert enc.kinds[:2] == ["passage", "query"] and enc.progress[:2] == [False, False]
    names = {r.metric for r in lareqa.score(data, top)}
    assert names == {"mAP@20"}


def test_language_bias_counts_own_language_top1_among_all_and_among_hits():
    data = _pool(8)  # c0 c2 c4 c6 are en, c1 c3 c5 c7 de
    # q0 (en): top-1 c0 (en, relevant); q1 (de): top-1 c2 (en, relevant) -> hits 2, own-language hits 1
    top = np.array([[0, 1], [2, 3]])
    assert lareqa.language_bias(data, top) == {"own-language share of top-1 hits": 0.5,
                                               "own-language share of top-1": 0.5}
    # q0: top-1 c4 (en, not relevant); q1: top-1 c3 (de, relevant) -> own top-1 2 of 2, hits 1 of which 1 own
    top = np.array([[4, 0], [3, 2]])
    assert lareqa.language_bias(data, top) == {"own-language share of top-1 hits": 1.0,
                                               "own-language share of top-1": 1.0}
    # no hit at all, and neither top-1 in its own language: both shares 0, no division by zero
    top = np.array([[5, 0], [4, 2]])
    assert lareqa.language_bias(data, top) == {"own-language share of top-1 hits": 0.0,
                                               "own-language share of top-1": 0.0}
    # q0: top-1 c4 (en, own, not relevant); q1: top-1 c2 (en, relevant, not own) -> the two shares differ
    assert lareqa.language_bias(data, np.array([[4, 0], [2, 3]])) == {"own-language share of top-1 hits": 0.0,
                                                                      "own-language share of top-1": 0.5}
    # only the first column is read
    assert lareqa.language_bias(data, np.array([[4, 0, 1], [2, 3, 5]])) == lareqa.language_bias(data, np.array([[4], [2]]))
    empty = lareqa.LAReQAData()
    assert lareqa.language_bias(empty, np.zeros((0, 1), dtype=int)) == {"own-language share of top-1 hits": 0.0,
                                                                         "own-language share of top-1": 0.0}
