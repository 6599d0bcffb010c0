"""Helpers shared by test folders (``tests/conftest.py`` puts this folder on ``sys.path``: ``from factories import
...``): small factories that several modules' tests wrote out for themselves before."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY_PRETRAIN = REPO / "configs" / "pretrain" / "tiny-cpu.yaml"


def unit(x: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tiny_pretrain(output_dir: str | Path, data_dir: Path | None = None, *overrides: str):
    """``configs/pretrain/tiny-cpu.yaml`` writing to ``output_dir`` (a path or URI), reading NTREX from ``data_dir``,
    with ``overrides`` (``key=value``)."""
    from msm.config import load_config, parse_overrides
    from msm.train.config import PretrainConfig

    items = [f"run.output_dir={output_dir}", *([f"data.data_dir={data_dir}"] if data_dir else []), *overrides]
    return load_config(TINY_PRETRAIN, PretrainConfig, parse_overrides(items))


def summed_counts(batches) -> dict:
    """The driver's sum of the partial count rows of every batch (``msm.data.pipeline._partials`` over
    ``msm.data.outputs.count_rows``), written out: ``(part, code, detected) -> {rows, sentences}``."""
    from msm.data.outputs import count_rows

    groups: dict = {}
    for batch in batches:
        for row in count_rows(batch).to_pylist():
            acc = groups.setdefault((row["part"], row["code"], row["detected"]), {"rows": 0, "sentences": 0})
            acc["rows"] += row["rows"]
            acc["sentences"] += row["sentences"]
    return groups
