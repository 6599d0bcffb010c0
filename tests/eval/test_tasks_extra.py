"""Mr.TyDi, XOR-Retrieve and Mewsli-X on hand-written fixtures in the release formats (tests/eval/fixtures/).

An oracle encoder ranks by design (each passage one axis, each query weighted towards a chosen ranking), so every
metric below is computed by hand from those rankings; the tiny model runs the three tasks end to end via the CLI.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from msm.cli import main
from msm.errors import MSMError
from msm.eval.tasks import mewsli_x, mrtydi, xor_retrieve

FIXTURES = Path(__file__).parent / "fixtures"


class Oracle:
    """Passage text containing key p → the axis of p; query containing key q → Σ 2^-r · axis(ranking[q][r])."""

    def __init__(self, passages: dict[str, str], rankings: dict[str, list[str]]) -> None:
        self.passages, self.rankings = passages, rankings
        self.axis = {pid: i for i, pid in enumerate(dict.fromkeys(passages.values()))}

    @staticmethod
    def _key(text: str, keys) -> str:
        found = [k for k in keys if k in text]
        assert found, f"no oracle key in {text[:80]!r}"
        return max(found, key=len)

    def encode(self, texts, kind="passage", show_progress=False) -> np.ndarray:
        out = np.zeros((len(texts), len(self.axis)), dtype=np.float32)
        for row, text in enumerate(texts):
            if kind == "passage":
                out[row, self.axis[self.passages[self._key(text, self.passages)]]] = 1
            else:
                for r, pid in enumerate(self.rankings[self._key(text, self.rankings)]):
                    out[row, self.axis[pid]] = 2.0 ** -r
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def values(results) -> dict[tuple[str, str], float]:
    return {(r.language, r.metric): r.value for r in results}


def copy_task(tmp_path: Path, task: str) -> Path:
    shutil.copytree(FIXTURES / task, tmp_path / task)
    return tmp_path / task


# ---------------------------------------------------------------- Mr.TyDi

MRTYDI_RANKINGS = {  # query id → oracle ranking
    "1": ["5#0", "31#0", "5#1", "12#0", "47#0"],  # relevant 5#0, 5#1: RR 1, R@2 1/2
    "2": ["47#0", "12#0", "5#0", "5#1", "31#0"],  # relevant 12#0: RR 1/2, R@2 1
    "3": ["5#0", "12#0", "5#1", "47#0", "31#0"],  # relevant 31#0 (47#0 has relevance 0): RR 1/5, R@2 0
    "7": ["102#0", "101#0", "103#0", "104#0"],  # relevant 102#0: RR 1
    "9": ["104#0", "103#0", "101#0", "102#0"],  # relevant 101#0: RR 1/3, R@2 0
}


def mrtydi_oracle(root: Path) -> Oracle:
    passages, rankings = {}, {}
    for lang in mrtydi.languages(root):
        data = mrtydi.load(mrtydi.language_folder(root, lang))
        passages.update(zip(data.docs, data.doc_ids))
        rankings.update({text: MRTYDI_RANKINGS[qid] for qid, text in data.queries})
    return Oracle(passages, rankings)


def test_mrtydi_loads_tarball_and_hf_formats(tmp_path):
    ja = mrtydi.load(FIXTURES / "mrtydi" / "mrtydi-v1.1-japanese")
    assert ja.doc_ids == ["5#0", "5#1", "12#0", "31#0", "47#0"]
    assert ja.docs[2] == "富士山\n富士山は日本で最も高い山で、標高は3776メートルである。"
    assert [q for q, _ in ja.queries] == ["1", "2", "3"]  # topic 4 has no qrels
    assert ja.relevant == {"1": {"5#0", "5#1"}, "2": {"12#0"}, "3": {"31#0"}}  # relevance 0 is not relevant
    sw = mrtydi.load(FIXTURES / "mrtydi" / "mrtydi-v1.1-swahili")
    assert sw.docs[1] == "Nairobi Nairobi ni mji mkuu wa Kenya na mji mkubwa zaidi nchini humo."
    assert sw.queries == [("7", "Mji mkuu wa Kenya ni upi?"), ("9", "Mlima mrefu zaidi barani Afrika ni upi?")]
    assert mrtydi.load(FIXTURES / "mrtydi" / "mrtydi-v1.1-japanese", limit=1).queries == [
        ("1", "東京はどんな都市ですか")]
    folder = copy_task(tmp_path, "mrtydi") / "mrtydi-v1.1-japanese" / "collection"
    with gzip.open(folder / "docs.jsonl.gz", "wb") as fh:  # the release ships it gzipped
        fh.write((folder / "docs.jsonl").read_bytes())
    (folder / "docs.jsonl").unlink()
    assert mrtydi.load(folder.parent) == ja


def test_mrtydi_metrics_by_hand():
    oracle = mrtydi_oracle(FIXTURES / "mrtydi")
    got = values(mrtydi.evaluate(oracle, FIXTURES))
    assert got[("ja", "MRR@100")] == pytest.approx((1 + 1 / 2 + 1 / 5) / 3)
    assert got[("sw", "MRR@100")] == pytest.approx((1 + 1 / 3) / 2)
    assert got[("mean", "MRR@100")] == pytest.approx(((1 + 1 / 2 + 1 / 5) / 3 + (1 + 1 / 3) / 2) / 2)
    assert got[("ja", "Recall@100")] == got[("sw", "Recall@100")] == 1.0  # every passage is within the top 100
    at2 = values(mrtydi.evaluate(oracle, FIXTURES, langs=["ja"], k=2))
    assert at2[("ja", "MRR@2")] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert at2[("ja", "Recall@2")] == pytest.approx((1 / 2 + 1 + 0) / 3)


# ---------------------------------------------------------------- XOR-Retrieve

XOR_RANKINGS = {  # question → ranking of passage ids
    "日本の首都はどこですか？": ["2", "1", "3", "4", "5", "6"],  # "Tokyo" in passage 1 only
    "京都はどのくらいの間日本の首都でしたか？": ["2", "1", "3", "4", "5", "6"],
    "에베레스트산의 높이는 얼마입니까?": ["3", "1", "2", "4", "5", "6"],
    "Кто написал роман «Война и мир»?": ["4", "1", "2", "3", "5", "6"],
    "ما هي عاصمة مصر؟": ["6", "5", "1", "2", "3", "4"],
    "পৃথিবীর দীর্ঘতম নদী কোনটি?": ["6", "1", "2", "3", "4", "5"],  # "Nile River" occurs in no passage
}


def test_xor_loads_questions_and_passages():
    data = xor_retrieve.load(FIXTURES / "xor_retrieve")
    assert [lang for lang, *_ in data.questions] == ["ja", "ja", "ko", "ru", "ar", "bn"]  # fi: a yes/no answer only
    assert data.questions[2][3] == ["8,848 metres", "8,848"]
    assert data.passage_ids == ["1", "2", "3", "4", "5", "6"]  # header row skipped
    assert data.texts[3] == ('War and Peace ("Война и мир") is a novel by the Russian author Leo Tolstoy, '
                             "published in 1869.")
    assert data.titles[2] == "Mount Everest"
    assert [q for _, _, q, _ in xor_retrieve.load(FIXTURES / "xor_retrieve", ["ja"], limit=1).questions] == [
        "日本の首都はどこですか？"]


def test_xor_metrics_by_hand():
    data = xor_retrieve.load(FIXTURES / "xor_retrieve")
    oracle = Oracle(dict(zip(data.texts, data.passage_ids)), XOR_RANKINGS)
    got = values(xor_retrieve.evaluate(oracle, FIXTURES))
    # all six passages fit in 2,000 tokens: a hit wherever the answer string occurs at all
    assert {lang: got[(lang, "R@2kt")] for lang in ["ja", "ko", "ru", "ar", "bn"]} == {
        "ja": 1.0, "ko": 1.0, "ru": 1.0, "ar": 1.0, "bn": 0.0}
    assert got[("mean", "R@2kt")] == got[("mean", "R@5kt")] == pytest.approx(4 / 5)
    top1 = values(xor_retrieve.evaluate(oracle, FIXTURES, depth=1))  # only the first passage is read
    assert {lang: top1[(lang, "R@5kt")] for lang in ["ja", "ko", "ru", "ar", "bn"]} == {
        "ja": 0.5, "ko": 1.0, "ru": 1.0, "ar": 0.0, "bn": 0.0}


@pytest.mark.parametrize(("filler", "r2kt", "r5kt"), [(1999, 1.0, 1.0), (2000, 0.0, 1.0), (5000, 0.0, 0.0)])
def test_xor_answer_beyond_the_token_budget(tmp_path, filler, r2kt, r5kt):
    folder = tmp_path / "xor_retrieve"
    folder.mkdir()
    question = {"id": "1", "question": "日本の首都はどこですか？", "answers": ["Tokyo"], "lang": "ja"}
    (folder / "xor_dev_retrieve_eng_span_v1_1.jsonl").write_text(json.dumps(question, ensure_ascii=False) + "\n")
    filler_text = " ".join(["word"] * filler)
    (folder / "psgs_w100.tsv").write_text(  # DPR's file name, here without the header line
        f'f\t"{filler_text}"\tFiller\nt\t"Tokyo is the capital of Japan."\tTokyo\n')
    data = xor_retrieve.load(folder)
    oracle = Oracle(dict(zip(data.texts, data.passage_ids)), {"日本の首都はどこですか？": ["f", "t"]})
    got = values(xor_retrieve.evaluate(oracle, tmp_path))
    assert (got[("ja", "R@2kt")], got[("ja", "R@5kt")]) == (r2kt, r5kt)


# ---------------------------------------------------------------- Mewsli-X

MEWSLI_RANKINGS = {  # example id → ranking of entity ids; one gold entity each
    "en-m1": ["Q1757"],  # 1
    "en-m2": ["Q33", "Q1757", "Q47034"],  # 1/3
    "es-m1": ["Q298"],  # 1
    "es-m2": ["Q298", "Q414"],  # 1/2
    "ja-m1": ["Q80011", "Q1490"],  # 1/2
    "ja-m2": ["Q80011"],  # 1
}


def test_mewsli_x_builds_the_xtreme_r_queries():
    data = mewsli_x.load(FIXTURES / "mewsli_x")
    assert [(lang, ex, gold) for lang, ex, _, gold in data.mentions] == [
        ("en", "en-m1", "Q1757"), ("en", "en-m2", "Q47034"), ("es", "es-m1", "Q298"), ("es", "es-m2", "Q414"),
        ("ja", "ja-m1", "Q1490"), ("ja", "ja-m2", "Q80011")]
    # one sentence of context (not the title), the mention marked and prefixed
    assert data.mentions[0][2] == ("Helsinki: In { Helsinki } , the Finnish trade union for bus and truck drivers "
                                   "has gone on strike on Sunday evening.")
    assert data.mentions[5][2] == "千葉県: 気象庁によると、震源は { 千葉県 } の東方沖であった。"
    assert data.descriptions[0] == ("Helsinki ist die Hauptstadt Finnlands. Die Stadt liegt an der Küste des "
                                    "Finnischen Meerbusens.")
    assert mewsli_x.mention_query("Ein {alter} Satz über Bonn.", [(0, 27)], 22, 26) == (
        "Bonn: Ein (alter) Satz über { Bonn } .")


def test_mewsli_x_metrics_by_hand():
    data = mewsli_x.load(FIXTURES / "mewsli_x")
    oracle = Oracle(dict(zip(data.descriptions, data.entity_ids)),
                    {query: MEWSLI_RANKINGS[ex] for _, ex, query, _ in data.mentions})
    got = values(mewsli_x.evaluate(oracle, FIXTURES))
    assert got[("en", "mAP@20")] == pytest.approx((1 + 1 / 3) / 2)
    assert got[("es", "mAP@20")] == got[("ja", "mAP@20")] == pytest.approx((1 + 1 / 2) / 2)
    assert got[("mean", "mAP@20")] == pytest.approx(((1 + 1 / 3) / 2 + 0.75 + 0.75) / 3)
    top1 = values(mewsli_x.evaluate(oracle, FIXTURES, langs=["en", "ja"], k=1))
    assert top1 == {("en", "mAP@1"): 0.5, ("ja", "mAP@1"): 0.5, ("mean", "mAP@1"): 0.5}


# ---------------------------------------------------------------- bad files


def _replace_line(path: Path, n: int, line: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[n - 1] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _set(path: Path, n: int, edit) -> None:
    obj = json.loads(path.read_text(encoding="utf-8").splitlines()[n - 1])
    edit(obj)
    _replace_line(path, n, json.dumps(obj, ensure_ascii=False))


JA = "mrtydi-v1.1-japanese"
BAD = {
    "qrels-columns": ("mrtydi", lambda d: _replace_line(d / JA / "qrels.test.txt", 2, "1 Q0 5#1"),
                      r"qrels.test.txt:2: expected TREC qrels 'qid Q0 docid relevance'"),
    "topic-no-tab": ("mrtydi", lambda d: _replace_line(d / JA / "topic.test.tsv", 3, "3 平安京"),
                     r"topic.test.tsv:3: expected 'qid<TAB>query'"),
    "corpus-json": ("mrtydi", lambda d: _replace_line(d / JA / "collection" / "docs.jsonl", 3, '{"id": "12#0",'),
                    r"docs.jsonl:3: not JSON"),
    "corpus-keys": ("mrtydi", lambda d: _replace_line(d / JA / "collection" / "docs.jsonl", 1, '{"id": "5#0"}'),
                    r'docs.jsonl:1: expected \{"docid", "title", "text"\} or \{"id", "contents"\}'),
    "corpus-utf8": ("mrtydi", lambda d: (d / JA / "collection" / "docs.jsonl").write_bytes(b'{"id": "\xff"}\n'),
                    r"docs.jsonl: unreadable .*utf-8"),
    "qrels-missing": ("mrtydi", lambda d: (d / JA / "qrels.test.txt").unlink(),
                      r"mrtydi-v1.1-japanese/qrels.test.txt not found; re-download and unpack"),
    "psgs-columns": ("xor_retrieve", lambda d: _replace_line(d / "enwiki_20190201_w100.tsv", 3, "2\tKyoto only"),
                     r"enwiki_20190201_w100.tsv:3: expected 'id<TAB>text<TAB>title'"),
    "question-keys": ("xor_retrieve", lambda d: _set(d / "xor_dev_retrieve_eng_span_v1_1.jsonl", 2,
                                                     lambda o: o.pop("answers")),
                      r"xor_dev_retrieve_eng_span_v1_1.jsonl:2: missing answers"),
    "psgs-missing": ("xor_retrieve", lambda d: (d / "enwiki_20190201_w100.tsv").unlink(),
                     r"none of enwiki_20190201_w100.tsv, psgs_w100.tsv, psgs_w100.tsv.gz found; download"),
    "no-text": ("mewsli_x", lambda d: _set(d / "wikinews_mentions-test.jsonl", 2,
                                           lambda o: o["context"].update(text="")),
                r"wikinews_mentions-test.jsonl:2: empty context.text: this is the released no-text file"),
    "span-text": ("mewsli_x", lambda d: _set(d / "wikinews_mentions-test.jsonl", 1,
                                             lambda o: o["mentions"][0]["mention_span"].update(start=48)),
                  r"wikinews_mentions-test.jsonl:1: mention en-m1 'Helsinki' != context.text\[48:55\]"),
    "article-shape": ("mewsli_x", lambda d: _set(d / "wikinews_mentions-test.jsonl", 3,
                                                 lambda o: o["context"].pop("language")),
                      r"wikinews_mentions-test.jsonl:3: malformed Mewsli-X article \(KeyError"),
    "entities-missing": ("mewsli_x", lambda d: (d / "candidate_set_entities.jsonl").unlink(),
                         r"candidate_set_entities.jsonl not found; run get-mewsli-x.sh"),
    "gold-missing": ("mewsli_x", lambda d: _replace_line(d / "candidate_set_entities.jsonl", 6,
                                                         '{"entity_id": "Q0", "description": "Nothing."}'),
                     r"gold entities Q1490 of wikinews_mentions-test.jsonl are not in .*candidate_set_entities.jsonl"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_name_the_file_and_the_fix(tmp_path, case):
    task, edit, message = BAD[case]
    edit(copy_task(tmp_path, task))
    evaluate = {"mrtydi": mrtydi, "xor_retrieve": xor_retrieve, "mewsli_x": mewsli_x}[task].evaluate
    with pytest.raises(MSMError, match=message):
        evaluate(Oracle({}, {}), tmp_path, langs=["ja"] if task == "mrtydi" else None)


def test_missing_task_folders(tmp_path):
    with pytest.raises(MSMError, match=r"mrtydi: no mrtydi-v1.1-<language>/ folder in .*; re-download and unpack"):
        mrtydi.evaluate(Oracle({}, {}), tmp_path)
    with pytest.raises(MSMError, match=r"mrtydi: .*mrtydi-v1.1-korean not found \(have ja, sw\)"):
        mrtydi.evaluate(Oracle({}, {}), FIXTURES, langs=["ko"])
    with pytest.raises(MSMError, match=r"mrtydi: unknown language 'xx'; Mr.TyDi has ar, bn"):
        mrtydi.evaluate(Oracle({}, {}), FIXTURES, langs=["xx"])
    with pytest.raises(MSMError, match=r"xor_retrieve: .*xor_retrieve not found; download"):
        xor_retrieve.evaluate(Oracle({}, {}), tmp_path)
    with pytest.raises(MSMError, match=r"no question with a span answer .* languages \['de'\] \(the file has ar, bn"):
        xor_retrieve.evaluate(Oracle({}, {}), FIXTURES, langs=["de"])
    with pytest.raises(MSMError, match=r"mewsli_x: .*mewsli_x not found; run get-mewsli-x.sh"):
        mewsli_x.evaluate(Oracle({}, {}), tmp_path)


# ---------------------------------------------------------------- CLI, tiny model


def test_msm_eval_runs_the_three_tasks_with_the_tiny_model(tiny_model_dir, tmp_path):
    assert main(["eval", "--model", str(tiny_model_dir), "--tasks", "mrtydi,xor_retrieve,mewsli_x",
                 "--data-dir", str(FIXTURES), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    counts = {(r["task"], r["language"], r["metric"]): r["count"] for r in rows}
    assert counts[("mrtydi", "ja", "MRR@100")] == 3 and counts[("mrtydi", "sw", "Recall@100")] == 2
    assert counts[("xor_retrieve", "ja", "R@2kt")] == 2 and counts[("xor_retrieve", "mean", "R@5kt")] == 5
    assert counts[("mewsli_x", "es", "mAP@20")] == 2 and counts[("mewsli_x", "mean", "mAP@20")] == 3
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
