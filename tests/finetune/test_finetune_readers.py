"""Each fine-tuning reader: a well-formed file gives the expected examples; a malformed one fails naming the file,
the line (or row) and the expected format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msm.errors import MSMError
from msm.finetune.config import FinetuneData
from msm.finetune.readers import read_examples

SQUAD = {"data": [{"title": "T", "paragraphs": [{
    "context": "Paris is in France. It has the Louvre. The Seine flows through it.",
    "qas": [{"id": "q1", "question": "Which museum is in Paris?", "answers": [{"text": "Louvre", "answer_start": 31}]},
            {"id": "q2", "question": "Which river?", "answers": [{"text": "Seine", "answer_start": 43}]}]}]}]}


def _read(path: Path, fmt: str, **kw) -> list[dict]:
    return read_examples(FinetuneData(format=fmt, path=str(path), **kw))


def _jsonl(path: Path, objs: list) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def test_squad_answer_sentence_with_and_without_context(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(SQUAD))
    ex = _read(path, "squad")
    context = SQUAD["data"][0]["paragraphs"][0]["context"]
    assert [(e["query"], e["positive"], e["context"]) for e in ex] == [
        ("Which museum is in Paris?", "It has the Louvre.", context),
        ("Which river?", "The Seine flows through it.", context)]
    assert [e["context"] for e in _read(path, "squad", with_context=False)] == ["", ""]
    given = json.loads(json.dumps(SQUAD))  # XQuAD-R style: the file's own sentence_breaks win
    given["data"][0]["paragraphs"][0]["sentence_breaks"] = [[0, 38], [39, 66]]
    path.write_text(json.dumps(given))
    assert _read(path, "squad")[0]["positive"] == "Paris is in France. It has the Louvre."


def test_squad_rejects_bad_json_and_structure(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n  {"title": "T",\n   "paragraphs": [}\n]}')
    with pytest.raises(MSMError, match=rf"{path}:3: not JSON .*expected SQuAD v1.1 JSON"):
        _read(path, "squad")
    broken = json.loads(json.dumps(SQUAD))
    del broken["data"][0]["paragraphs"][0]["qas"][1]["answers"]
    path.write_text(json.dumps(broken))
    with pytest.raises(MSMError, match=rf"{path}: data\[0\].paragraphs\[0\].qas\[1\]: KeyError: 'answers'"):
        _read(path, "squad")


def test_tevatron_first_positive_and_hard_negatives(tmp_path):
    good = {"query_id": "1", "query": "what is a dog", "positive_passages": [{"docid": "7", "title": "Dog",
            "text": "A dog is an animal."}], "negative_passages": [{"title": "", "text": "Cats purr."},
                                                                   {"title": "Car", "text": "A car drives."}]}
    path = _jsonl(tmp_path / "train.jsonl", [good])
    assert _read(path, "tevatron", hard_negatives=1) == [
        {"query": "what is a dog", "positive": "Dog A dog is an animal.", "context": "", "negatives": ["Cats purr."]}]
    _jsonl(path, [good, "", {"query": "q", "positive_passages": [], "negative_passages": []}])
    with pytest.raises(MSMError, match=rf"{path}:3: ValueError: positive_passages is empty; expected one JSON object"):
        _read(path, "tevatron")
    _jsonl(path, [good, '{"query": "q", "positive_passages": [{"text": "x"}]'])
    with pytest.raises(MSMError, match=rf"{path}:2: not JSON"):
        _read(path, "tevatron")


def test_pairs_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"query": "a", "positive": "b", "negative": "c"}, {"query": "d", "positive": "e", "negative": ["f", "g"]}]
    path = _jsonl(tmp_path / "p.jsonl", rows)
    assert [e["negatives"] for e in _read(path, "pairs", hard_negatives=1)] == [["c"], ["f"]]
    _jsonl(path, rows + [{"query": "h"}])
    with pytest.raises(MSMError, match=rf"{path}:3: missing key 'positive'; expected one JSON object"):
        _read(path, "pairs")
    table = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"query": "a", "positive": "b"}, {"query": "c", "positive": ""}]), table)
    with pytest.raises(MSMError, match=rf"{table}: row 2: ValueError: positive is empty"):
        _read(table, "pairs")
    pq.write_table(pa.Table.from_pylist([{"question": "a", "answer": "b"}]), table)
    with pytest.raises(MSMError, match=rf"{table}: no column positive, query"):
        _read(table, "pairs")


def test_mewsli_x_pairs_as_the_evaluation_builds_them(tmp_path):
    text = "Obama visited Paris. He met Macron."
    good = {"contextual_mention": {"mention": {"example_id": "m1", "entity_id": "Q90",
                                               "mention_span": {"start": 14, "end": 19, "text": "Paris"}},
                                   "context": {"language": "en", "text": text,
                                               "sentence_spans": [{"start": 0, "end": 20}, {"start": 21, "end": 35}]}},
            "entity": {"entity_id": "Q90", "title": "Paris", "description": "Paris is the capital of France. Big.",
                       "sentence_spans": [{"start": 0, "end": 31}]}}
    path = _jsonl(tmp_path / "wikipedia_pairs-train.jsonl", [good])
    assert _read(path, "mewsli_x") == [{"query": "Paris: Obama visited { Paris } .",
                                        "positive": "Paris is the capital of France.", "context": "", "negatives": []}]
    bad = json.loads(json.dumps(good))
    bad["contextual_mention"]["mention"]["mention_span"]["text"] = "London"
    _jsonl(path, [good, bad])
    with pytest.raises(MSMError, match=rf"{path}:2: ValueError: mention_span.text 'London'"):
        _read(path, "mewsli_x")


def test_missing_or_empty_input_names_the_fix(tmp_path):
    with pytest.raises(MSMError, match="no .jsonl / .json / .jsonl.gz file there"):
        _read(tmp_path, "tevatron")
    with pytest.raises(MSMError, match="data.path is empty"):
        read_examples(FinetuneData(format="pairs", path=""))


# ---- the parts, one promise at a time (issue 34) ----------------------------------------------------------------

import gzip  # noqa: E402

from msm.finetune import readers  # noqa: E402
from msm.finetune.readers import (FIX, _text, data_files, example, jsonl_examples, mewsli_example,  # noqa: E402
                                  pairs_example, parquet_examples, sentence_breaks, squad_examples,
                                  tevatron_example)


def _message(exc_info) -> str:
    return str(exc_info.value)


def test_example_copies_its_negatives_and_defaults_to_none():
    negs = ["n1", "n2"]
    ex = example("q", "p", "c", negs)
    negs.append("n3")
    assert ex == {"query": "q", "positive": "p", "context": "c", "negatives": ["n1", "n2"]}
    assert example("q", "p") == {"query": "q", "positive": "p", "context": "", "negatives": []}
    assert example("q", "p", negatives=("a",))["negatives"] == ["a"]


@pytest.mark.parametrize(("value", "message"), [
    ("", "query is empty, not a text"), ("  \n", "query is empty, not a text"), (None, "query is NoneType, not a text"),
    (3, "query is int, not a text"), (["a"], "query is list, not a text")])
def test_text_refuses_what_is_not_a_text(value, message):
    with pytest.raises(ValueError) as err:
        _text(value, "query")
    assert _message(err) == message


def test_text_strips():
    assert _text("  a b \n", "x") == "a b"


# ---- sentence breaks and SQuAD -----------------------------------------------------------------------------------

def test_sentence_breaks_are_consecutive_spans_found_left_to_right():
    context = "Go. Go. Stop now."  # a repeated sentence is found after the first, not on it
    assert sentence_breaks(context) == [(0, 3), (4, 7), (8, 17)]
    assert [context[s:e] for s, e in sentence_breaks(context)] == ["Go.", "Go.", "Stop now."]
    assert sentence_breaks("  Hello there.  Bye.\n\nAgain. ") == [(2, 14), (16, 20), (22, 28)]
    assert sentence_breaks("") == [(0, 0)]  # no sentence: the whole text
    assert sentence_breaks("   ") == [(0, 3)]


def test_sentence_breaks_use_the_language():
    context = "aaa bbb ccc ddd eee fff ggg hhh"  # Thai splits at spaces into pieces of >= 20 characters
    assert sentence_breaks(context, "th") == [(0, 23), (24, 31)]
    assert sentence_breaks(context, "en") == [(0, 31)]


def test_sentence_breaks_fall_back_to_the_next_stretch_when_a_piece_is_not_found(monkeypatch):
    monkeypatch.setattr(readers, "segment", lambda text, lang: ["Hello world.", "Bye  now!", "End."])
    # the second piece is not in the text (normalised): it takes the next 9 characters
    assert sentence_breaks("Hello world. Bye now! End.") == [(0, 12), (12, 21), (22, 26)]


def _squad(*articles) -> dict:
    return {"version": "1.1", "data": list(articles)}


def _article(title: str, *paragraphs) -> dict:
    return {"title": title, "paragraphs": list(paragraphs)}


def _para(context: str, *qas, breaks=None) -> dict:
    out = {"context": context, "qas": [{"question": q, "answers": [{"text": "x", "answer_start": s} for s in starts]}
                                       for q, *starts in qas]}
    if breaks is not None:
        out["sentence_breaks"] = breaks
    return out


PARIS = "Paris is in France. It has the Louvre. The Seine flows through it."


def test_squad_every_article_paragraph_and_question_in_order():
    raw = _squad(_article("A", _para(PARIS, ("q1", 0), ("q2", 20, 0)), _para("One. Two.", ("q3", 5))),
                 _article("B", _para("Three. Four.", ("q4", 7), ("q5", 0, 7))))
    got = list(squad_examples(json.dumps(raw), "f.json"))
    assert got == [
        {"query": "q1", "positive": "Paris is in France.", "context": PARIS, "negatives": []},
        {"query": "q2", "positive": "It has the Louvre.", "context": PARIS, "negatives": []},  # the first answer
        {"query": "q3", "positive": "Two.", "context": "One. Two.", "negatives": []},
        {"query": "q4", "positive": "Four.", "context": "Three. Four.", "negatives": []},
        {"query": "q5", "positive": "Three.", "context": "Three. Four.", "negatives": []}]
    assert list(squad_examples(json.dumps(raw).encode("utf-8"), "f.json")) == got  # bytes as read from a file
    assert [e["context"] for e in squad_examples(json.dumps(raw), "f.json", with_context=False)] == [""] * 5
    assert [e["query"] for e in squad_examples(json.dumps(raw), "f.json", articles={"B"})] == ["q4", "q5"]
    assert list(squad_examples(json.dumps(raw), "f.json", articles=set())) == []
    assert len(list(squad_examples(json.dumps(raw), "f.json", articles=None))) == 5


@pytest.mark.parametrize(("start", "positive"), [(0, "One two."), (7, "One two."), (9, "Three."), (14, "Three."),
                                                 (16, "Four five."), (25, "Four five.")])
def test_squad_answer_start_belongs_to_the_sentence_holding_it(start, positive):
    raw = _squad(_article("A", _para("One two. Three. Four five.", ("q", start))))
    assert [e["positive"] for e in squad_examples(json.dumps(raw), "f.json")] == [positive]


@pytest.mark.parametrize("start", [8, 15, 26, 99])
def test_squad_answer_start_between_or_after_sentences_is_an_error(start):
    raw = _squad(_article("A", _para("One two. Three. Four five.", ("q", start))))
    with pytest.raises(MSMError) as err:
        list(squad_examples(json.dumps(raw), "f.json"))
    assert _message(err) == (f"f.json: data[0].paragraphs[0].qas[0]: ValueError: answer_start {start} lies in no "
                             f"sentence of the context; {FIX['squad']}")


def test_squad_given_sentence_breaks_win_and_the_sentence_is_stripped():
    context = "  Alpha beta.   Gamma delta. "
    raw = _squad(_article("A", _para(context, ("q", "16"), breaks=[[0, 14], [14, 29]])))
    assert list(squad_examples(json.dumps(raw), "f.json")) == [
        {"query": "q", "positive": "Gamma delta.", "context": "Alpha beta.   Gamma delta.", "negatives": []}]


def test_squad_splits_paragraphs_in_the_configured_language(tmp_path):
    context = "aaa bbb ccc ddd eee fff ggg hhh"
    path = tmp_path / "th.json"
    path.write_text(json.dumps(_squad(_article("A", _para(context, ("q", 24))))))
    assert [e["positive"] for e in squad_examples(path.read_bytes(), str(path), language="th")] == ["ggg hhh"]
    assert [e["positive"] for e in _read(path, "squad", language="th")] == ["ggg hhh"]
    assert [e["positive"] for e in _read(path, "squad")] == [context]


@pytest.mark.parametrize(("raw", "where", "error"), [
    ({"version": "1.1"}, "data", "KeyError: 'data'"),
    ({"data": {"title": "T"}}, "data", "TypeError: 'data' is not a list"),
    ([1, 2], "data", "TypeError: list indices must be integers or slices, not str"),
    (_squad(_article("A", _para("One.", ("q", 0))), {"title": "B"}), "data[1]", "KeyError: 'paragraphs'"),
    (_squad(_article("A", _para("One.", ("q", 0)), {"qas": []})), "data[0].paragraphs[1]", "KeyError: 'context'"),
    (_squad(_article("A", _para("  ", ("q", 0)))), "data[0].paragraphs[0]", "ValueError: context is empty, not a text"),
    (_squad(_article("A", _para("One.", ("q", 0), ("", 0)))), "data[0].paragraphs[0].qas[1]",
     "ValueError: question is empty, not a text"),
    (_squad(_article("A", _para("One.", ("q",)))), "data[0].paragraphs[0].qas[0]",
     "IndexError: list index out of range"),
    (_squad(_article("A", _para("One.", ("q", "one")))), "data[0].paragraphs[0].qas[0]",
     "ValueError: invalid literal for int() with base 10: 'one'"),
])
def test_squad_a_broken_structure_names_where(raw, where, error):
    with pytest.raises(MSMError) as err:
        list(squad_examples(json.dumps(raw), "in/x.json"))
    assert _message(err) == f"in/x.json: {where}: {error}; {FIX['squad']}"


def test_squad_an_article_that_is_not_an_object_fails_under_a_split():
    with pytest.raises(MSMError) as err:
        list(squad_examples(json.dumps({"data": ["oops"]}), "x.json", articles={"T"}))
    assert _message(err) == f"x.json: data[0]: AttributeError: 'str' object has no attribute 'get'; {FIX['squad']}"


def test_squad_not_utf8_or_not_json_names_the_byte_or_line():
    with pytest.raises(MSMError) as err:
        list(squad_examples(b'{"data": "ab\xff"}', "x.json"))
    assert _message(err) == f"x.json: byte 12: not UTF-8; {FIX['squad']}"
    with pytest.raises(MSMError) as err:
        list(squad_examples('{\n\n "data": [,]}', "x.json"))
    assert _message(err) == f"x.json:3: not JSON (Expecting value, column 11); {FIX['squad']}"


# ---- one JSON object a line ------------------------------------------------------------------------------------

def test_tevatron_titles_negatives_and_the_first_positive():
    obj = {"query": " q ", "positive_passages": [{"title": " Dog ", "text": " barks "}, {"title": "", "text": "no"}],
           "negative_passages": [{"title": None, "text": "n1"}, {"text": "n2"}, {"title": "  ", "text": "n3"},
                                 {"text": ""}]}
    assert tevatron_example(obj, 3) == {"query": "q", "positive": "Dog barks", "context": "",
                                        "negatives": ["n1", "n2", "n3"]}
    assert tevatron_example(obj, 0)["negatives"] == []  # only the first hard_negatives are read (the 4th is bad)
    with pytest.raises(ValueError, match="^passage text is empty, not a text$"):
        tevatron_example(obj, 4)
    assert tevatron_example({"query": "q", "positive_passages": [{"text": "p"}]}, 2)["negatives"] == []
    assert tevatron_example({"query": "q", "positive_passages": [{"text": "p"}], "negative_passages": None},
                            2)["negatives"] == []


@pytest.mark.parametrize("positives", [[], {"text": "p"}, "p"])
def test_tevatron_positive_passages_must_be_a_non_empty_list(positives):
    with pytest.raises(ValueError) as err:
        tevatron_example({"query": "q", "positive_passages": positives}, 0)
    assert _message(err) == "positive_passages is empty"


def test_pairs_negatives_as_text_list_or_none():
    assert pairs_example({"query": " a ", "positive": "b "}, 2) == {"query": "a", "positive": "b", "context": "",
                                                                     "negatives": []}
    assert pairs_example({"query": "a", "positive": "b", "negative": None}, 2)["negatives"] == []
    assert pairs_example({"query": "a", "positive": "b", "negative": " c "}, 2)["negatives"] == ["c"]
    assert pairs_example({"query": "a", "positive": "b", "negative": ["c", "d", "e", ""]}, 3)["negatives"] == [
        "c", "d", "e"]  # the fourth (empty) is past hard_negatives: not read
    assert pairs_example({"query": "a", "positive": "b", "negative": ("c", "d")}, 0)["negatives"] == []
    with pytest.raises(ValueError, match="^negative is empty, not a text$"):
        pairs_example({"query": "a", "positive": "b", "negative": ["c", " "]}, 2)
    with pytest.raises(ValueError, match="^positive is int, not a text$"):
        pairs_example({"query": "a", "positive": 5}, 0)


@pytest.mark.parametrize("query", ["", " ", None, 7])
def test_a_bad_query_is_named_in_every_line_format(query):
    what = "empty" if isinstance(query, str) else type(query).__name__
    with pytest.raises(ValueError) as err:
        pairs_example({"query": query, "positive": "p"}, 0)
    assert _message(err) == f"query is {what}, not a text"
    with pytest.raises(ValueError) as err:
        tevatron_example({"query": query, "positive_passages": [{"text": "p"}]}, 0)
    assert _message(err) == f"query is {what}, not a text"


def _mewsli(text, start, end, sentences, description, desc_spans=None) -> dict:
    entity = {"description": description}
    if desc_spans is not None:
        entity["sentence_spans"] = [{"start": s, "end": e} for s, e in desc_spans]
    return {"contextual_mention": {"mention": {"mention_span": {"start": start, "end": end,
                                                                "text": text[start:end]}},
                                   "context": {"text": text,
                                               "sentence_spans": [{"start": s, "end": e} for s, e in sentences]}},
            "entity": entity}


def test_mewsli_description_sentences_joined_or_the_whole_description():
    text = "He met Macron in Paris."
    obj = _mewsli(text, 7, 13, [(0, 23)], "Emmanuel Macron. French president. Born 1977.", [(0, 16), (17, 34)])
    assert mewsli_example(obj) == {"query": "Macron: He met { Macron } in Paris.",
                                   "positive": "Emmanuel Macron. French president.", "context": "", "negatives": []}
    no_spans = _mewsli(text, 7, 13, [(0, 23)], "A  French\npolitician.")
    assert mewsli_example(no_spans, 3)["positive"] == "A French politician."  # normalised, negatives none
    empty_spans = _mewsli(text, 7, 13, [(0, 23)], "Short.", [(0, 0)])
    assert mewsli_example(empty_spans)["positive"] == "Short."


def test_mewsli_a_mention_across_sentences_or_an_empty_description_fails():
    text = "He met Macron. In Paris."
    with pytest.raises(ValueError, match="^the mention lies in no single sentence_span$"):
        mewsli_example(_mewsli(text, 7, 18, [(0, 14), (15, 24)], "x"))
    with pytest.raises(ValueError, match="^entity description is empty, not a text$"):
        mewsli_example(_mewsli(text, 7, 13, [(0, 14)], "  "))


def test_jsonl_lines_as_bytes_or_text_skip_blank_lines_and_count_them():
    good = json.dumps({"query": "q", "positive": "p", "negative": ["n1", "n2", "n3"]})
    lines = [good.encode(), b"", b"  \r", good, "\t"]
    assert list(jsonl_examples(lines, "f.jsonl", "pairs", 2)) == [
        {"query": "q", "positive": "p", "context": "", "negatives": ["n1", "n2"]}] * 2
    assert list(jsonl_examples([good], "f.jsonl", "pairs"))[0]["negatives"] == []  # hard_negatives defaults to 0
    assert list(jsonl_examples([], "f.jsonl", "pairs")) == []
    with pytest.raises(MSMError) as err:
        list(jsonl_examples(lines + [b'{"query": "q"}'], "f.jsonl", "pairs"))
    assert _message(err) == f"f.jsonl:6: missing key 'positive'; {FIX['pairs']}"


@pytest.mark.parametrize(("line", "what"), [
    ("[1, 2]", "TypeError: a JSON list, not an object"), ("3", "TypeError: a JSON int, not an object"),
    ('"text"', "TypeError: a JSON str, not an object"),
    ('{"query": "q", "positive_passages": [{"text": ""}]}', "ValueError: passage text is empty, not a text"),
    ('{"query": "q", "positive_passages": ["p"]}', "AttributeError: 'str' object has no attribute 'get'"),
    ('{"query": "q", "positive_passages": [{"title": "t"}]}', "missing key 'text'"),
])
def test_jsonl_a_bad_record_names_path_line_and_fix(line, what):
    good = json.dumps({"query": "q", "positive_passages": [{"text": "p"}]})
    with pytest.raises(MSMError) as err:
        list(jsonl_examples([good, "", line], "d/t.jsonl", "tevatron"))
    assert _message(err) == f"d/t.jsonl:3: {what}; {FIX['tevatron']}"


def test_jsonl_not_utf8_or_not_json():
    with pytest.raises(MSMError) as err:
        list(jsonl_examples([b"", b'{"a\xff": 1}'], "m.jsonl", "mewsli_x"))
    assert _message(err) == f"m.jsonl:2: byte 3: not UTF-8; {FIX['mewsli_x']}"
    with pytest.raises(MSMError) as err:
        list(jsonl_examples(['{"query": "q", "positive": "p"}', '{"query": }'], "p.jsonl", "pairs"))
    assert _message(err) == f"p.jsonl:2: not JSON (Expecting value, column 11); {FIX['pairs']}"


def test_every_fix_names_the_format_keys():
    assert all(k in FIX["squad"] for k in ('"data"', '"paragraphs"', '"context"', '"qas"', '"question"', '"answers"'))
    assert all(k in FIX["tevatron"] for k in ('"query"', '"positive_passages"', '"negative_passages"'))
    assert all(k in FIX["pairs"] for k in ('"query"', '"positive"', '"negative"', "Parquet"))
    assert all(k in FIX["mewsli_x"] for k in ('"contextual_mention"', '"mention_span"', '"sentence_spans"'))


# ---- Parquet ---------------------------------------------------------------------------------------------------

def _parquet(path: Path, rows: list[dict], schema=None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_parquet_rows_across_batches_and_negatives(tmp_path):
    rows = [{"query": f"q{i}", "positive": f"p{i}", "negative": [f"n{i}", f"m{i}", f"o{i}"] if i % 2 else None}
            for i in range(5)]
    path = _parquet(tmp_path / "p.parquet", rows)
    got = list(parquet_examples(str(path), str(path), hard_negatives=2, batch_rows=2))
    assert got == [{"query": f"q{i}", "positive": f"p{i}", "context": "",
                    "negatives": [f"n{i}", f"m{i}"] if i % 2 else []} for i in range(5)]
    assert list(parquet_examples(str(path), str(path))) == [dict(e, negatives=[]) for e in got]


def test_parquet_a_bad_row_is_counted_across_batches(tmp_path):
    rows = [{"query": f"q{i}", "positive": "" if i == 3 else f"p{i}"} for i in range(5)]
    path = _parquet(tmp_path / "p.parquet", rows)
    with pytest.raises(MSMError) as err:
        list(parquet_examples(str(path), "shown.parquet", batch_rows=2))
    assert _message(err) == f"shown.parquet: row 4: ValueError: positive is empty, not a text; {FIX['pairs']}"
    path = _parquet(tmp_path / "n.parquet", [{"query": "q", "positive": "p", "negative": 5}])
    with pytest.raises(MSMError) as err:
        list(parquet_examples(str(path), "n.parquet", hard_negatives=1))
    assert _message(err) == f"n.parquet: row 1: TypeError: 'int' object is not iterable; {FIX['pairs']}"


def test_parquet_missing_columns_and_unreadable_files(tmp_path):
    path = _parquet(tmp_path / "c.parquet", [{"question": "a", "answer": "b"}])
    with pytest.raises(MSMError) as err:
        list(parquet_examples(str(path), "c.parquet"))
    assert _message(err) == f"c.parquet: no column positive, query (columns: question, answer); {FIX['pairs']}"
    path = _parquet(tmp_path / "d.parquet", [{"query": "a", "text": "b"}])
    with pytest.raises(MSMError) as err:
        list(parquet_examples(str(path), "d.parquet"))
    assert _message(err) == f"d.parquet: no column positive (columns: query, text); {FIX['pairs']}"
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(MSMError) as err:
        list(parquet_examples(str(junk), "junk.parquet"))
    assert _message(err).startswith("junk.parquet: not a readable Parquet file (")
    assert _message(err).endswith(f"); {FIX['pairs']}")


# ---- files ------------------------------------------------------------------------------------------------------

def test_data_files_a_file_a_folder_recursively_sorted_by_suffix(tmp_path, monkeypatch):
    for name in ("b.jsonl", "a.json", "sub/c.jsonl.gz", "sub/d.parquet", "e.txt", "f.jsonl.bak"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert data_files(str(tmp_path), "tevatron") == [str(tmp_path / n) for n in ("a.json", "b.jsonl",
                                                                                   "sub/c.jsonl.gz")]
    assert data_files(str(tmp_path), "pairs") == [str(tmp_path / "b.jsonl"), str(tmp_path / "sub/d.parquet")]
    assert data_files(str(tmp_path), "squad") == [str(tmp_path / "a.json")]
    assert data_files(f"file://{tmp_path}", "mewsli_x") == [str(tmp_path / "b.jsonl")]
    monkeypatch.chdir(tmp_path)
    assert data_files("e.txt", "pairs") == [str(tmp_path / "e.txt")]  # a file is read as given, whatever its name


def test_data_files_nothing_to_read_names_the_fix(tmp_path):
    with pytest.raises(MSMError) as err:
        data_files("", "pairs")
    assert _message(err) == "data.path is empty; set it to a file or folder of the data.format files"
    with pytest.raises(MSMError) as err:
        data_files(str(tmp_path / "nope"), "tevatron")
    assert _message(err) == (f"data.path {tmp_path / 'nope'}: does not exist; point it at a .jsonl / .json / "
                             ".jsonl.gz file or a folder of them (data.format tevatron)")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(MSMError) as err:
        data_files(str(tmp_path), "pairs")
    assert _message(err) == (f"{tmp_path}: no .jsonl / .parquet file there (data.format pairs); point data.path at a "
                             "file or a folder of them")


def test_read_examples_every_file_in_order_and_max_examples_across_files(tmp_path):
    _jsonl(tmp_path / "b.jsonl", [{"query": "b1", "positive": "x"}, {"query": "b2", "positive": "y"}])
    _jsonl(tmp_path / "a.jsonl", [{"query": "a1", "positive": "z"}, "", {"query": "a2", "positive": "w"}])
    (tmp_path / "c").mkdir()
    _parquet(tmp_path / "c" / "c.parquet", [{"query": "c1", "positive": "v", "negative": ["n"]}])
    assert [e["query"] for e in _read(tmp_path, "pairs")] == ["a1", "a2", "b1", "b2", "c1"]
    assert _read(tmp_path, "pairs", hard_negatives=1)[-1]["negatives"] == ["n"]
    for limit, expected in ((1, ["a1"]), (2, ["a1", "a2"]), (3, ["a1", "a2", "b1"]), (5, ["a1", "a2", "b1", "b2",
                                                                                          "c1"]),
                            (9, ["a1", "a2", "b1", "b2", "c1"])):
        assert [e["query"] for e in _read(tmp_path, "pairs", max_examples=limit)] == expected


def test_read_examples_passes_hard_negatives_to_parquet(tmp_path):
    path = _parquet(tmp_path / "p.parquet", [{"query": "q", "positive": "p", "negative": ["n1", "n2", "n3"]}] * 2)
    assert [e["negatives"] for e in _read(path, "pairs", hard_negatives=2)] == [["n1", "n2"]] * 2
    assert [e["negatives"] for e in _read(path, "pairs")] == [[], []]


def test_read_examples_reads_through_the_filesystem_of_data_path(tmp_path, monkeypatch):
    import msm.uri

    path = _jsonl(tmp_path / "a.jsonl", [{"query": "q", "positive": "p"}])
    real, calls = msm.uri.resolve, []

    def resolve(p):
        calls.append(p)
        return real(p)

    monkeypatch.setattr(msm.uri, "resolve", resolve)
    assert _read(path, "pairs")[0]["query"] == "q"
    assert calls and all(p == str(path) for p in calls)


def test_only_gzip_is_decompressed(tmp_path):
    """A .jsonl.gz is read through gzip; any other compressed file named directly is read as it is, and fails
    naming the file and the line."""
    import bz2

    line = json.dumps({"query": "q", "positive_passages": [{"text": "p"}]}) + "\n"
    path = tmp_path / "t.jsonl.bz2"
    path.write_bytes(bz2.compress(line.encode()))
    with pytest.raises(MSMError) as err:
        _read(path, "tevatron")
    assert _message(err).startswith(f"{path}:1: ")
    assert _message(err).endswith(FIX["tevatron"])


def test_read_examples_gzip_jsonl(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    lines = [{"query": "q", "positive_passages": [{"title": "T", "text": "p"}],
              "negative_passages": [{"text": "n1"}, {"text": "n2"}]}]
    path.write_bytes(gzip.compress("".join(json.dumps(o) + "\n" for o in lines).encode()))
    assert _read(path, "tevatron", hard_negatives=2) == [
        {"query": "q", "positive": "T p", "context": "", "negatives": ["n1", "n2"]}]


def test_read_examples_an_empty_file_names_the_format(tmp_path):
    path = _jsonl(tmp_path / "e.jsonl", ["", "  "])
    with pytest.raises(MSMError) as err:
        _read(path, "pairs")
    assert _message(err) == f"{path}: no training example found (data.format pairs); {FIX['pairs']}"
    squad = tmp_path / "s.json"
    squad.write_text(json.dumps({"data": []}))
    with pytest.raises(MSMError) as err:
        _read(squad, "squad")
    assert _message(err) == f"{squad}: no training example found (data.format squad); {FIX['squad']}"
