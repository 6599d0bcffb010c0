"""Search corpora for the UI: NTREX sentences, XQuAD-R candidate sentences, or a user's JSONL/Parquet upload.

Upload format (one record per line / row): ``text`` (required, non-empty string), optional ``id``, ``lang``
(any code, e.g. ``de`` or ``deu``) and ``doc`` (source document name). Records that cannot be used are
counted in ``Corpus.skipped`` with a reason, never silently dropped.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from msm.data.langid import to_iso1
from msm.errors import MSMError


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    lang: str
    doc: str


@dataclass
class Corpus:
    name: str
    passages: list[Passage]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)

    @property
    def langs(self) -> list[str]:
        return sorted({p.lang for p in self.passages if p.lang})


def load_ntrex(folder: Path, langs: list[str], lines_per_lang: int | None = None) -> Corpus:
    """The first ``lines_per_lang`` NTREX-128 lines of each of ``langs`` (NTREX tags: ``eng``, ``deu``,
    ``zho-CN``...); ``lang`` is stored as ISO 639-1, ``doc`` comes from ``DOCUMENT_IDS.tsv``."""
    from msm.data.readers import ntrex_files  # lazy: pyarrow

    files = ntrex_files(folder)
    ids_file = folder / "DOCUMENT_IDS.tsv"
    if not files or not ids_file.is_file():
        raise MSMError(f"{folder}: not an NTREX-128 folder (need newstest2019-ref.<lang>.txt and DOCUMENT_IDS.tsv)")
    doc_ids = ids_file.read_text(encoding="utf-8").splitlines()
    passages = []
    for lang in langs:
        if lang not in files:
            raise MSMError(f"NTREX has no language {lang!r}; pick from {', '.join(sorted(files))}")
        lines = files[lang].read_text(encoding="utf-8").splitlines()[:lines_per_lang]
        passages += [Passage(f"ntrex:{lang}:{i}", line, to_iso1(lang), doc_ids[i] if i < len(doc_ids) else "")
                     for i, line in enumerate(lines) if line.strip()]
    return Corpus(f"ntrex[{','.join(langs)}]{'' if lines_per_lang is None else f':{lines_per_lang}'}", passages)


def load_xquad_r(folder: Path, langs: list[str], max_paragraphs: int | None = None) -> Corpus:
    """XQuAD-R candidate sentences (``sentence_breaks`` of each paragraph), ``doc`` = article title #paragraph."""
    passages = []
    for lang in langs:
        path = folder / f"{lang}.json"
        if not path.is_file():
            raise MSMError(f"{path}: not found; XQuAD-R languages are ar de el en es hi ru th tr vi zh")
        try:
            articles = json.loads(path.read_text(encoding="utf-8"))["data"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise MSMError(f"{path}: not SQuAD-format XQuAD-R JSON ({exc})") from exc
        n = 0
        for article in articles:
            for paragraph in article["paragraphs"]:
                if max_paragraphs is not None and n >= max_paragraphs:
                    break
                n += 1
                context = paragraph["context"]
                for pos, (start, end) in enumerate(paragraph["sentence_breaks"]):
                    passages.append(Passage(f"xquad:{lang}:{n}:{pos}", context[start:end].strip(), lang,
                                            f"{article.get('title', '?')} #{n}"))
    return Corpus(f"xquad-r[{','.join(langs)}]", passages)


def _row_to_passage(row: object, where: str, default_id: str) -> Passage:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    text = row.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' missing or not a string")
    if not text.strip():
        raise ValueError("'text' is empty")
    return Passage(str(row.get("id") or default_id), text, to_iso1(str(row.get("lang") or "")) or "",
                   str(row.get("doc") or ""))


def parse_upload(name: str, data: bytes) -> Corpus:
    """A ``.jsonl`` or ``.parquet`` upload → ``Corpus``; bad records are skipped with a reason, a file that
    is not readable at all raises ``MSMError`` naming the file and the expected format."""
    fmt = Path(name).suffix.lower()
    passages, skipped = [], []
    if fmt in (".jsonl", ".json"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MSMError(f"{name}: not UTF-8 text (byte {exc.start}); upload UTF-8 JSONL") from exc
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                passages.append(_row_to_passage(json.loads(line), f"{name}:{n}", f"{Path(name).stem}:{n}"))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                skipped.append((f"{name}:{n}", str(exc)))
    elif fmt == ".parquet":
        import pyarrow.parquet as pq  # lazy: pyarrow

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for foreign or truncated files
            raise MSMError(f"{name}: not a readable Parquet file ({exc}); upload a Parquet file with a 'text' column") from exc
        if "text" not in table.column_names:
            raise MSMError(f"{name}: no 'text' column (has {table.column_names}); add one")
        for n, row in enumerate(table.to_pylist()):
            try:
                passages.append(_row_to_passage(row, f"{name}:row{n}", f"{Path(name).stem}:{n}"))
            except ValueError as exc:
                skipped.append((f"{name}:row{n}", str(exc)))
    else:
        raise MSMError(f"{name}: unsupported file type {fmt or '(none)'}; upload .jsonl or .parquet "
                       'with records like {"text": "...", "lang": "de", "id": "...", "doc": "..."}')
    if not passages:
        raise MSMError(f"{name}: no usable record ({len(skipped)} skipped"
                       + (f", first: {skipped[0][0]}: {skipped[0][1]}" if skipped else "")
                       + '); each record needs a non-empty "text"')
    dup = next((i for i, c in Counter(p.id for p in passages).items() if c > 1), None)
    if dup is not None:
        raise MSMError(f"{name}: duplicate id {dup!r}; make 'id' unique or drop it")
    return Corpus(Path(name).name, passages, skipped)
