"""Fine-tuning readers: every format yields examples ``{"query", "positive", "context", "negatives"}``.

``context`` is the positive's paragraph ("" when none): the passage is then the pair (positive, context), encoded
as ``msm eval``'s LAReQA candidates are. ``negatives`` are hard negatives (may be empty).

=========== ====================================================================================================
format      input
=========== ====================================================================================================
squad       SQuAD v1.1 JSON (``{"data": [{"title", "paragraphs": [{"context", "qas": [{"question", "answers"}]}]}]}``):
            question → the sentence holding the first answer (+ its paragraph with ``with_context``). Sentence
            breaks as LAReQA: a paragraph's ``sentence_breaks`` where given (XQuAD-R), else the paragraph split
            with :func:`msm.data.segment.segment` and the pieces located in it.
tevatron    Tevatron / MS MARCO / NQ JSONL: ``{"query", "positive_passages": [{"title", "text"}], "negative_passages"}``
            (title and text joined by a space; the first positive, the first ``hard_negatives`` negatives).
pairs       JSONL or Parquet: ``{"query", "positive"[, "negative": str | [str]]}``.
mewsli_x    Mewsli-X ``wikipedia_pairs-*.jsonl`` (XTREME-R): ``{"contextual_mention": {"mention": {"mention_span"},
            "context": {"text", "sentence_spans"}}, "entity": {"description", "sentence_spans"}}``; query and entity
            text built exactly as the evaluation (:mod:`msm.eval.tasks.mewsli_x`) builds them.
=========== ====================================================================================================

A malformed file fails with an :class:`MSMError` naming the file, the line (JSON) or row (Parquet) and the fix.
The parsers work on one line / one file and are shared by the in-process reader (:func:`read_examples`) and the Ray
Data datasource (:mod:`msm.finetune.data`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from msm.data.segment import segment
from msm.errors import MSMError

SUFFIXES = {"squad": (".json",), "tevatron": (".jsonl", ".json", ".jsonl.gz"), "pairs": (".jsonl", ".parquet"),
            "mewsli_x": (".jsonl",)}
FIX = {
    "squad": 'expected SQuAD v1.1 JSON {"data": [{"paragraphs": [{"context", "qas": [{"question", "answers": '
             '[{"text", "answer_start"}]}]}]}]}',
    "tevatron": 'expected one JSON object a line {"query": str, "positive_passages": [{"title", "text"}], '
                '"negative_passages": [...]}',
    "pairs": 'expected one JSON object a line (or Parquet columns) {"query": str, "positive": str[, "negative": '
             'str or [str]]}',
    "mewsli_x": 'expected Mewsli-X wikipedia_pairs JSONL {"contextual_mention": {"mention": {"mention_span"}, '
                '"context": {"text", "sentence_spans"}}, "entity": {"description", "sentence_spans"}}',
}


def example(query: str, positive: str, context: str = "", negatives: list[str] | None = None) -> dict:
    return {"query": query, "positive": positive, "context": context, "negatives": list(negatives or [])}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is {'empty' if isinstance(value, str) else type(value).__name__}, not a text")
    return value.strip()


# ---- SQuAD v1.1 ------------------------------------------------------------------------------------------------

def sentence_breaks(context: str, language: str = "en") -> list[tuple[int, int]]:
    """Character spans of the sentences of ``context`` (consecutive pieces, found left to right)."""

    spans, pos = [], 0
    for sent in segment(context, language):
        start = context.find(sent, pos)
        if start < 0:  # the segmenter normalised something: fall back to the next stretch of the same length
            start = pos
        spans.append((start, start + len(sent)))
        pos = start + len(sent)
    return spans or [(0, len(context))]


def squad_examples(raw: bytes | str, path: str, with_context: bool = True, language: str = "en",
                   articles: set[str] | None = None) -> Iterator[dict]:
    """Examples of one SQuAD-format file; ``articles``: keep only these titles (the protocol's split)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise MSMError(f"{path}: byte {exc.start}: not UTF-8; {FIX['squad']}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MSMError(f"{path}:{exc.lineno}: not JSON ({exc.msg}, column {exc.colno}); {FIX['squad']}") from exc
    where = "data"
    try:
        data = obj["data"]
        if not isinstance(data, list):
            raise TypeError("'data' is not a list")
        for a, article in enumerate(data):
            where = f"data[{a}]"
            if articles is not None and article.get("title") not in articles:
                continue
            for p, para in enumerate(article["paragraphs"]):
                where = f"data[{a}].paragraphs[{p}]"
                context = _text(para["context"], "context")
                breaks = [tuple(b) for b in para["sentence_breaks"]] if "sentence_breaks" in para else \
                    sentence_breaks(para["context"], language)
                for q, qa in enumerate(para["qas"]):
                    where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                    question = _text(qa["question"], "question")
                    start = int(qa["answers"][0]["answer_start"])
                    hit = next(((s, e) for s, e in breaks if s <= start < e), None)
                    if hit is None:
                        raise ValueError(f"answer_start {start} lies in no sentence of the context")
                    sentence = para["context"][hit[0]:hit[1]].strip()
                    yield example(question, sentence, context if with_context else "")
    except MSMError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MSMError(f"{path}: {where}: {type(exc).__name__}: {exc}; {FIX['squad']}") from exc


# ---- one JSON object a line ------------------------------------------------------------------------------------

def tevatron_example(obj: dict, hard_negatives: int) -> dict:
    def passage(p: dict) -> str:
        title = (p.get("title") or "").strip()
        body = _text(p["text"], "passage text")
        return f"{title} {body}" if title else body

    positives = obj["positive_passages"]
    if not isinstance(positives, list) or not positives:
        raise ValueError("positive_passages is empty")
    negatives = [passage(p) for p in (obj.get("negative_passages") or [])[:hard_negatives]]
    return example(_text(obj["query"], "query"), passage(positives[0]), "", negatives)


def pairs_example(obj: dict, hard_negatives: int) -> dict:
    neg = obj.get("negative")
    negs = [] if neg is None else [neg] if isinstance(neg, str) else list(neg)
    return example(_text(obj["query"], "query"), _text(obj["positive"], "positive"), "",
                   [_text(n, "negative") for n in negs[:hard_negatives]])


def mewsli_example(obj: dict, hard_negatives: int = 0) -> dict:
    from msm.eval.tasks.mewsli_x import mention_query, normalise, sentence_spans  # lazy: numpy

    cm, entity = obj["contextual_mention"], obj["entity"]
    text, span = cm["context"]["text"], cm["mention"]["mention_span"]
    start, end = int(span["start"]), int(span["end"])
    if text[start:end] != span["text"]:
        raise ValueError(f"mention_span.text {span['text']!r} != context.text[{start}:{end}] {text[start:end]!r}")
    query = mention_query(text, sentence_spans(cm["context"]), start, end)
    if query is None:
        raise ValueError("the mention lies in no single sentence_span")
    description = str(entity["description"])
    desc = normalise(" ".join(description[s:e] for s, e in sentence_spans(entity))) or normalise(description)
    return example(query, _text(desc, "entity description"))


LINE_PARSERS = {"tevatron": tevatron_example, "pairs": pairs_example, "mewsli_x": mewsli_example}


def jsonl_examples(lines: Iterable[bytes | str], path: str, fmt: str, hard_negatives: int = 0) -> Iterator[dict]:
    """Examples of a JSONL file's ``lines``; a bad line fails with ``path:line``."""
    parse = LINE_PARSERS[fmt]
    for n, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise MSMError(f"{path}:{n}: byte {exc.start}: not UTF-8; {FIX[fmt]}") from exc
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MSMError(f"{path}:{n}: not JSON ({exc.msg}, column {exc.colno}); {FIX[fmt]}") from exc
        try:
            if not isinstance(obj, dict):
                raise TypeError(f"a JSON {type(obj).__name__}, not an object")
            yield parse(obj, hard_negatives)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            raise MSMError(f"{path}:{n}: {what}; {FIX[fmt]}") from exc


def parquet_examples(source, path: str, hard_negatives: int = 0, batch_rows: int = 4096) -> Iterator[dict]:
    """Examples of a Parquet file (columns query, positive[, negative]); a bad row fails with ``path: row N``."""
    import pyarrow as pa  # lazy: pyarrow
    import pyarrow.parquet as pq  # lazy: pyarrow

    try:
        pf = pq.ParquetFile(source)
        missing = {"query", "positive"} - set(pf.schema_arrow.names)
        if missing:
            raise MSMError(f"{path}: no column {', '.join(sorted(missing))} (columns: {', '.join(pf.schema_arrow.names)});"
                           f" {FIX['pairs']}")
        row = 0
        for batch in pf.iter_batches(batch_size=batch_rows):
            for obj in batch.to_pylist():
                row += 1
                try:
                    yield pairs_example(obj, hard_negatives)
                except (KeyError, TypeError, ValueError) as exc:
                    raise MSMError(f"{path}: row {row}: {type(exc).__name__}: {exc}; {FIX['pairs']}") from exc
    except (pa.ArrowException, OSError) as exc:
        raise MSMError(f"{path}: not a readable Parquet file ({exc}); {FIX['pairs']}") from exc


# ---- in-process ------------------------------------------------------------------------------------------------

def data_files(path: str, fmt: str) -> list[str]:
    """The input files of ``path`` (a file or a folder; local or URI), sorted; an empty folder is an error."""
    from msm.uri import resolve  # lazy: pyarrow

    if not path:
        raise MSMError("data.path is empty; set it to a file or folder of the data.format files")
    loc = resolve(path)
    if loc.is_file():
        return [loc.path]
    if not loc.exists():
        raise MSMError(f"data.path {loc.uri}: does not exist; point it at a {' / '.join(SUFFIXES[fmt])} file or a "
                       f"folder of them (data.format {fmt})")
    files = [f for f in loc.files() if f.endswith(SUFFIXES[fmt])]
    if not files:
        raise MSMError(f"{loc.uri}: no {' / '.join(SUFFIXES[fmt])} file there (data.format {fmt}); point data.path "
                       "at a file or a folder of them")
    return files


def file_examples(fs, path: str, cfg) -> Iterator[dict]:
    """Examples of one file on pyarrow filesystem ``fs`` (``cfg``: :class:`msm.finetune.config.FinetuneData`)."""
    from msm.data.sources import byte_lines  # lazy: pyarrow, ray

    if cfg.format == "squad":
        with fs.open_input_stream(path) as fh:
            yield from squad_examples(fh.read(), path, cfg.with_context, cfg.language)
    elif path.endswith(".parquet"):
        with fs.open_input_file(path) as fh:
            yield from parquet_examples(fh, path, cfg.hard_negatives)
    else:
        compression = "gzip" if path.endswith(".gz") else None
        with fs.open_input_stream(path, compression=compression) as fh:
            yield from jsonl_examples(byte_lines(fh), path, cfg.format, cfg.hard_negatives)


def read_examples(cfg) -> list[dict]:
    """Every example of ``cfg.data`` in this process (tests, small sets); the first ``max_examples`` only."""
    from msm.uri import resolve  # lazy: pyarrow

    fs = resolve(cfg.path).fs
    out: list[dict] = []
    for path in data_files(cfg.path, cfg.format):
        for ex in file_examples(fs, path, cfg):
            if cfg.max_examples is not None and len(out) >= cfg.max_examples:
                return out
            out.append(ex)
    if not out:
        raise MSMError(f"{cfg.path}: no training example found (data.format {cfg.format}); {FIX[cfg.format]}")
    return out
