"""``msm eval``: one model, several tasks, one report (Markdown + JSON)."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

from msm.encoders.resolve import check_model
from msm.errors import MSMError
from msm.eval.report import Result, markdown, write_report
from msm.output import Kind, claim
from msm.uri import resolve

TASKS = {"lareqa": "msm.eval.tasks.lareqa", "tatoeba": "msm.eval.tasks.tatoeba", "mrtydi": "msm.eval.tasks.mrtydi",
         "xor_retrieve": "msm.eval.tasks.xor_retrieve", "mewsli_x": "msm.eval.tasks.mewsli_x"}


def _eval_settings(text: str) -> dict | None:
    """The settings of an ``msm eval`` report: its ``settings`` (an older report: its model and config)."""

    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("verb", "eval") != "eval" or "results" not in obj:
        return None
    return obj.get("settings") or {"model": obj.get("model"), "config": obj.get("config")}


OUTPUT = Kind("eval", "results.json", frozenset({"results.json", "results.md"}), _eval_settings, what="--out")


def task_languages(task: str, data_dir: Path) -> list[str] | None:
    """The languages ``task`` has in ``data_dir`` (None: known only once its data is read)."""
    module = importlib.import_module(TASKS[task])
    if task == "tatoeba":
        return module.languages(Path(data_dir) / "tatoeba")
    if task == "mrtydi":
        return module.languages(Path(data_dir) / "mrtydi")
    if task == "lareqa":
        return [lang for lang in module.LANGS if (Path(data_dir) / "xquad-r" / f"{lang}.json").is_file()]
    return None


def check_eval(tasks: list[str], data_dir: Path, langs: list[str] | None) -> None:
    """Before any model is loaded: known tasks, and languages each task has (a run never fails half-way over a
    language that was never there)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise MSMError(f"--tasks: unknown task(s) {unknown}; available: {', '.join(TASKS)}")
    for task in tasks:
        have = task_languages(task, data_dir)
        if have is None:
            continue
        if not have:
            raise MSMError(f"{task}: no data under {data_dir} (see docs/evaluation.md for the layout); fix --data-dir")
        missing = [lang for lang in langs or [] if lang not in have]
        if missing:
            raise MSMError(f"--langs: {task} has no language {', '.join(map(repr, missing))} in {data_dir} (it has "
                           f"{', '.join(have)}); pass languages every task has, or one task at a time")


def run_eval(model: str, tasks: list[str], data_dir: Path, out_dir: str | Path | None = None,
             langs: list[str] | None = None, limit: int | None = None, batch_size: int = 64, max_length: int = 256,
             log=print, overwrite: bool = False, data_source: str | None = None) -> list[Result]:
    """Evaluate ``model`` on ``tasks``; with ``out_dir``, write ``results.json`` / ``results.md`` there under the
    output contract (:mod:`msm.output`: the same settings' report is reused, another's replaced only with
    ``overwrite``, a folder holding anything else refused), checked with the tasks, languages and model before the
    model loads. ``data_source``: where ``data_dir`` (a local copy) came from, a URI; the report records it, so the
    same evaluation on another machine is the same settings."""
    from msm.retrieval.encoder import Encoder  # lazy: numpy, torch

    if limit is not None and limit < 1:
        raise MSMError(f"--max-queries: {limit}; pass a whole number >= 1 (or leave it out for every query)")
    settings = {"model": str(model), "tasks": list(tasks), "data_dir": data_source or str(data_dir), "langs": langs,
                "limit": limit, "max_length": max_length}
    if out_dir is not None:
        found = claim(str(out_dir), OUTPUT, settings, overwrite)
        if found.state == "same" and not overwrite:
            log(f"{out_dir}: already holds this evaluation's report; reusing it (--overwrite evaluates again)")
            return read_results(out_dir)
    check_eval(tasks, data_dir, langs)
    check_model(model, "--model")
    start = time.perf_counter()
    encoder = Encoder(model, max_length=max_length, batch_size=batch_size)
    results: list[Result] = []
    for task in tasks:
        t0 = time.perf_counter()
        results += importlib.import_module(TASKS[task]).evaluate(encoder, data_dir, langs=langs, limit=limit,
                                                                  show_progress=True)
        log(f"{task}: {time.perf_counter() - t0:.0f}s")
    seconds = time.perf_counter() - start
    log(markdown(model, results))
    if out_dir is not None:
        config = {"tasks": tasks, "data_dir": data_source or str(data_dir), "langs": langs, "limit": limit, "max_length": max_length,
                  "pooling": encoder.pooling, "prefixes": encoder.prefixes, "truncated_texts": encoder.truncated}
        write_report(out_dir, model, results, config, seconds, settings=settings)
        log(f"wrote {out_dir}/results.md and results.json")
    return results


def read_results(out_dir: str | Path) -> list[Result]:
    """The results of a written report."""


    rows = json.loads(resolve(out_dir).join("results.json").read_text())["results"]
    return [Result(r["task"], r["language"], r["metric"], r["value"], r["count"]) for r in rows]
