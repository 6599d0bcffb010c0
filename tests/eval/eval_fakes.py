"""Fakes shared by the evaluation tests: encoders that return fixed vectors and record how they were called, the
release-file fixtures and their writers (``tests/eval/fixtures``)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np


class TableEncoder:
    """text → a fixed vector (an oracle encoder); records the kind each text was encoded as."""

    def __init__(self, table: dict) -> None:
        self.table, self.kinds = table, {}

    def encode(self, texts, kind="passage", show_progress=False) -> np.ndarray:
        for t in texts:
            self.kinds[t] = kind
        return np.array([self.table[t] for t in texts], dtype=np.float32)


FIXTURES = Path(__file__).parent / "fixtures"


class Oracle:
    """Passage text containing key p → the axis of p; query containing key q → Σ 2^-r · axis(ranking[q][r])."""

    def __init__(self, passages: dict[str, str], rankings: dict[str, list[str]]) -> None:
        self.passages, self.rankings = passages, rankings
        self.axis = {pid: i for i, pid in enumerate(dict.fromkeys(passages.values()))}

    @staticmethod
    def _key(text: str, keys) -> str:
        found = [k for k in keys if k in text]
        assert found, f"no oracle key in {text[:80]!r}"
        return max(found, key=len)

    def encode(self, texts, kind="passage", show_progress=False) -> np.ndarray:
        out = np.zeros((len(texts), len(self.axis)), dtype=np.float32)
        for row, text in enumerate(texts):
            if kind == "passage":
                out[row, self.axis[self.passages[self._key(text, self.passages)]]] = 1
            else:
                for r, pid in enumerate(self.rankings[self._key(text, self.rankings)]):
                    out[row, self.axis[pid]] = 2.0 ** -r
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def values(results) -> dict[tuple[str, str], float]:
    return {(r.language, r.metric): r.value for r in results}


def copy_task(tmp_path: Path, task: str) -> Path:
    shutil.copytree(FIXTURES / task, tmp_path / task)
    return tmp_path / task


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


def write_xquad_paragraphs(folder, paragraphs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "en.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}), "utf-8")


class NormalisingTableEncoder:
    """Fixed vectors per text (unit rows); records the kinds it was asked for."""

    def __init__(self, table: dict):
        self.table, self.kinds, self.progress = table, [], []

    def encode(self, texts, kind="passage", show_progress=False):
        self.kinds.append(kind)
        self.progress.append(show_progress)
        rows = np.array([self.table[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)
