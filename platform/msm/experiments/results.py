"""``msm experiment results`` (``make results``): does MSM continued pretraining help the offline e5-small at a CPU
budget?

Every variant trains the same start model on the same mined documents (``make demo``'s mine stage) for the same
steps and seeds, in-process (``msm.train.trainer.run_local``), then is evaluated on Tatoeba (18 languages, the
first ``--pairs`` pairs each) and, with ``--tasks tatoeba,lareqa``, on XQuAD-R (mAP@20, the full 11-language
pool). Scores go to ``<out>/results.json`` (a re-run skips what is there) and the table to the section between
``<!-- <section>:start -->`` and ``<!-- <section>:end -->`` of ``docs/RESULTS.md``.

    msm experiment results                       # all variants, seeds 0 and 1 for the main two
    msm experiment results --variants reference,no-bank --seeds 0 --steps 40
    msm experiment results --tasks tatoeba,lareqa --pairs 1000 --two-seeds all \\
        --section experiment-gpu --set run.use_gpu=true          # on a GPU machine
    msm experiment results --report-only --out <folder with results.json> --section ...   # table only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from msm.experiments.common import (
    VARIANTS,
    device_name,
    evaluate,
    pretrain_config,
    score_table,
    train_variant,
    write_section,
)
from msm.io import atomic_write_json

TWO_SEEDS = ("reference", "cross-lingual")
TASKS = ("tatoeba", "lareqa")
LANGS = ["deu", "fra", "rus", "cmn", "ara", "swh"]  # Tatoeba columns besides the means
PROG = "msm experiment results"


def report(done: dict, run: dict, command: str, seconds: float | None) -> str:
    """The Markdown section: what was run, on which device, and the table (mean ± sd over seeds)."""
    rows: dict[str, list[dict[str, float]]] = {}
    for r in done.values():
        if r.get("run") in (run["id"], run["start_id"]):
            rows.setdefault(r["model"], []).append(r["scores"])
    tasks = run["tasks"]
    keys = (["mean mAP@20"] if "lareqa" in tasks else []) + (
        ["mean acc@1 xxx->eng", "mean acc@1 eng->xxx"] + [f"{lang} acc@1 xxx->eng" for lang in LANGS]
        if "tatoeba" in tasks else [])
    trained = [r for r in done.values() if r.get("run") == run["id"]]
    devices = sorted({r["device"] for r in trained if "device" in r})
    seeds = ",".join(str(s) for s in sorted({r["seed"] for r in trained}))
    took = f" ({seconds:.0f}s this call)" if seconds is not None else ""
    return (f"{run['steps']} steps × {run['shape']} on `{run['mined']}` (seeds run: {seeds or 'none'}) on "
            f"{', '.join(devices) or 'no device recorded'}; "
            + ("XQuAD-R mAP@20 (11 languages, full pool); " if "lareqa" in tasks else "")
            + (f"Tatoeba, 18 languages, first {run['pairs']} pairs each; " if "tatoeba" in tasks else "")
            + f"`{command}`{took}.\n\n" + score_table(rows, keys))


def main(argv: list[str] | None = None) -> int:
    from msm.data.readers import default_data_dir  # lazy: pyarrow

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0,1", help="seeds for the --two-seeds variants; the others use the first")
    p.add_argument("--two-seeds", default=",".join(TWO_SEEDS), help="variants run with every seed ('all': each)")
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--pairs", type=int, default=200, help="Tatoeba pairs per language")
    p.add_argument("--tasks", default="tatoeba", help="tatoeba and/or lareqa (XQuAD-R: ~20 min a model on 2 CPUs)")
    p.add_argument("--config", default="configs/demo/pretrain.yaml", help="pretrain config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every variant")
    p.add_argument("--mined", default="outputs/demo/mine", help="an `msm mine` output")
    p.add_argument("--out", default="outputs/experiment")
    p.add_argument("--section", default="experiment", help="the --results-md section to (re)write")
    p.add_argument("--results-md", default="docs/RESULTS.md")
    p.add_argument("--report-only", action="store_true", help="write the table from <out>/results.json, run nothing")
    args = p.parse_args(argv)
    command = " ".join([PROG] + (argv if argv is not None else sys.argv[1:]))
    variants, tasks = args.variants.split(","), args.tasks.split(",")
    unknown = [v for v in variants if v not in VARIANTS] + [t for t in tasks if t not in TASKS]
    if unknown:
        print(f"{PROG}: error: unknown variant(s)/task(s) {unknown}; variants: {', '.join(VARIANTS)}; "
              f"tasks: {', '.join(TASKS)}", file=sys.stderr)
        return 2
    mined, out, config = Path(args.mined), Path(args.out), Path(args.config)
    cfg = pretrain_config(config, args.set)
    run = {"steps": args.steps, "pairs": args.pairs, "tasks": tasks, "seeds": args.seeds, "mined": mined.name,
           "shape": f"{cfg.data.docs_per_batch} documents × {cfg.model.max_sentences} sentences × "
                    f"{cfg.model.max_tokens} tokens"}
    run["id"] = hashlib.sha1(json.dumps([run, config.name, args.set]).encode()).hexdigest()[:8]
    run["start_id"] = f"start-{cfg.model.encoder}-{args.pairs}-{'+'.join(tasks)}"
    cache = out / "results.json"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    if args.report_only:
        md = report(done, run, command.replace(" --report-only", ""), None)
        print(md)
        write_section(Path(args.results_md), args.section, md)
        return 0
    d = default_data_dir()
    if d is None or not all((Path(d) / ("xquad-r" if t == "lareqa" else t)).is_dir() for t in tasks):
        print(f"{PROG}: error: needs the evaluation data of {tasks} (set MSM_DATA_DIR to the folder holding "
              "tatoeba/ and xquad-r/)", file=sys.stderr)
        return 2
    if not (mined / "manifest.json").is_file():
        print(f"{PROG}: error: {mined} is not an `msm mine` output; run `make demo` (its mine stage) first",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    two = set(VARIANTS) if args.two_seeds == "all" else set(args.two_seeds.split(","))
    jobs = ([(f"{cfg.model.encoder} (start)", None, 0)] + [(v, v, seeds[0]) for v in variants]  # first seeds, then the others
            + [(v, v, s) for s in seeds[1:] for v in variants if v in two])
    device = device_name(cfg.run.use_gpu)
    t0 = time.perf_counter()
    for name, variant, seed in jobs:
        key = f"{name}|{seed}|{run['start_id'] if variant is None else run['id']}"
        if key in done:
            continue
        t = time.perf_counter()
        model = (cfg.model.encoder if variant is None else
                 str(train_variant(variant, seed, args.steps, out / f"{variant}-seed{seed}-{run['id']}", mined, d,
                                   config, args.set)))
        done[key] = {"model": name, "seed": seed, "run": run["start_id"] if variant is None else run["id"],
                     "device": device, "scores": evaluate(model, Path(d), args.pairs, tasks),
                     "seconds": round(time.perf_counter() - t, 1)}
        atomic_write_json(cache, done)
        means = ", ".join(f"{k} {v:.3f}" for k, v in done[key]["scores"].items() if k.startswith("mean"))
        print(f"{name} seed {seed}: {means} ({done[key]['seconds']:.0f}s)", flush=True)
    md = report(done, run, command, time.perf_counter() - t0)
    print(md)
    write_section(Path(args.results_md), args.section, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
