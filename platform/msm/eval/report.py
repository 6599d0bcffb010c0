"""Evaluation results: records (model, task, language, metric, value) → Markdown table + JSON, atomically."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from msm.tables import markdown_table


@dataclass
class Result:
    task: str
    language: str
    metric: str
    value: float
    count: int


def markdown(model: str, results: list[Result]) -> str:
    rows = [[r.task, r.language, r.metric, f"{r.value:.4f}", r.count] for r in results]
    return f"### {model}\n\n" + markdown_table(["task", "language", "metric", "value", "n"], rows) + "\n"


def write_report(out_dir: str | Path, model: str, results: list[Result], config: dict, seconds: float,
                 settings: dict | None = None) -> Path | str:
    """``results.md``, then ``results.json`` (the report's manifest: ``verb``, ``settings``) last, each whole (a
    local file by a rename, an object in one put) at a local folder or a URI; returns it (a path when local)."""

    from msm.uri import resolve  # lazy: pyarrow

    loc = resolve(out_dir)
    record = {"verb": "eval", "settings": settings or {"model": model, "config": config}, "model": model,
              "config": config, "seconds": round(seconds, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "results": [dict(asdict(r), model=model) for r in results]}
    loc.join("results.md").write_text(markdown(model, results))
    loc.join("results.json").write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n")
    return Path(loc.path) if loc.local else loc.uri
