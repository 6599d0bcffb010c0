"""Shared by the Mr.TyDi, XOR Retrieve and Mewsli-X tasks: reading the released files, dense top-k retrieval.

Files may be plain or ``.gz``; a missing file, bad UTF-8 or a malformed line is an :class:`MSMError` naming the
file (and line) and the fix.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from msm.errors import MSMError
from msm.retrieval.index import SearchIndex


def find(folder: Path, names: list[str], fix: str) -> Path:
    """The first of ``names`` (relative to ``folder``) that exists."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise MSMError(f"{folder / names[0]} not found; {fix}" if len(names) == 1 else
                   f"{folder}: none of {', '.join(names)} found; {fix}")


def lines(path: Path, fix: str) -> Iterator[tuple[int, str]]:
    """(line number, line without the newline) of a UTF-8 text file, skipping blank lines."""
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")) as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield n, line.rstrip("\r\n")
    except FileNotFoundError as exc:
        raise MSMError(f"{path} not found; {fix}") from exc
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise MSMError(f"{path}: unreadable ({exc}); {fix}") from exc


def jsonl(path: Path, keys: tuple[str, ...], fix: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) per line; each object must hold ``keys``."""
    for n, line in lines(path, fix):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MSMError(f"{path}:{n}: not JSON ({exc}); {fix}") from exc
        if not isinstance(obj, dict):
            raise MSMError(f"{path}:{n}: a JSON {type(obj).__name__}, not an object; {fix}")
        missing = [k for k in keys if k not in obj]
        if missing:
            raise MSMError(f"{path}:{n}: missing {', '.join(missing)} (expected keys {', '.join(keys)}); {fix}")
        yield n, obj


def retrieve(encoder, passages: list[str], ids: list[str], queries: list[str], k: int,
             show_progress: bool = False) -> list[list[str]]:
    """The ``k`` best passage ids per query, by exact inner product (faiss flat; on GPU when faiss has one)."""
    index = SearchIndex.build(encoder.encode(passages, kind="passage", show_progress=show_progress), ids)
    return index.search(encoder.encode(queries, kind="query", show_progress=show_progress), k)[1]
