"""Tatoeba (LASER ``data/tatoeba/v1``): ``tatoeba.xxx-eng.xxx`` / ``.eng`` line-aligned pairs.

Accuracy@1 of the nearest neighbour, xxx→eng and eng→xxx, per language, and their mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msm.errors import MSMError
from msm.eval.report import Result


def languages(folder: Path) -> list[str]:
    return sorted(p.suffix[1:] for p in folder.glob("tatoeba.*-eng.*") if p.suffix != ".eng")


def load_pairs(folder: Path, lang: str, limit: int | None = None) -> tuple[list[str], list[str]]:
    src, eng = folder / f"tatoeba.{lang}-eng.{lang}", folder / f"tatoeba.{lang}-eng.eng"
    if not src.is_file() or not eng.is_file():
        raise MSMError(f"tatoeba: no files for language {lang!r} in {folder} (have {', '.join(languages(folder))})")
    a, b = _read_lines(src), _read_lines(eng)
    if len(a) != len(b) or not a:
        raise MSMError(f"tatoeba {lang}: {src.name} has {len(a)} lines, {eng.name} {len(b)}; files must be line-aligned")
    return a[:limit], b[:limit]


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    except UnicodeDecodeError as exc:
        raise MSMError(f"{path}: not UTF-8 ({exc}); re-download the Tatoeba file") from exc


def accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Share of rows i whose nearest neighbour in y is row i."""
    return float((np.argmax(x @ y.T, axis=1) == np.arange(len(x))).mean())


def evaluate(encoder, data_dir: Path, langs: list[str] | None = None, limit: int | None = None,
             show_progress: bool = False) -> list[Result]:
    folder = Path(data_dir) / "tatoeba"
    if not folder.is_dir():
        raise MSMError(f"tatoeba: {folder} not found; pass --data-dir with a tatoeba/ folder")
    results, to_eng, from_eng = [], [], []
    for lang in langs or languages(folder):
        a, b = load_pairs(folder, lang, limit)
        x = encoder.encode(a, kind="query", show_progress=show_progress)
        y = encoder.encode(b, kind="query", show_progress=show_progress)
        fwd, bwd = accuracy(x, y), accuracy(y, x)
        to_eng.append(fwd)
        from_eng.append(bwd)
        results += [Result("tatoeba", lang, "acc@1 xxx->eng", fwd, len(a)),
                    Result("tatoeba", lang, "acc@1 eng->xxx", bwd, len(a))]
    results += [Result("tatoeba", "mean", "acc@1 xxx->eng", float(np.mean(to_eng)), len(to_eng)),
                Result("tatoeba", "mean", "acc@1 eng->xxx", float(np.mean(from_eng)), len(from_eng))]
    return results
