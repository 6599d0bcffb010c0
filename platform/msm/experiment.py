"""``make results``: does MSM continued pretraining help the offline e5-small at a CPU budget? (issue: end to end)

Every variant trains the same start model on the same mined documents (``make demo``'s mine stage) for the same
steps and seeds, in-process (``msm.train.trainer.run_local``), then is evaluated on Tatoeba (18 languages, the
first ``--pairs`` pairs each). Results go to ``outputs/experiment/results.json`` and the section between the
``experiment`` markers of ``docs/RESULTS.md``.

    python -m msm.experiment                       # all variants, seeds 0 and 1 for the main two
    python -m msm.experiment --variants reference,no-bank --seeds 0 --steps 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from msm.config import load_config, parse_overrides

REPO = Path(__file__).resolve().parents[2]
VARIANTS = {  # name -> overrides of configs/demo/pretrain.yaml
    "reference": [],  # single-language batches, memory bank, balance bias (as the paper)
    "cross-lingual": ["data.cross_lingual=0.5"],  # + code-switched copies of aligned documents (ours)
    "no-doc-encoder": ["model.doc_encoder=false"],  # predict a sentence from the mean of its neighbours
    "no-bias": ["model.balance_bias=0.0"],
    "no-bank": ["model.memory_bank_size=0"],
    "mlm-only": ["model.doc_weight=0.0", "model.mlm_weight=1.0"],
}
TWO_SEEDS = ("reference", "cross-lingual")
START, END = "<!-- experiment:start -->", "<!-- experiment:end -->"


def train(variant: str, seed: int, steps: int, out: Path, mined: Path, data_dir: Path | None) -> Path:
    from msm.model.msm import MSMModel
    from msm.train.config import PretrainConfig
    from msm.train.loop import latest_local_checkpoint
    from msm.train.trainer import export, run_local

    target = out / f"{variant}-seed{seed}"
    if (target / "export" / "config.json").is_file():
        return target / "export"
    overrides = [f"data.path={mined}", f"run.output_dir={target}", f"run.seed={seed}", f"optim.max_steps={steps}",
                 f"run.checkpoint_every={max(1, steps // 5)}", "run.keep_checkpoints=1", "validation.every_steps=-1",
                 *VARIANTS[variant]]
    if data_dir:
        overrides.append(f"data.data_dir={data_dir}")
    cfg = load_config(REPO / "configs" / "demo" / "pretrain.yaml", PretrainConfig, parse_overrides(overrides))
    run_local(cfg, resume=latest_local_checkpoint(target) is not None)  # an interrupted call continues
    export(MSMModel.load(latest_local_checkpoint(target) / "model"), target)
    return target / "export"


def evaluate(model: str, data_dir: Path, pairs: int) -> dict[str, float]:
    from msm.eval.run import run_eval

    results = run_eval(model, ["tatoeba"], data_dir, limit=pairs, max_length=128, log=lambda *_: None)
    return {f"{r.language} {r.metric}": r.value for r in results}


def table(rows: dict[str, list[dict[str, float]]], keys: list[str]) -> str:
    lines = ["| model | seeds | " + " | ".join(keys) + " |", "|---|---:|" + "---:|" * len(keys)]
    for name, runs in rows.items():
        cells = []
        for k in keys:
            vals = [r[k] for r in runs]
            cells.append(f"{statistics.mean(vals):.3f}" + (f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else ""))
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from msm.model.smoke import default_data_dir

    p = argparse.ArgumentParser(prog="python -m msm.experiment", description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0,1", help="seeds for reference and cross-lingual; others use the first")
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--pairs", type=int, default=200, help="Tatoeba pairs per language")
    p.add_argument("--mined", default=str(REPO / "outputs" / "demo" / "mine"), help="an `msm mine` output")
    p.add_argument("--out", default=str(REPO / "outputs" / "experiment"))
    args = p.parse_args(argv)
    d = default_data_dir()
    if d is None or not (Path(d) / "tatoeba").is_dir():
        print("msm experiment: error: needs the Tatoeba data (set MSM_DATA_DIR to the folder holding tatoeba/)",
              file=sys.stderr)
        return 2
    mined, out = Path(args.mined), Path(args.out)
    if not (mined / "manifest.json").is_file():
        print(f"msm experiment: error: {mined} is not an `msm mine` output; run `make demo` (its mine stage) first",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = out / "results.json"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    t0 = time.perf_counter()
    variants = args.variants.split(",")  # first seed of every variant, then the extra seeds
    jobs = ([("e5-small (start)", None, 0)] + [(v, v, seeds[0]) for v in variants]
            + [(v, v, s) for s in seeds[1:] for v in variants if v in TWO_SEEDS])
    for name, variant, seed in jobs:
        key = f"{name}|{seed}|{args.steps if variant else 0}|{args.pairs}"  # the start model has no steps
        if key in done:
            continue
        t = time.perf_counter()
        model = "e5-small" if variant is None else str(train(variant, seed, args.steps, out, mined, d))
        done[key] = {"model": name, "seed": seed, "scores": evaluate(model, Path(d), args.pairs),
                     "seconds": round(time.perf_counter() - t, 1)}
        cache.write_text(json.dumps(done, indent=2))
        print(f"{name} seed {seed}: {done[key]['scores']['mean acc@1 xxx->eng']:.3f} xxx->eng "
              f"({done[key]['seconds']:.0f}s)", flush=True)
    rows: dict[str, list[dict[str, float]]] = {}
    for key, r in done.items():
        if key.endswith((f"|{args.steps}|{args.pairs}", f"|0|{args.pairs}")):
            rows.setdefault(r["model"], []).append(r["scores"])
    langs = ["deu", "fra", "rus", "cmn", "ara", "swh"]
    keys = ["mean acc@1 xxx->eng", "mean acc@1 eng->xxx"] + [f"{lang} acc@1 xxx->eng" for lang in langs]
    md = (f"{args.steps} steps × 4 documents × 8 sentences × 32 tokens on `{mined.name}` "
          f"(seeds {args.seeds}); Tatoeba, 18 languages, first {args.pairs} pairs each; "
          f"`python -m msm.experiment --steps {args.steps} --pairs {args.pairs}` "
          f"({time.perf_counter() - t0:.0f}s this call).\n\n" + table(rows, keys))
    print(md)
    results_md = REPO / "docs" / "RESULTS.md"
    text = results_md.read_text()
    if START in text and END in text:
        text = text[: text.index(START) + len(START)] + "\n" + md + "\n" + text[text.index(END):]
        results_md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
