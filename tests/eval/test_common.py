"""``msm.eval.tasks.common``: the release-file readers (lines, JSONL) and the shared retrieval, on hand-written files;
the task files read as UTF-8 under an ASCII locale."""

from __future__ import annotations


import re

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import common

from eval_fakes import KindEncoder, write_lines, write_xquad_paragraphs


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


def by_hand_top_k(passages: np.ndarray, ids: list[str], queries: np.ndarray, k: int) -> list[list[str]]:
    out = []
    for qv in queries:
        scores = [float(np.dot(qv, pv)) for pv in passages]
        order = sorted(range(len(ids)), key=lambda j: -scores[j])
        out.append([ids[j] for j in order[:k]])
    return out


TASKS_LOCALE_SCRIPT = """
import json, locale, sys
from pathlib import Path
from msm.eval.tasks import lareqa, tatoeba
folder = Path(sys.argv[1])
data = lareqa.load(folder / "xquad-r", ["en"])
src, eng = tatoeba.load_pairs(folder / "tatoeba", "fra")
print(json.dumps({"encoding": locale.getpreferredencoding(False), "question": data.questions[0][2],
                  "src": src, "eng": eng}, ensure_ascii=True))
"""


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


def test_lines_read_utf8_under_an_ascii_locale(tmp_path, run_under_ascii_locale):
    """Plain and .gz files are read as UTF-8 even when the locale says ASCII (LC_ALL=C, UTF-8 mode off)."""
    plain = write_lines(tmp_path / "p.tsv", ["東京\tTōkyō"])
    packed = write_lines(tmp_path / "p.tsv.gz", ["Москва\tMoskva"], gz=True)
    got = run_under_ascii_locale(LOCALE_SCRIPT, str(plain), str(packed))
    assert got["p.tsv"] == [[1, "東京\tTōkyō"]]
    assert got["p.tsv.gz"] == [[1, "Москва\tMoskva"]]


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


def test_task_files_are_read_as_utf8_under_an_ascii_locale(tmp_path, run_under_ascii_locale):
    """XQuAD-R JSON and Tatoeba text are UTF-8 whatever the locale (LC_ALL=C, UTF-8 mode off, in a subprocess:
    open() takes the locale's encoding in C code); Tatoeba lines come back as written, only the final newline
    dropped."""
    context = "Où est-il ? Ici."
    qas = [{"id": "q", "question": "Où ?", "answers": [{"answer_start": 0, "text": "Où"}]}]
    write_xquad_paragraphs(tmp_path / "xquad-r",
                           [{"context": context, "sentence_breaks": [[0, 12], [12, 16]], "qas": qas}])
    (tmp_path / "tatoeba").mkdir()
    (tmp_path / "tatoeba" / "tatoeba.fra-eng.fra").write_text("Ça va.\nÀ demain \n", "utf-8")
    (tmp_path / "tatoeba" / "tatoeba.fra-eng.eng").write_text("Fine.\nSee you\n", "utf-8")
    got = run_under_ascii_locale(TASKS_LOCALE_SCRIPT, str(tmp_path))
    assert got["question"] == "Où ?"
    assert got["src"] == ["Ça va.", "À demain "] and got["eng"] == ["Fine.", "See you"]
