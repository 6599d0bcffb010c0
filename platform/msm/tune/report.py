"""Sweep outputs: the sorted trial table (CSV, JSON, Markdown), the best config as a pretraining YAML, a plot.

Files in the sweep folder (``output_dir``):

* ``results.csv`` / ``results.json`` / ``results.md``: one row per trial, best first. Columns: ``rank``
  (empty for trials without the metric), ``trial_id``, ``status`` (Tune's), ``stopped_early`` (ended by ASHA
  before ``optim.max_steps``), ``steps`` (trained, from the trial's ``metrics.jsonl``), ``<metric>`` (the ranking
  score: best reported value, or the last with ``scope: last``), ``<metric>_last``, ``reports`` (results carrying
  the metric), ``loss`` (at the last report), one ``config/<dotted key>`` column per knob, ``error``, ``trial_dir``.
  ``results.json`` also holds ``metric``, ``mode``, ``scope``, ``knobs`` and ``best``.
* ``best_config.yaml``: the best trial's full ``PretrainConfig`` (its ``run.output_dir`` set to
  ``<output_dir>/best-run``): ``msm pretrain --config <output_dir>/best_config.yaml``.
* ``<metric>_vs_knobs.png``: the ranking score against each knob (hollow markers: stopped early).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ray.tune import ExperimentAnalysis

from msm.config import config_from_dict, merge
from msm.errors import MSMError
from msm.io import atomic_write_json, atomic_write_png, atomic_write_text
from msm.tables import markdown_table
from msm.train.config import PretrainConfig
from msm.tune.config import Sweep, flatten
from msm.tune.trainable import trial_output_dir
from msm.uri import resolve


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _steps_trained(folder: str) -> int | None:
    """Last ``step`` in a trial's ``metrics.jsonl`` at its path or URI (torn or foreign lines are skipped)."""
    last = None
    try:
        lines = resolve(folder).join("metrics.jsonl").read_bytes().decode("utf-8", errors="replace").splitlines()
    except (OSError, MSMError):
        return None
    for line in lines:
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int):
            last = step if last is None else max(last, step)
    return last


def _trials(grid) -> list[tuple[str, str, dict, Any]]:
    """(trial id, Tune status, config, ``Result``) of each trial of a ``ResultGrid``: ids and statuses from the
    experiment state Tune saved (``tune.ExperimentAnalysis``: a ``Result`` has no status), matched by trial folder."""

    analysis = ExperimentAnalysis(grid.experiment_path, storage_filesystem=grid.filesystem)
    results = {result.path: result for result in grid}
    return [(t.trial_id, str(t.status), t.config, results[t.path]) for t in analysis.trials if t.path in results]


def trial_rows(sweep: Sweep, grid) -> list[dict]:
    """One row per trial of a ``ResultGrid``, sorted best first (trials without the metric last, unranked)."""
    cfg = sweep.cfg
    metric = cfg.metric
    rows = []
    for trial_id, status, config, result in _trials(grid):
        knobs = flatten(config or {})
        df = result.metrics_dataframe
        values = [float(v) for v in df[metric].tolist() if _finite(v)] if df is not None and metric in df else []
        last = values[-1] if values else None
        best = (max(values) if cfg.mode == "max" else min(values)) if values else None
        score = best if cfg.scope == "all" else last
        folder = trial_output_dir(sweep.where, trial_id)
        steps = _steps_trained(folder)
        max_steps = sweep.trial_config(knobs)["optim"]["max_steps"]
        last_result = result.metrics or {}
        row = {"rank": None, "trial_id": trial_id, "status": status,
               "stopped_early": bool(status == "TERMINATED" and steps is not None and steps < max_steps),
               "steps": steps, metric: score, f"{metric}_last": last, "reports": len(values),
               "loss": last_result.get("loss") if _finite(last_result.get("loss")) else None}
        for k in sweep.knobs:
            row[k.column] = knobs.get(k.key)
        row["error"] = _error_line(result.error) if result.error else ""
        row["trial_dir"] = str(folder)
        rows.append(row)
    sign = -1.0 if cfg.mode == "max" else 1.0
    rows.sort(key=lambda r: (not _finite(r[metric]), sign * r[metric] if _finite(r[metric]) else 0.0, r["trial_id"]))
    rank = 0
    for r in rows:
        if _finite(r[metric]):
            rank += 1
            r["rank"] = rank
    return rows


def _error_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:300]


def _cell(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def to_markdown(sweep: Sweep, rows: list[dict], best_config: Path | None) -> str:
    cfg = sweep.cfg
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    lines = [f"# Sweep `{cfg.name}`", "",
             f"- metric: `{cfg.metric}` ({cfg.mode}, ranked by {'best' if cfg.scope == 'all' else 'last'} "
             f"reported value); searcher: {cfg.searcher}; scheduler: "
             + (f"ASHA (time_attr {cfg.asha.time_attr}, grace {cfg.asha.grace_period}, "
                f"reduction {cfg.asha.reduction_factor:g}, max_t {cfg.asha.max_t})" if cfg.asha.enabled else "FIFO"),
             f"- trials: {len(rows)} of {sweep.expected_trials} ("
             + ", ".join(f"{n} {s.lower()}" for s, n in sorted(statuses.items()))
             + f"; {sum(bool(r['stopped_early']) for r in rows)} stopped early)",
             f"- best config: `{best_config}`" if best_config else "- best config: none (no trial reported the metric)",
             ""]
    cols = [c for c in (rows[0] if rows else {}) if c not in ("trial_dir", "error")]
    if any(r["error"] for r in rows):
        cols.append("error")
    header = [c.removeprefix("config/") for c in cols]
    lines.append(markdown_table(header, [[_cell(r[c]) for c in cols] for r in rows]))
    return "\n".join(lines) + "\n"


def best_config(sweep: Sweep, row: dict) -> dict:
    """The best trial's full pretraining config as a dict, with its own output folder."""
    knobs = {k.key: row[k.column] for k in sweep.knobs}
    data = merge(sweep.trial_config(knobs), {"run": {"output_dir": sweep.loc.join("best-run").uri,
                                                       "name": f"{sweep.base['run']['name']}-best"}})
    config_from_dict(data, PretrainConfig, "best config")  # it must load; fail here rather than for the user
    return data


def write_best_config(sweep: Sweep, row: dict, path: Path) -> Path:
    cfg = sweep.cfg
    header = (f"# Best trial {row['trial_id']} of sweep '{cfg.name}' ({sweep.source}): "
              f"{cfg.metric}={row[cfg.metric]:.6g} ({cfg.mode}).\n"
              f"# Knobs: {', '.join(f'{k.key}={row[k.column]!r}' for k in sweep.knobs)}\n"
              f"# Run it: msm pretrain --config {path}\n")
    return atomic_write_text(path, header + yaml.safe_dump(best_config(sweep, row), sort_keys=False))


def _numeric(values: list) -> bool:
    return all(_finite(v) for v in values)


def write_plot(sweep: Sweep, rows: list[dict], path: Path) -> Path | None:
    """The ranking score against each knob, one panel per knob."""
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    metric = sweep.cfg.metric
    scored = [r for r in rows if _finite(r[metric])]
    if not scored or not sweep.knobs:
        return None
    n = len(sweep.knobs)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, knob in zip(axes.flat, sweep.knobs):
        xs = [r[knob.column] for r in scored]
        ys = [r[metric] for r in scored]
        early = [bool(r["stopped_early"]) for r in scored]
        if knob.categorical and not _numeric(list(knob.values)):
            labels = [json.dumps(v) if not isinstance(v, str) else v for v in knob.values]
            pos = {json.dumps(v): i for i, v in enumerate(knob.values)}
            xs = [pos.get(json.dumps(x), -1) for x in xs]
            ax.set_xticks(range(len(labels)), labels, rotation=20)
        elif knob.kind == "loguniform" or (_numeric(list(knob.values)) and min(knob.values) > 0
                                          and max(knob.values) / min(knob.values) >= 100):
            ax.set_xscale("log")
        full = [(x, y) for x, y, e in zip(xs, ys, early) if not e]
        cut = [(x, y) for x, y, e in zip(xs, ys, early) if e]
        if full:
            ax.scatter(*zip(*full), color="tab:blue", label="finished")
        if cut:
            ax.scatter(*zip(*cut), facecolors="none", edgecolors="tab:red", label="stopped early")
        ax.set_xlabel(knob.key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="small")
    fig.suptitle(f"{sweep.cfg.name}: {metric} ({'best' if sweep.cfg.scope == 'all' else 'last'} per trial, "
                 f"{sweep.cfg.mode}) vs knob")
    fig.tight_layout()
    return atomic_write_png(path, fig, dpi=100)


FINAL_STATES = ("TERMINATED", "ERROR")


@dataclass
class SweepOutcome:
    sweep_dir: Path
    rows: list[dict]  # sorted trial rows (trial_rows)
    files: dict[str, Path] = field(default_factory=dict)  # results_csv, results_json, results_md, best_config, plot
    interrupted: bool = False  # trials unfinished or not yet created: continue with --resume

    @property
    def best(self) -> dict | None:
        return self.rows[0] if self.rows and self.rows[0].get("rank") == 1 else None


def write_report(sweep: Sweep, grid):
    """Write every output for a finished (or interrupted) ``ResultGrid``; return a :class:`SweepOutcome`."""

    out = sweep.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(sweep, grid)
    metric = sweep.cfg.metric
    files: dict[str, Path] = {}
    best = rows[0] if rows and rows[0]["rank"] == 1 else None
    stale = out / "best_config.yaml"
    if best is not None:
        files["best_config"] = write_best_config(sweep, best, out / "best_config.yaml")
    elif stale.is_file():
        stale.unlink()
    files["results_csv"] = atomic_write_text(out / "results.csv", to_csv(rows))
    files["results_json"] = atomic_write_json(out / "results.json", {
        "sweep": sweep.cfg.name, "metric": metric, "mode": sweep.cfg.mode, "scope": sweep.cfg.scope,
        "searcher": sweep.cfg.searcher, "knobs": [k.column for k in sweep.knobs], "best": best,
        "best_config": sweep.loc.join("best_config.yaml").uri if best else None, "trials": rows,
        "complete": not (len(rows) < sweep.expected_trials or any(r["status"] not in FINAL_STATES for r in rows))})
    files["results_md"] = atomic_write_text(out / "results.md", to_markdown(sweep, rows, files.get("best_config")))
    plot = write_plot(sweep, rows, out / f"{metric}_vs_knobs.png")
    if plot is not None:
        files["plot"] = plot
    else:  # no plot this time: an older one is stale
        (out / f"{metric}_vs_knobs.png").unlink(missing_ok=True)
        if not sweep.loc.local:
            sweep.loc.join(f"{metric}_vs_knobs.png").delete()
    interrupted = len(rows) < sweep.expected_trials or any(r["status"] not in FINAL_STATES for r in rows)
    if best is None and not sweep.loc.local:
        sweep.loc.join("best_config.yaml").delete()
    sweep.upload("best_config.yaml", "results.csv", "results.md", f"{metric}_vs_knobs.png", "results.json")  # json last
    return SweepOutcome(out, rows, files, interrupted)


__all__ = ["FINAL_STATES", "SweepOutcome", "best_config", "to_csv", "to_markdown", "trial_rows", "write_best_config", "write_plot", "write_report"]
