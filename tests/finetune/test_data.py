"""``msm.finetune.data``: examples → training rows, duplicate removal, the Ray batches and the Ray read graph.

Every expectation is written by hand or by a second, straightforward implementation from the docstrings (the
``_reference_*`` helpers below); none is an output of the code under test. Nothing here starts Ray: the Ray Data
datasource is built with ``FileBasedDatasource.__init__`` recorded, and ``read_datasource`` is a recorder
(``_no_ray_started`` checks it at the end of each test that imports Ray).
"""

from __future__ import annotations

import gzip
import inspect
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msm.errors import MSMError
from msm.finetune import data
from msm.finetune.config import FinetuneConfig, FinetuneData, FinetuneTrain
from msm.finetune.data import (EXAMPLE, RayBatches, _FsFile, columns, dedupe, hf_dataset, ray_batch_size,
                               rows_from_examples, to_row, uses_context)
from msm.runtime import DATA_CPUS


def _cfg(path: str = "train.jsonl", batch_size: int = 4, seed: int = 0, **data_kw) -> FinetuneConfig:
    return FinetuneConfig(data=FinetuneData(path=path, **data_kw),
                          train=FinetuneTrain(batch_size=batch_size, seed=seed))


def _ex(query: str, positive: str, context: str = "", negatives=()) -> dict:
    return {"query": query, "positive": positive, "context": context, "negatives": list(negatives)}


def _jsonl(path: Path, objs: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


# ---- reference implementations, written from the docstrings ----------------------------------------------------

def _reference_row(ex: dict, with_context: bool, k: int) -> dict | None:
    """anchor = query; positive = the text, or [text, context]; negative_i = the i-th hard negative (1-based)."""
    if len(ex["negatives"]) < k:
        return None
    out = {"anchor": ex["query"]}
    out["positive"] = [ex["positive"], ex["context"]] if with_context else ex["positive"]
    out.update({"negative_%d" % (i + 1): ex["negatives"][i] for i in range(k)})
    return out


def _texts(row: dict) -> list:
    return [tuple(v) if isinstance(v, list) else v for v in row.values()]


def _reference_dedupe(rows: list[dict]) -> list[dict]:
    """A row is kept when none of its texts is a text of a row kept before it (a pair positive is one text)."""
    kept: list[dict] = []
    for row in rows:
        if not any(t in _texts(earlier) for earlier in kept for t in _texts(row)):
            kept.append(row)
    return kept


# ---- columns, rows, context ------------------------------------------------------------------------------------

def test_columns_name_one_negative_column_per_hard_negative():
    assert columns(_cfg()) == ["anchor", "positive"]
    assert columns(_cfg(hard_negatives=1)) == ["anchor", "positive", "negative_1"]
    assert columns(_cfg(hard_negatives=3)) == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]


def test_to_row_takes_the_first_hard_negatives_and_keeps_query_and_positive_apart():
    ex = _ex("the query", "the positive", "the paragraph", ["n1", "n2", "n3"])
    assert to_row(ex, False, 0) == {"anchor": "the query", "positive": "the positive"}
    assert to_row(ex, False, 2) == {"anchor": "the query", "positive": "the positive", "negative_1": "n1",
                                    "negative_2": "n2"}
    assert to_row(ex, True, 3) == {"anchor": "the query", "positive": ["the positive", "the paragraph"],
                                   "negative_1": "n1", "negative_2": "n2", "negative_3": "n3"}
    assert to_row(ex, True, 4) is None  # three negatives, four asked for
    assert to_row(_ex("q", "p"), False, 1) is None
    assert to_row(_ex("q", "p"), True, 0) == {"anchor": "q", "positive": ["p", ""]}


@pytest.mark.parametrize(("fmt", "with_context", "expected"), [
    ("squad", True, True), ("squad", False, False), ("pairs", True, False), ("tevatron", True, False),
    ("mewsli_x", True, False), ("pairs", False, False)])
def test_uses_context_only_for_squad_with_context(fmt, with_context, expected):
    assert uses_context(_cfg(format=fmt, with_context=with_context)) is expected


@settings(max_examples=50, deadline=None)
@given(negs=st.lists(st.integers(0, 4), min_size=0, max_size=12), k=st.integers(0, 3), squad=st.booleans(),
       with_context=st.booleans())
def test_rows_from_examples_keeps_exactly_the_examples_with_enough_negatives(negs, k, squad, with_context):
    """input = kept + dropped over random mixes; kept rows in input order; the dropped count in the warning."""
    examples = [_ex(f"q{i}", f"p{i}", f"c{i}", [f"n{i}.{j}" for j in range(n)]) for i, n in enumerate(negs)]
    cfg = _cfg(path="some/train.json", format="squad" if squad else "pairs", with_context=with_context,
               hard_negatives=k)
    ctx = squad and with_context
    expected = [r for r in (_reference_row(ex, ctx, k) for ex in examples) if r is not None]
    dropped = len(examples) - len(expected)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("msm.finetune.data")
    logger.addHandler(handler)
    try:
        if len(expected) < 2:
            with pytest.raises(MSMError) as err:
                rows_from_examples(examples, cfg)
            assert str(err.value) == (f"some/train.json: {len(expected)} usable example(s); in-batch negatives "
                                      "need at least 2")
        else:
            rows = rows_from_examples(examples, cfg)
            assert rows == expected
            assert len(rows) + dropped == len(examples)
    finally:
        logger.removeHandler(handler)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    if dropped:
        assert warnings == [f"dropped {dropped} of {len(examples)} examples with fewer than {k} hard negatives"]
    else:
        assert warnings == []


def test_rows_from_examples_at_the_two_row_boundary(caplog):
    two = [_ex("a", "x", negatives=["n", "m"]), _ex("b", "y", negatives=["o", "p"])]
    with caplog.at_level(logging.WARNING, logger="msm.finetune.data"):
        rows = rows_from_examples(two, _cfg(hard_negatives=2))
    assert rows == [{"anchor": "a", "positive": "x", "negative_1": "n", "negative_2": "m"},
                    {"anchor": "b", "positive": "y", "negative_1": "o", "negative_2": "p"}]
    assert caplog.records == []  # nothing dropped, nothing said
    with pytest.raises(MSMError) as err:
        rows_from_examples(two[:1] + [_ex("c", "z", negatives=["only one"])], _cfg(path="d", hard_negatives=2))
    assert str(err.value) == "d: 1 usable example(s); in-batch negatives need at least 2"
    with pytest.raises(MSMError) as err:
        rows_from_examples([], _cfg(path="e"))
    assert str(err.value) == "e: 0 usable example(s); in-batch negatives need at least 2"


def test_max_examples_counts_examples_read_before_rows_are_dropped(tmp_path, caplog):
    """max_examples x hard_negatives x a second file: the limit takes the first N examples of the files in order;
    the rows are those of them with enough negatives."""
    from msm.finetune.readers import read_examples

    _jsonl(tmp_path / "a.jsonl", [{"query": "a1", "positive": "x1", "negative": ["n1", "n2", "n3"]},
                                  {"query": "a2", "positive": "x2", "negative": "only"},
                                  {"query": "a3", "positive": "x3", "negative": ["n4", "n5"]}])
    _jsonl(tmp_path / "b.jsonl", [{"query": "b1", "positive": "y1", "negative": ["n6", "n7"]},
                                  {"query": "b2", "positive": "y2", "negative": ["n8", "n9"]}])
    cfg = _cfg(path=str(tmp_path), format="pairs", hard_negatives=2, max_examples=4)
    with caplog.at_level(logging.WARNING, logger="msm.finetune.data"):
        rows = rows_from_examples(read_examples(cfg.data), cfg)
    assert rows == [{"anchor": "a1", "positive": "x1", "negative_1": "n1", "negative_2": "n2"},
                    {"anchor": "a3", "positive": "x3", "negative_1": "n4", "negative_2": "n5"},
                    {"anchor": "b1", "positive": "y1", "negative_1": "n6", "negative_2": "n7"}]
    assert [r.getMessage() for r in caplog.records] == ["dropped 1 of 4 examples with fewer than 2 hard negatives"]


def test_hf_dataset_holds_the_rows_column_by_column():
    rows = [{"anchor": "a", "positive": ["s1", "c1"], "negative_1": "n1"},
            {"anchor": "b", "positive": ["s2", "c2"], "negative_1": "n2"}]
    ds = hf_dataset(rows)
    assert ds.column_names == ["anchor", "positive", "negative_1"]
    assert ds.num_rows == 2 and ds.to_list() == rows


# ---- dedupe ----------------------------------------------------------------------------------------------------

def test_dedupe_drops_rows_sharing_any_text_with_an_earlier_kept_row():
    rows = [{"anchor": "q1", "positive": "p1"},
            {"anchor": "q2", "positive": "p1"},  # shares p1 with row 0: dropped
            {"anchor": "q3", "positive": "p3"},
            {"anchor": "p3", "positive": "p4"},  # its query is row 2's positive: dropped
            {"anchor": "q5", "positive": "q2"},  # shares q2 only with a dropped row: kept
            {"anchor": "q1", "positive": "p6"}]  # shares q1 with row 0 (seen across rows, not only the last)
    assert dedupe(rows) == [rows[0], rows[2], rows[4]]
    assert dedupe([]) == []


def test_dedupe_keeps_rows_that_differ_in_one_field_of_a_pair():
    """A [sentence, context] positive is one text: the same sentence in two paragraphs is two texts."""
    rows = [{"anchor": "q1", "positive": ["s", "para one"], "negative_1": "n1"},
            {"anchor": "q2", "positive": ["s", "para two"], "negative_1": "n2"},  # same sentence, other paragraph
            {"anchor": "q3", "positive": ["s2", "para one"], "negative_1": "n3"},  # same paragraph, other sentence
            {"anchor": "q4", "positive": ["s", "para one"], "negative_1": "n4"},  # the same pair again: dropped
            {"anchor": "q5", "positive": ["t", "u"], "negative_1": "n1"},  # a negative seen before: dropped
            {"anchor": "q6", "positive": ["ab", "c"], "negative_1": "n6"},
            {"anchor": "q7", "positive": ["a", "bc"], "negative_1": "n7"}]  # same letters, other split
    assert dedupe(rows) == [rows[0], rows[1], rows[2], rows[5], rows[6]]


def test_dedupe_a_pair_is_not_its_sentence_and_context_run_together():
    rows = [{"anchor": "q1", "positive": ["s", "c"]}, {"anchor": "sc", "positive": "p2"},
            {"anchor": "q3", "positive": "s"}, {"anchor": "q4", "positive": "c"}]
    assert dedupe(rows) == rows  # "sc", "s" and "c" are three texts, none of them the pair ("s", "c")


def test_dedupe_keeps_a_row_whose_own_fields_repeat():
    rows = [{"anchor": "x", "positive": "x", "negative_1": "x"}, {"anchor": "y", "positive": "z"}]
    assert dedupe(rows) == rows


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdefgh"), st.sampled_from("ghij"),
                          st.booleans()), max_size=10))
def test_dedupe_matches_the_reference(items):
    rows = [{"anchor": q, "positive": [p, c] if pair else p, "negative_1": q + p} for q, p, c, pair in items]
    kept = dedupe(rows)
    assert kept == _reference_dedupe(rows)
    assert all(any(k is r for r in rows) for k in kept)  # the rows themselves


# ---- RayBatches ------------------------------------------------------------------------------------------------

def _ray_batch(examples: list[dict]) -> dict:
    """A batch as Ray Data hands it to ``collate_fn``: numpy columns, negatives an object array of arrays."""
    negatives = np.empty(len(examples), dtype=object)
    for i, ex in enumerate(examples):
        negatives[i] = np.array(ex["negatives"], dtype=object)
    return {"query": np.array([ex["query"] for ex in examples]), "positive": np.array([ex["positive"] for ex in
                                                                                      examples]),
            "context": np.array([ex["context"] for ex in examples]), "negatives": negatives}


def _reference_batch(examples, size, with_context, k, drop_duplicates):
    rows = [r for r in (_reference_row(ex, with_context, k) for ex in examples) if r is not None]
    keep = _reference_dedupe(rows) if drop_duplicates else list(rows)
    for r in rows:  # refill from the dropped rows, in batch order
        if len(keep) >= size:
            break
        if not any(r is x for x in keep):
            keep.append(r)
    return keep[:size]


def test_ray_batches_take_k_hard_negatives_and_context_pairs():
    cfg = _cfg(format="squad", with_context=True, hard_negatives=2, batch_size=3)
    seen = []
    collate = RayBatches(lambda rows: seen.append(rows) or {"features": len(rows)}, cfg)
    examples = [_ex("q1", "s1", "c1", ["a", "b", "c"]), _ex("q2", "s2", "c2", ["d"]),  # one negative: dropped
                _ex("q3", "s3", "c3", ["e", "f"]), _ex("q4", "s4", "c4", ["g", "h"])]
    assert collate(_ray_batch(examples)) == {"features": 3}
    assert seen == [[{"anchor": "q1", "positive": ["s1", "c1"], "negative_1": "a", "negative_2": "b"},
                     {"anchor": "q3", "positive": ["s3", "c3"], "negative_1": "e", "negative_2": "f"},
                     {"anchor": "q4", "positive": ["s4", "c4"], "negative_1": "g", "negative_2": "h"}]]
    texts = [v for r in seen[0] for v in r.values()]
    assert all(type(t) is str for v in texts for t in (v if isinstance(v, list) else [v]))  # plain str, not numpy


def test_ray_batches_without_context_and_without_dedupe():
    cfg = _cfg(format="pairs", hard_negatives=1, batch_size=2, dedupe=False)
    collate = RayBatches(lambda rows: rows, cfg)
    examples = [_ex("q", "p", "", ["n"]), _ex("q", "p", "", ["n"]), _ex("r", "s", "", ["t"])]
    assert collate(_ray_batch(examples)) == [{"anchor": "q", "positive": "p", "negative_1": "n"}] * 2


def test_ray_batches_drop_duplicates_then_refill_in_order():
    cfg = _cfg(format="pairs", batch_size=4)
    collate = RayBatches(lambda rows: rows, cfg)
    examples = [_ex("a", "x"), _ex("b", "x"), _ex("c", "y"), _ex("d", "x"), _ex("e", "y")]
    # kept a, c; refilled with b, d (the first dropped rows); e left out
    assert [r["anchor"] for r in collate(_ray_batch(examples))] == ["a", "c", "b", "d"]
    examples = [_ex("a", "x"), _ex("b", "y"), _ex("c", "z"), _ex("d", "w"), _ex("e", "v")]
    assert [r["anchor"] for r in collate(_ray_batch(examples))] == ["a", "b", "c", "d"]  # cut to batch_size
    assert [r["anchor"] for r in collate(_ray_batch(examples[:3]))] == ["a", "b", "c"]  # a short last batch


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from("vwxyz"), st.integers(0, 3)),
                      min_size=0, max_size=12),
       size=st.integers(2, 6), k=st.integers(0, 2), drop=st.booleans(), squad=st.booleans())
def test_ray_batches_match_the_reference(items, size, k, drop, squad):
    cfg = _cfg(format="squad" if squad else "pairs", with_context=True, hard_negatives=k, batch_size=size, dedupe=drop)
    examples = [_ex(q, p, f"ctx {p}", [f"{q}{p}{j}" for j in range(n)]) for q, p, n in items]
    got = RayBatches(lambda rows: rows, cfg)(_ray_batch(examples))
    assert got == _reference_batch(examples, size, squad, k, drop)


@pytest.mark.parametrize(("batch_size", "dedupe_on", "expected"), [
    (2, True, 3), (3, True, 4), (4, True, 5), (7, True, 8), (8, True, 10), (9, True, 11), (32, True, 40),
    (2, False, 2), (32, False, 32)])
def test_ray_batch_size_adds_a_quarter_of_slack_only_when_deduplicating(batch_size, dedupe_on, expected):
    assert ray_batch_size(_cfg(batch_size=batch_size, dedupe=dedupe_on)) == expected


# ---- the Ray Data read graph (no Ray started) -------------------------------------------------------------------

@pytest.fixture
def no_ray(monkeypatch):
    import ray
    from ray.data.datasource import FileBasedDatasource

    was = ray.is_initialized()
    calls: list = []

    def init(self, paths, *, filesystem):
        calls.append((paths, filesystem))

    monkeypatch.setattr(FileBasedDatasource, "__init__", init)  # its ray.put would start a local Ray
    yield calls
    assert ray.is_initialized() == was  # nothing here may start Ray


def _read_all(ds, fs, path: str) -> list[pa.Table]:
    return list(ds._read_stream(ds._open_input_source(fs, path), path))


def test_fs_file_carries_the_filesystem_and_path_and_hides_nothing():
    fs = pafs.LocalFileSystem()
    f = _FsFile(fs, "/some/path")
    assert f.fs is fs and f.path == "/some/path"
    with f as inside:
        assert inside is f
    with pytest.raises(KeyError):  # __exit__ does not swallow an error
        with _FsFile(fs, "p"):
            raise KeyError("x")
    assert f.close() is None


def test_finetune_files_passes_paths_and_filesystem_on(no_ray, tmp_path):
    fs = pafs.LocalFileSystem()
    cfg = FinetuneData(format="pairs", path=str(tmp_path))
    ds = data._datasource_cls()(["/a.jsonl", "/b.jsonl"], data_cfg=cfg, filesystem=fs)
    assert no_ray == [(["/a.jsonl", "/b.jsonl"], fs)]
    assert ds.data_cfg is cfg
    f = ds._open_input_source(fs, "/a.jsonl", buffer_size=7)
    assert isinstance(f, _FsFile) and f.fs is fs and f.path == "/a.jsonl"


@pytest.mark.parametrize(("n", "block", "sizes"), [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (1, 3, [1]), (0, 3, []),
                                                   (2049, None, [2048, 1]), (2048, None, [2048])])
def test_finetune_files_streams_blocks_of_block_rows(no_ray, tmp_path, monkeypatch, n, block, sizes):
    if block is not None:
        monkeypatch.setattr(data, "BLOCK_ROWS", block)
    objs = [{"query": f"q{i}", "positive": f"p{i}", "negative": [f"n{i}", f"m{i}"]} for i in range(n)]
    path = _jsonl(tmp_path / "train.jsonl", objs or [""])
    fs = pafs.LocalFileSystem()
    ds = data._datasource_cls()([str(path)], data_cfg=FinetuneData(format="pairs", path=str(path),
                                                                    hard_negatives=1), filesystem=fs)
    tables = _read_all(ds, fs, str(path))
    assert [t.num_rows for t in tables] == sizes
    assert all(t.schema.equals(EXAMPLE) for t in tables)
    rows = [r for t in tables for r in t.to_pylist()]
    assert rows == [{"query": f"q{i}", "positive": f"p{i}", "context": "", "negatives": [f"n{i}"]} for i in range(n)]


def test_finetune_files_blocks_keep_the_schema_without_negatives(no_ray, tmp_path, monkeypatch):
    """Blocks are typed by EXAMPLE, not inferred: ``negatives`` stays list<string> when every list is empty."""
    monkeypatch.setattr(data, "BLOCK_ROWS", 2)
    path = _jsonl(tmp_path / "p.jsonl", [{"query": f"q{i}", "positive": f"p{i}"} for i in range(3)])
    fs = pafs.LocalFileSystem()
    ds = data._datasource_cls()([str(path)], data_cfg=FinetuneData(format="pairs", path=str(path)), filesystem=fs)
    tables = _read_all(ds, fs, str(path))
    assert [t.num_rows for t in tables] == [2, 1]
    for t in tables:  # the full block and the last one
        assert t.schema.field("negatives").type == pa.list_(pa.string())
        assert t.schema.names == ["query", "positive", "context", "negatives"]


def test_finetune_files_reads_each_format_with_the_data_settings(no_ray, tmp_path):
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "One two. Three four.", "sentence_breaks": [[0, 8],
                                                                                                              [9, 20]],
                                                     "qas": [{"question": "Q?", "answers": [{"answer_start": 9}]}]}]}]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(squad))
    fs = pafs.LocalFileSystem()
    for with_context, context in ((True, "One two. Three four."), (False, "")):
        ds = data._datasource_cls()([str(path)], data_cfg=FinetuneData(format="squad", path=str(path),
                                                                        with_context=with_context), filesystem=fs)
        assert [r for t in _read_all(ds, fs, str(path)) for r in t.to_pylist()] == [
            {"query": "Q?", "positive": "Three four.", "context": context, "negatives": []}]
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress((json.dumps({"query": "q", "positive_passages": [{"title": "T", "text": "x"}],
                                              "negative_passages": [{"text": "y"}, {"text": "z"}]}) + "\n").encode()))
    ds = data._datasource_cls()([str(gz)], data_cfg=FinetuneData(format="tevatron", path=str(gz), hard_negatives=2),
                                filesystem=fs)
    assert [r for t in _read_all(ds, fs, str(gz)) for r in t.to_pylist()] == [
        {"query": "q", "positive": "T x", "context": "", "negatives": ["y", "z"]}]


class _Dataset:
    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def limit(self, n):
        self.log.append(("limit", n))
        return _Dataset(self.log, f"{self.name}.limit")

    def randomize_block_order(self, *, seed):
        self.log.append(("randomize_block_order", seed))
        return _Dataset(self.log, f"{self.name}.randomized")


@pytest.fixture
def read_datasource(no_ray, monkeypatch):
    import ray.data

    log: list = []

    def read(datasource, **kwargs):
        inspect.signature(ray.data.read_datasource).bind(datasource, **kwargs)  # a call the real one accepts
        log.append(("read", datasource, kwargs))
        return _Dataset(log, "read")

    monkeypatch.setattr(ray.data, "read_datasource", read)
    return no_ray, log


@pytest.mark.parametrize(("max_examples", "seed"), [(None, 0), (5, 7), (1, 3)])
def test_ray_dataset_reads_every_file_limits_then_shuffles_blocks(read_datasource, tmp_path, max_examples, seed):
    inits, log = read_datasource
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl", "notes.txt"):
        _jsonl(tmp_path / name, [{"query": "q", "positive": "p"}])
    cfg = _cfg(path=str(tmp_path), seed=seed, format="pairs", max_examples=max_examples)
    out = data.ray_dataset(cfg)
    files = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), str(tmp_path / "sub" / "c.jsonl")]
    assert len(inits) == 1 and inits[0][0] == files and isinstance(inits[0][1], pafs.LocalFileSystem)
    (_, source, kwargs), *steps = log
    assert kwargs == {"num_cpus": DATA_CPUS} and source.data_cfg is cfg.data
    assert type(source).__name__ == "FinetuneFiles"
    limit = [("limit", max_examples)] if max_examples is not None else []
    assert steps == limit + [("randomize_block_order", seed)]
    assert out.name == ("read.limit" if limit else "read") + ".randomized"


def test_ray_dataset_reads_through_the_filesystem_of_data_path(read_datasource, tmp_path, monkeypatch):
    import msm.uri

    inits, _ = read_datasource
    _jsonl(tmp_path / "a.jsonl", [{"query": "q", "positive": "p"}])
    real, calls = msm.uri.resolve, []

    def resolve(path):
        loc = real(path)
        calls.append((path, loc.fs))
        return loc

    monkeypatch.setattr(msm.uri, "resolve", resolve)
    monkeypatch.setattr(data, "resolve", resolve, raising=False)
    data.ray_dataset(_cfg(path=str(tmp_path), format="pairs"))
    assert calls and all(path == str(tmp_path) for path, _ in calls)
    assert any(fs is inits[0][1] for _, fs in calls)  # the filesystem resolved from data.path is the one read


def test_ray_dataset_fails_on_the_driver_when_there_is_nothing_to_read(read_datasource, tmp_path):
    inits, log = read_datasource
    (tmp_path / "empty").mkdir()
    with pytest.raises(MSMError, match="no .jsonl / .parquet file there"):
        data.ray_dataset(_cfg(path=str(tmp_path / "empty"), format="pairs"))
    assert inits == [] and log == []


def test_the_real_ray_dataset_methods_take_these_arguments():
    import ray.data

    inspect.signature(ray.data.Dataset.limit).bind(None, 5)
    inspect.signature(ray.data.Dataset.randomize_block_order).bind(None, seed=3)


def test_rank_rows_give_each_worker_a_fixed_disjoint_equal_share_of_a_step():
    """Every worker reads the whole ordered stream; worker r keeps rows r::world of each step's Ray batch, so the
    shares are disjoint, cover the batch, have equal size, and do not depend on which worker asked first."""
    from msm.finetune.data import RankRows

    cfg = _cfg(format="pairs", batch_size=2, dedupe=False)
    examples = [_ex(f"q{i}", f"p{i}") for i in range(6)]
    shares = [[r["anchor"] for r in RankRows(RayBatches(lambda rows: rows, cfg), rank, 3)(_ray_batch(examples))]
              for rank in range(3)]
    assert shares == [["q0", "q3"], ["q1", "q4"], ["q2", "q5"]]
    assert RankRows(RayBatches(lambda rows: rows, cfg), 0, 1)(_ray_batch(examples[:2])) == [
        {"anchor": "q0", "positive": "p0"}, {"anchor": "q1", "positive": "p1"}]
