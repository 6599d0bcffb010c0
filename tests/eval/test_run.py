"""``msm eval`` across tasks (``msm.eval.run``): broken release files name the file and the fix, missing task folders,
the three tasks end to end with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msm.cli import main
from msm.errors import MSMError
from msm.eval.tasks import lareqa, mewsli_x, mrtydi, tatoeba, xor_retrieve

from eval_fakes import copy_task, FIXTURES, Oracle


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


def test_bad_inputs(tmp_path, shared_data):
    with pytest.raises(MSMError, match="no files for language 'xx'"):
        tatoeba.load_pairs(shared_data / "tatoeba", "xx")
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "en.json").write_text("{not json")
    with pytest.raises(MSMError, match="en.json: not SQuAD-format XQuAD-R JSON"):
        lareqa.load(tmp_path / "xquad-r", ["en"])
    with pytest.raises(MSMError, match="klingon.json not found"):
        lareqa.load(tmp_path / "xquad-r", ["klingon"])


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


def test_msm_eval_runs_the_three_tasks_with_the_tiny_model(tiny_model_dir, tmp_path):
    assert main(["eval", "--model", str(tiny_model_dir), "--tasks", "mrtydi,xor_retrieve,mewsli_x",
                 "--data-dir", str(FIXTURES), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    counts = {(r["task"], r["language"], r["metric"]): r["count"] for r in rows}
    assert counts[("mrtydi", "ja", "MRR@100")] == 3 and counts[("mrtydi", "sw", "Recall@100")] == 2
    assert counts[("xor_retrieve", "ja", "R@2kt")] == 2 and counts[("xor_retrieve", "mean", "R@5kt")] == 5
    assert counts[("mewsli_x", "es", "mAP@20")] == 2 and counts[("mewsli_x", "mean", "mAP@20")] == 3
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
