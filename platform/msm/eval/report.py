"""Evaluation results: records (model, task, language, metric, value) → Markdown table + JSON, atomically."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from msm.io import atomic_write_json, atomic_write_text


@dataclass
class Result:
    task: str
    language: str
    metric: str
    value: float
    count: int


def markdown(model: str, results: list[Result]) -> str:
    lines = [f"### {model}", "", "| task | language | metric | value | n |", "|---|---|---|---|---|"]
    lines += [f"| {r.task} | {r.language} | {r.metric} | {r.value:.4f} | {r.count} |" for r in results]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, model: str, results: list[Result], config: dict, seconds: float,
                 settings: dict | None = None) -> Path:
    """``results.md``, then ``results.json`` (the report's manifest: ``verb``, ``settings``) last, each atomically."""
    out = Path(out_dir)
    record = {"verb": "eval", "settings": settings or {"model": model, "config": config}, "model": model,
              "config": config, "seconds": round(seconds, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "results": [dict(asdict(r), model=model) for r in results]}
    atomic_write_text(out / "results.md", markdown(model, results))
    atomic_write_json(out / "results.json", record)
    return out
