"""Run outputs for the dashboards, read tolerantly (missing columns are fine, bad lines are counted).

* Pretraining run dir (``msm pretrain``): ``metrics.jsonl`` (one JSON object per step) or ``metrics.csv``, columns
  ``step, loss, doc_loss, mlm_loss, acc_same_doc, acc_other_doc, lr, sentences_per_s, tokens_per_s``.
* Tune sweep dir: ``results.csv`` or ``results.json`` (a list of row objects, or ``{"trials": [...]}``), one row
  per trial; knob columns are named ``config/<knob>`` (Ray Tune's convention) or listed in ``{"knobs": [...]}``;
  every ``*.png`` in the folder is shown as a plot.
* Evaluation: ``results.json`` of ``msm eval`` (``{"model", "results": [{task, language, metric, value, count}]}``)
  or a plain list of such records with a ``model`` key each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from msm.errors import MSMError

TRAIN_FILES = ("metrics.jsonl", "metrics.csv")
TUNE_FILES = ("results.csv", "results.json")
CURVES = {"loss": ["loss", "doc_loss", "mlm_loss"], "masked-sentence accuracy": ["acc_same_doc", "acc_other_doc"],
          "throughput": ["sentences_per_s", "tokens_per_s"], "learning rate": ["lr"]}


@dataclass
class Table:
    frame: pd.DataFrame
    source: Path
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    plots: list[Path] = field(default_factory=list)
    knobs: list[str] = field(default_factory=list)


def _jsonl(path: Path) -> tuple[list[dict], list[str]]:
    rows, skipped = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            rows.append(row)
        except ValueError as exc:  # a torn last line of a running job, or garbage
            skipped.append(f"{path.name}:{n}: {exc}")
    return rows, skipped


def _csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MSMError(f"{path}: not a readable CSV table ({exc})") from exc


def load_training_metrics(run_dir: str | Path) -> Table:
    run_dir = Path(run_dir)
    for name in TRAIN_FILES:
        f = run_dir / name
        if f.is_file():
            if name.endswith(".jsonl"):
                rows, skipped = _jsonl(f)
                frame = pd.DataFrame(rows)
            else:
                frame, skipped = _csv(f), []
            if frame.empty:
                raise MSMError(f"{f}: no metrics rows yet; wait for the first logged step")
            if "step" in frame:
                frame = frame.sort_values("step").drop_duplicates("step", keep="last").reset_index(drop=True)
            return Table(frame, f, skipped)
    raise MSMError(f"{run_dir}: no {' or '.join(TRAIN_FILES)}; pick a pretraining run directory")


def curves(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Chart title → the columns of ``CURVES`` present in ``frame`` with at least one value."""
    out = {}
    for title, cols in CURVES.items():
        have = [c for c in cols if c in frame and frame[c].notna().any()]
        if have:
            out[title] = have
    return out


def load_tune_results(folder: str | Path) -> Table:
    folder = Path(folder)
    plots = sorted(folder.glob("*.png"))
    if (folder / "results.csv").is_file():
        frame, source, knobs = _csv(folder / "results.csv"), folder / "results.csv", []
    elif (folder / "results.json").is_file():
        source = folder / "results.json"
        try:
            obj = json.loads(source.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MSMError(f"{source}: not valid JSON ({exc})") from exc
        rows = obj.get("trials") if isinstance(obj, dict) else obj
        if not isinstance(rows, list):
            raise MSMError(f"{source}: expected a list of trial rows or {{'trials': [...]}}")
        frame = pd.json_normalize(rows, sep="/")
        knobs = list(obj.get("knobs", [])) if isinstance(obj, dict) else []
    else:
        raise MSMError(f"{folder}: no results.csv or results.json; pick a Tune sweep output folder")
    knobs = [k for k in knobs if k in frame] or [c for c in frame.columns if str(c).startswith(("config/", "config."))]
    return Table(frame, source, [], plots, knobs)


def _json_top(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def is_tune_dir(folder: Path) -> bool:
    """``results.csv``, or a ``results.json`` holding a list of rows or ``{"trials": [...]}``."""
    if (folder / "results.csv").is_file():
        return True
    top = _json_top(folder / "results.json") if (folder / "results.json").is_file() else None
    return isinstance(top, list) or isinstance(top, dict) and "trials" in top


def is_eval_file(path: Path) -> bool:
    """An ``msm eval`` ``results.json``: ``{"model": ..., "results": [...]}``."""
    top = _json_top(path)
    return isinstance(top, dict) and isinstance(top.get("results"), list)


def metric_columns(table: Table) -> list[str]:
    """Numeric columns that are not knobs (candidates for the y axis of knob-vs-metric plots)."""
    return [c for c in table.frame.columns if c not in table.knobs and pd.api.types.is_numeric_dtype(table.frame[c])]


def load_eval_results(files: list[Path]) -> pd.DataFrame:
    """Records from eval ``results.json`` files → one frame with columns model, task, language, metric, value."""
    records = []
    for f in files:
        try:
            obj = json.loads(Path(f).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MSMError(f"{f}: not valid JSON ({exc})") from exc
        rows = obj.get("results", []) if isinstance(obj, dict) else obj
        default_model = obj.get("model", Path(f).parent.name) if isinstance(obj, dict) else Path(f).parent.name
        for r in rows if isinstance(rows, list) else []:
            if isinstance(r, dict) and {"task", "metric", "value"} <= set(r):
                records.append({"model": r.get("model") or default_model, "task": r["task"],
                                "language": r.get("language", "all"), "metric": r["metric"], "value": r["value"],
                                "source": str(f)})
    return pd.DataFrame(records, columns=["model", "task", "language", "metric", "value", "source"])


def eval_pivot(frame: pd.DataFrame) -> pd.DataFrame:
    """(task, metric, language) rows × model columns, for comparing models side by side."""
    if frame.empty:
        return frame
    return frame.pivot_table(index=["task", "metric", "language"], columns="model", values="value", aggfunc="last")
