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
