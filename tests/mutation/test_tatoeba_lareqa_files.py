"""Tatoeba and LAReQA on hand-written files in the release formats, scored with a lookup-table encoder and
metrics recomputed here with plain loops (nearest neighbour by hand, average precision from its definition)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import lareqa, tatoeba


class TableEncoder:
    """Fixed vectors per text (unit rows); records the kinds it was asked for."""

    def __init__(self, table: dict):
        self.table, self.kinds, self.progress = table, [], []

    def encode(self, texts, kind="passage", show_progress=False):
        self.kinds.append(kind)
        self.progress.append(show_progress)
        rows = np.array([self.table[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def nn_accuracy(x, y) -> float:
    hits = 0
    for i, v in enumerate(x):
        scores = [float(v @ w) for w in y]
        hits += scores.index(max(scores)) == i
    return hits / len(x)


def test_tatoeba_both_directions_per_language_and_mean(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    rng = np.random.default_rng(0)
    table, truth = {}, {}
    for lang, n in (("fra", 5), ("deu", 4)):
        src = [f"{lang} sentence {i}" for i in range(n - 1)] + [f"{lang} ends with X"]
        eng = [f"eng {lang} sentence {i}" for i in range(n - 1)] + [f"English {lang} ends with X"]
        (folder / f"tatoeba.{lang}-eng.{lang}").write_text("\n".join(src) + "\n", encoding="utf-8")
        (folder / f"tatoeba.{lang}-eng.eng").write_text("\n".join(eng) + "\n", encoding="utf-8")
        x, y = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
        y[:2] = x[:2] + 0.05  # two clean pairs, the rest noise: the two directions differ
        table.update(zip(src, x)), table.update(zip(eng, y))
        norm = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
        truth[lang] = (nn_accuracy(norm(x), norm(y)), nn_accuracy(norm(y), norm(x)))
    (folder / "README").write_text("not a pair file")
    assert tatoeba.languages(folder) == ["deu", "fra"]
    assert truth["fra"][0] != truth["fra"][1] or truth["deu"][0] != truth["deu"][1]
    enc = TableEncoder(table)
    results = tatoeba.evaluate(enc, tmp_path)
    got = {(r.language, r.metric): (r.value, r.count) for r in results}
    for lang, (fwd, bwd) in truth.items():
        n = 5 if lang == "fra" else 4
        assert got[(lang, "acc@1 xxx->eng")] == pytest.approx((fwd, n))
        assert got[(lang, "acc@1 eng->xxx")] == pytest.approx((bwd, n))
    assert got[("mean", "acc@1 xxx->eng")] == pytest.approx((np.mean([t[0] for t in truth.values()]), 2))
    assert got[("mean", "acc@1 eng->xxx")] == pytest.approx((np.mean([t[1] for t in truth.values()]), 2))
    assert [r.language for r in results] == ["deu", "deu", "fra", "fra", "mean", "mean"]
    assert {r.task for r in results} == {"tatoeba"}
    assert set(enc.kinds) == {"query"} and set(enc.progress) == {False}  # both sides encoded as queries
    assert tatoeba.load_pairs(folder, "fra", limit=2) == (["fra sentence 0", "fra sentence 1"],
                                                          ["eng fra sentence 0", "eng fra sentence 1"])
    assert tatoeba.load_pairs(folder, "fra")[0][-1] == "fra ends with X"  # only the final newline is stripped
    with pytest.raises(MSMError, match=r"no files for language 'ita' in .* \(have deu, fra\)"):
        tatoeba.load_pairs(folder, "ita")
    (folder / "tatoeba.ita-eng.ita").write_text("solo\n")  # the English side is missing
    with pytest.raises(MSMError, match="no files for language 'ita'"):
        tatoeba.load_pairs(folder, "ita")
    only = tatoeba.evaluate(enc, tmp_path, langs=["deu"], limit=3, show_progress=True)
    assert [(r.language, r.count) for r in only] == [("deu", 3), ("deu", 3), ("mean", 1), ("mean", 1)]
    assert enc.progress[-2:] == [True, True]


def test_tatoeba_bad_files(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    with pytest.raises(MSMError, match="tatoeba: .* not found"):
        tatoeba.evaluate(TableEncoder({}), tmp_path / "nowhere")
    (folder / "tatoeba.fra-eng.fra").write_text("a\nb\n")
    (folder / "tatoeba.fra-eng.eng").write_text("a\n")
    with pytest.raises(MSMError, match="tatoeba fra: tatoeba.fra-eng.fra has 2 lines, tatoeba.fra-eng.eng 1"):
        tatoeba.load_pairs(folder, "fra")
    with pytest.raises(MSMError, match=r"no files for language 'deu' in .* \(have fra\)"):
        tatoeba.load_pairs(folder, "deu")
    (folder / "tatoeba.fra-eng.eng").write_bytes(b"\xff\xfe\n\x00")
    with pytest.raises(MSMError, match=r"tatoeba.fra-eng.eng: not UTF-8"):
        tatoeba.load_pairs(folder, "fra")
    (folder / "tatoeba.fra-eng.eng").write_text("a\nb\n")
    (folder / "tatoeba.fra-eng.fra").write_bytes(b"ok\n\xff\n")
    with pytest.raises(MSMError, match=r"tatoeba.fra-eng.fra: not UTF-8"):  # names the bad file, not the other
        tatoeba.load_pairs(folder, "fra")


def squad(paragraphs) -> dict:
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
    en = squad([paragraph(["Paris is big.", "Rome is old."], [("q1", "big city?", "big"), ("q2", "old?", "old")]),
                paragraph(["Cats purr."], [("q3", "purr?", "purr")])])
    de = squad([paragraph(["Paris ist groß.", "Rom ist alt."], [("q1", "große Stadt?", "groß"), ("q2", "alt?", "alt")]),
                paragraph(["Katzen schnurren."], [("q3", "schnurren?", "schnurren")])])
    de["data"][0]["paragraphs"][0]["qas"].append(  # answer outside every sentence break: dropped
        {"id": "q4", "question": "nowhere?", "answers": [{"answer_start": 999, "text": "x"}]})
    (folder / "en.json").write_text(json.dumps(en), encoding="utf-8")
    (folder / "de.json").write_text(json.dumps(de), encoding="utf-8")
    return folder


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


def average_precision(ranked, relevant, k):
    """mAP@k of LAReQA: precision at each hit in the top k, summed, over min(|relevant|, k)."""
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], 1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / min(len(relevant), k)


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
    enc = TableEncoder(table)
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
