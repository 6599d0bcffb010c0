"""XOR-Retrieve on hand-written files: questions and passages as released, R@kt by hand, every reader error."""

from __future__ import annotations


import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import xor_retrieve

from eval_fakes import FIXTURES, KindEncoder, Oracle, values, write_lines


XOR_RANKINGS = {  # question → ranking of passage ids
    "日本の首都はどこですか？": ["2", "1", "3", "4", "5", "6"],  # "Tokyo" in passage 1 only
    "京都はどのくらいの間日本の首都でしたか？": ["2", "1", "3", "4", "5", "6"],
    "에베레스트산의 높이는 얼마입니까?": ["3", "1", "2", "4", "5", "6"],
    "Кто написал роман «Война и мир»?": ["4", "1", "2", "3", "5", "6"],
    "ما هي عاصمة مصر؟": ["6", "5", "1", "2", "3", "4"],
    "পৃথিবীর দীর্ঘতম নদী কোনটি?": ["6", "1", "2", "3", "4", "5"],  # "Nile River" occurs in no passage
}


XOR_FIX = "download the XOR-Retrieve dev questions"


QUESTIONS = "xor_dev_retrieve_eng_span_v1_1.jsonl"


PASSAGES = "enwiki_20190201_w100.tsv"


def q(qid, question, answers, lang) -> dict:
    return {"id": qid, "question": question, "answers": answers, "lang": lang}


def small_release(tmp_path: Path) -> Path:
    folder = tmp_path / "xor_retrieve"
    folder.mkdir()
    write_lines(folder / QUESTIONS, [
        q(1, "東京はどこ", ["Tokyo"], "ja"),  # answer in a passage: hit
        q(2, "大阪はどこ", ["Osaka"], "ja"),  # answer in no passage: miss
        q(3, "서울은 어디", ["Seoul"], "ko"),  # hit
        q(4, "Onko Helsinki?", ["no"], "fi"),  # yes/no only: skipped
    ])
    (folder / PASSAGES).write_text("id\ttext\ttitle\np1\tTokyo is a city\tTokyo\n"
                                   "p2\tKyoto is old\tKyoto\np3\tSeoul is big\tSeoul\n", encoding="utf-8")
    return tmp_path


SMALL_ENCODER = ({"Tokyo": [1, 0, 0], "Kyoto": [0, 1, 0], "Seoul": [0, 0, 1]},
                 {"東京": [1, 0.1, 0], "大阪": [0.1, 1, 0], "서울": [0, 0.1, 1]})


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


def test_read_questions_ids_spans_and_yes_no(tmp_path):
    """Ids become strings; 'yes'/'no' answers are dropped, and a question left without answers is skipped."""
    path = write_lines(tmp_path / QUESTIONS, [
        q(7, "Where is Tokyo?", ["no", "Kanto"], "ja"),
        q("x1", "Is Kyoto old?", ["no"], "ja"),
        q("x2", "Is Seoul big?", ["yes"], "ko"),
        q(-3, "Capital of Korea?", ["Seoul"], "ko"),
    ])
    assert xor_retrieve.read_questions(path, None, None) == [
        ("ja", "7", "Where is Tokyo?", ["Kanto"]), ("ko", "-3", "Capital of Korea?", ["Seoul"])]


@pytest.mark.parametrize("answers", ["Tokyo", [1], ["Tokyo", None]])
def test_read_questions_answers_must_be_a_list_of_strings(tmp_path, answers):
    """A non-list or non-string answers value: '<path>:<n>: 'answers' must be a list of strings; <fix>'."""
    path = write_lines(tmp_path / QUESTIONS, [q(1, "ok?", ["a"], "ja"), q(2, "Where?", answers, "ja")])
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}:2: 'answers' must be a list of strings; "
                                       rf"{XOR_FIX}"):
        xor_retrieve.read_questions(path, None, None)


@pytest.mark.parametrize("question", ["   ", "", 5])
def test_read_questions_empty_or_non_string_question(tmp_path, question):
    """A blank or non-string question: '<path>:<n>: empty 'question'; <fix>'."""
    path = write_lines(tmp_path / QUESTIONS, [q(1, question, ["Tokyo"], "ja")])
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}:1: empty 'question'; {XOR_FIX}"):
        xor_retrieve.read_questions(path, None, None)


def test_read_questions_malformed_line_names_the_xor_fix(tmp_path):
    """A broken JSON line in the questions file: '<path>:<n>: not JSON (...); <the XOR download fix>'."""
    path = write_lines(tmp_path / QUESTIONS, [q(1, "Where?", ["Tokyo"], "ja"), '{"id": 2,'])
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}:2: not JSON \(.*\); {XOR_FIX}"):
        xor_retrieve.read_questions(path, None, None)


def test_read_questions_none_left_says_any_language_and_what_the_file_has(tmp_path):
    """Only yes/no answers and no language filter: '... for languages any (the file has fi, sv)'."""
    path = write_lines(tmp_path / QUESTIONS, [q(1, "Onko?", ["yes"], "fi"), q(2, "Är?", ["no"], "sv")])
    with pytest.raises(MSMError, match=rf"^xor_retrieve: no question with a span answer in {re.escape(str(path))} "
                                       r"for languages any \(the file has fi, sv\)$"):
        xor_retrieve.read_questions(path, None, None)


def test_read_questions_empty_file_says_none(tmp_path):
    """A file of blank lines only: '(the file has none)'."""
    path = tmp_path / QUESTIONS
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(MSMError, match=r"for languages any \(the file has none\)$"):
        xor_retrieve.read_questions(path, None, None)


def test_read_passages_empty_title_is_fine_and_trailing_x_kept(tmp_path):
    """An empty title (line ends in a tab) is a valid row; a title ending in 'X' and a CRLF line read exactly."""
    path = tmp_path / PASSAGES
    path.write_bytes("id\ttext\ttitle\n1\tTokyo is big\t\n2\t\"Kyoto, old\"\tKyotoX\r\n".encode("utf-8"))
    assert xor_retrieve.read_passages(path) == (["1", "2"], ["Tokyo is big", "Kyoto, old"], ["", "KyotoX"])


def test_read_passages_empty_text_is_an_error(tmp_path):
    """A row whose text is blank (title present) is rejected with the file, line and fix."""
    path = tmp_path / PASSAGES
    path.write_text("1\tTokyo\tTokyo\n2\t \tKyoto\n", encoding="utf-8")
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}:2: expected 'id<TAB>text<TAB>title' with a text, "
                                       rf"got '2\\t \\tKyoto'; {XOR_FIX}"):
        xor_retrieve.read_passages(path)


def test_read_passages_long_bad_line_quoted_to_80_characters(tmp_path):
    """A malformed line is quoted by its first 80 characters exactly, then the fix."""
    path = tmp_path / PASSAGES
    line = "9\t" + "".join(chr(ord("a") + i % 26) for i in range(120))  # two columns, 122 characters
    path.write_text(line + "\n", encoding="utf-8")
    shown = repr(line[:80])
    assert len(line) > 81 and shown.endswith("'")
    with pytest.raises(MSMError, match=re.escape(f"{path}:1: expected 'id<TAB>text<TAB>title' with a text, "
                                                 f"got {shown}; {XOR_FIX}")):
        xor_retrieve.read_passages(path)


def test_read_passages_unreadable_or_missing_names_the_xor_fix(tmp_path):
    """Bad UTF-8 or a missing passages file: the path and the XOR download fix."""
    path = tmp_path / PASSAGES
    path.write_bytes(b"1\t\xff\xfe\tT\n")
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}: unreadable \(.*\); {XOR_FIX}"):
        xor_retrieve.read_passages(path)
    with pytest.raises(MSMError, match=rf"^{re.escape(str(tmp_path / 'psgs_w100.tsv'))} not found; {XOR_FIX}"):
        xor_retrieve.read_passages(tmp_path / "psgs_w100.tsv")


def test_load_without_questions_file_names_both_names_and_the_fix(tmp_path):
    """No questions file: '<folder>: none of <v1.1 name>, <v1.0 name> found; <fix>'."""
    folder = tmp_path / "xor_retrieve"
    folder.mkdir()
    (folder / PASSAGES).write_text("1\tTokyo\tTokyo\n", encoding="utf-8")
    with pytest.raises(MSMError, match=rf"^{re.escape(str(folder))}: none of xor_dev_retrieve_eng_span_v1_1\.jsonl, "
                                       rf"xor_dev_retrieve_eng_span\.jsonl found; {XOR_FIX}"):
        xor_retrieve.load(folder)


def test_evaluate_results_task_language_value_count(tmp_path):
    """All three passages are read (depth 100): ja 1/2, ko 1, mean of the two; counts are questions (languages
    for the mean); every row is task 'xor_retrieve'; progress stays off by default."""
    enc = KindEncoder(*SMALL_ENCODER)
    results = xor_retrieve.evaluate(enc, small_release(tmp_path))
    rows = [(r.task, r.language, r.metric, r.value, r.count) for r in results]
    expected = []
    for metric in ("R@2kt", "R@5kt"):
        expected += [("xor_retrieve", "ja", metric, 0.5, 2), ("xor_retrieve", "ko", metric, 1.0, 1),
                     ("xor_retrieve", "mean", metric, (0.5 + 1.0) / 2, 2)]
    assert rows == expected
    assert enc.calls == [("passage", False), ("query", False)]


def test_evaluate_limit_and_progress_are_passed_on(tmp_path):
    """limit=1 keeps the first question per language; show_progress=True reaches both encoder calls."""
    enc = KindEncoder(*SMALL_ENCODER)
    results = xor_retrieve.evaluate(enc, small_release(tmp_path), limit=1, show_progress=True)
    got = {(r.language, r.metric): (r.value, r.count) for r in results}
    assert got == {(lang, m): v for m in ("R@2kt", "R@5kt")
                   for lang, v in (("ja", (1.0, 1)), ("ko", (1.0, 1)), ("mean", (1.0, 2)))}
    assert enc.calls == [("passage", True), ("query", True)]


def test_evaluate_default_depth_is_100_passages(tmp_path):
    """With 102 short passages ranked by angle, the only answer sits at rank 101: outside the default depth of 100
    (R@2kt 0) and inside depth 101 (R@2kt 1), although 101 passages hold far fewer than 2,000 tokens."""
    folder = tmp_path / "xor_retrieve"
    folder.mkdir()
    write_lines(folder / QUESTIONS, [q(1, "東京はどこ", ["Tokyo"], "ja")])
    rows = [f"p{i}\t{'Tokyo tower' if i == 100 else 'filler'}\tT{i:03d}" for i in range(102)]
    (folder / PASSAGES).write_text("\n".join(rows) + "\n", encoding="utf-8")
    passages = {f"T{i:03d}": [math.cos(0.01 * i), math.sin(0.01 * i)] for i in range(102)}
    scores = [np.dot([1.0, 0.0], passages[f"T{i:03d}"]) for i in range(102)]
    assert sorted(range(102), key=lambda i: -scores[i]).index(100) == 100  # the 101st by hand
    enc = KindEncoder(passages, {"東京": [1.0, 0.0]})
    got = {(r.language, r.metric): r.value for r in xor_retrieve.evaluate(enc, tmp_path)}
    assert got[("ja", "R@2kt")] == 0.0 and got[("ja", "R@5kt")] == 0.0
    deeper = {(r.language, r.metric): r.value for r in xor_retrieve.evaluate(enc, tmp_path, depth=101)}
    assert deeper[("ja", "R@2kt")] == 1.0
