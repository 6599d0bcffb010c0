"""The shared release-file readers (``msm.eval.tasks.common``) and XOR-Retrieve on hand-written files.

Inputs are written here in the release formats; expected values come from the files (ids, texts, answers) and from
plain loops over the metric's definition, never from the code under test. The encoders below take ``kind`` and
``show_progress`` as required keywords, so a caller that forgets either one fails, and they record what they got.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import common, xor_retrieve

XOR_FIX = "download the XOR-Retrieve dev questions"
QUESTIONS = "xor_dev_retrieve_eng_span_v1_1.jsonl"
PASSAGES = "enwiki_20190201_w100.tsv"


class KindEncoder:
    """Passages and queries from separate lookup tables (by the first key found in the text); records each call."""

    def __init__(self, passages: dict[str, list[float]], queries: dict[str, list[float]]) -> None:
        self.tables = {"passage": passages, "query": queries}
        self.calls: list[tuple[str, object]] = []

    def encode(self, texts, *, kind, show_progress):
        self.calls.append((kind, show_progress))
        table = self.tables[kind]  # any other kind is a KeyError
        rows = []
        for text in texts:
            found = [k for k in table if k in text]
            assert found, f"no {kind} key in {text!r}"
            rows.append(table[max(found, key=len)])
        return np.array(rows, dtype=np.float32)


def write_lines(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def q(qid, question, answers, lang) -> dict:
    return {"id": qid, "question": question, "answers": answers, "lang": lang}


# ---------------------------------------------------------------- common.lines / common.jsonl


def test_lines_strip_only_the_line_break(tmp_path):
    """Only the newline (\\n or \\r\\n) is cut: trailing tabs, spaces and 'X' stay; blank lines are skipped."""
    path = tmp_path / "f.tsv"
    path.write_bytes(b"a\tb\t\n\nends with X\r\n  \ntail  \n")
    assert list(common.lines(path, "fix")) == [(1, "a\tb\t"), (3, "ends with X"), (5, "tail  ")]


def test_lines_and_jsonl_missing_file_name_path_and_fix(tmp_path):
    """A missing file is an MSMError '<path> not found; <fix>', also when read through jsonl."""
    path = tmp_path / "nothing.jsonl"
    expected = rf"^{re.escape(str(path))} not found; fetch it first$"
    with pytest.raises(MSMError, match=expected):
        list(common.lines(path, "fetch it first"))
    with pytest.raises(MSMError, match=expected):
        list(common.jsonl(path, ("id",), "fetch it first"))


def test_jsonl_bad_utf8_names_the_fix(tmp_path):
    """Bad UTF-8 read through jsonl: '<path>: unreadable (...utf-8...); <fix>'."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}: unreadable \(.*utf-8.*\); fetch it first$"):
        list(common.jsonl(path, ("id",), "fetch it first"))


def test_jsonl_not_an_object_names_the_type(tmp_path):
    """A JSON array line: '<path>:<n>: a JSON list, not an object; <fix>'."""
    path = write_lines(tmp_path / "a.jsonl", [{"id": 1}, "[1, 2]"])
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}:2: a JSON list, not an object; fetch it$"):
        list(common.jsonl(path, ("id",), "fetch it"))


def test_jsonl_missing_keys_lists_missing_and_expected(tmp_path):
    """Two keys missing: both named, comma-separated, then all the expected keys, then the fix."""
    path = write_lines(tmp_path / "a.jsonl", [{"id": 1, "question": "q"}])
    with pytest.raises(MSMError, match=rf"^{re.escape(str(path))}:1: missing answers, lang "
                                       r"\(expected keys id, question, answers, lang\); fetch it$"):
        list(common.jsonl(path, ("id", "question", "answers", "lang"), "fetch it"))


LOCALE_SCRIPT = """
import json, locale, sys
from pathlib import Path
from msm.errors import MSMError
from msm.eval.tasks.common import lines
out = {"encoding": locale.getpreferredencoding(False)}
for p in sys.argv[1:]:
    try:
        out[Path(p).name] = list(lines(Path(p), "fix"))
    except MSMError as exc:
        out[Path(p).name] = str(exc)
print(json.dumps(out, ensure_ascii=True))
"""


def test_lines_read_utf8_under_an_ascii_locale(tmp_path, run_under_ascii_locale):
    """Plain and .gz files are read as UTF-8 even when the locale says ASCII (LC_ALL=C, UTF-8 mode off)."""
    plain = write_lines(tmp_path / "p.tsv", ["東京\tTōkyō"])
    packed = write_lines(tmp_path / "p.tsv.gz", ["Москва\tMoskva"], gz=True)
    got = run_under_ascii_locale(LOCALE_SCRIPT, str(plain), str(packed))
    assert got["p.tsv"] == [[1, "東京\tTōkyō"]]
    assert got["p.tsv.gz"] == [[1, "Москва\tMoskva"]]


# ---------------------------------------------------------------- common.retrieve


def by_hand_top_k(passages: np.ndarray, ids: list[str], queries: np.ndarray, k: int) -> list[list[str]]:
    out = []
    for qv in queries:
        scores = [float(np.dot(qv, pv)) for pv in passages]
        order = sorted(range(len(ids)), key=lambda j: -scores[j])
        out.append([ids[j] for j in order[:k]])
    return out


def test_retrieve_encodes_passages_and_queries_with_their_kind_and_progress():
    """Passages as kind='passage', queries as kind='query', progress off by default and passed on when asked;
    the ranking is the inner-product top k computed by hand."""
    ptab = {"alpha": [1.0, 0.0, 0.0], "beta": [0.0, 1.0, 0.0], "gamma": [0.6, 0.0, 0.8]}
    qtab = {"first": [0.0, 0.2, 0.9], "second": [0.9, 0.3, 0.0]}
    passages, ids, queries = ["alpha text", "beta text", "gamma text"], ["a", "b", "g"], ["first q", "second q"]
    want = by_hand_top_k(np.array([ptab["alpha"], ptab["beta"], ptab["gamma"]]), ids,
                         np.array([qtab["first"], qtab["second"]]), 2)
    assert want == [["g", "b"], ["a", "g"]]
    enc = KindEncoder(ptab, qtab)
    assert common.retrieve(enc, passages, ids, queries, 2) == want
    assert enc.calls == [("passage", False), ("query", False)]
    enc = KindEncoder(ptab, qtab)
    assert common.retrieve(enc, passages, ids, queries, 2, show_progress=True) == want
    assert enc.calls == [("passage", True), ("query", True)]


# ---------------------------------------------------------------- XOR-Retrieve: reading the files


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


# ---------------------------------------------------------------- XOR-Retrieve: evaluate


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
