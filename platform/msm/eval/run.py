"""``msm eval``: one model, several tasks, one report (Markdown + JSON)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from msm.errors import MSMError
from msm.eval.report import Result, markdown, write_report

TASKS = {"lareqa": "msm.eval.tasks.lareqa", "tatoeba": "msm.eval.tasks.tatoeba", "mrtydi": "msm.eval.tasks.mrtydi",
         "xor_retrieve": "msm.eval.tasks.xor_retrieve", "mewsli_x": "msm.eval.tasks.mewsli_x"}


def run_eval(model: str, tasks: list[str], data_dir: Path, out_dir: Path | None = None, langs: list[str] | None = None,
             limit: int | None = None, batch_size: int = 64, max_length: int = 256, log=print) -> list[Result]:
    from msm.retrieval.encoder import Encoder

    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise MSMError(f"unknown task(s) {unknown}; available: {', '.join(TASKS)}")
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
        config = {"tasks": tasks, "data_dir": str(data_dir), "langs": langs, "limit": limit, "max_length": max_length,
                  "pooling": encoder.pooling, "prefixes": encoder.prefixes, "truncated_texts": encoder.truncated}
        write_report(out_dir, model, results, config, seconds)
        log(f"wrote {out_dir}/results.md and results.json")
    return results
