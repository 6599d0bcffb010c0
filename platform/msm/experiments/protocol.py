"""The paper's protocol on XQuAD-R: start model → (MSM) → fine-tune on English → zero-shot cross-lingual LAReQA.

``msm experiment protocol`` (or ``make protocol``). XQuAD-R's 48 articles (11-way parallel,
same titles in every language) are split in two with a fixed seed (``--split-seed``): fine-tuning reads the
**English** questions of the training half (answer sentence + paragraph, as LAReQA's candidates), evaluation is
LAReQA mAP@20 on the held-out half with the candidates of all 11 languages pooled (the official protocol of
:mod:`msm.eval.tasks.lareqa`, restricted to the held-out articles). Rows, each with the same fine-tuning
(``configs/finetune/protocol-xquad-r-cpu.yaml``) and the same seeds:

- ``start``: the start model as it is (no training, seed-independent);
- ``finetune``: start → fine-tune;
- ``msm-reference``: start → MSM (the reference recipe of ``make results``, ``--msm-steps``) → fine-tune;
- ``msm-cross-lingual``: start → MSM (our code-switched variant) → fine-tune.

Reported per row (mean ± sd over seeds): mAP@20 per question language and the mean, the Tatoeba mean acc@1, and
the language-bias diagnostic: of the questions whose top-1 candidate is relevant, the share whose top-1 is in the
question's own language (with every language relevant, an unbiased retriever is near 1/11). Scores are cached in
``<out>/results.json`` per (row, seed, settings), so a re-run skips finished rows; the table goes to the section
``<!-- protocol:start -->`` … ``<!-- protocol:end -->`` of ``docs/RESULTS.md``.

    msm experiment protocol                                       # every row, seeds 0 and 1
    msm experiment protocol --rows start,finetune --seeds 0 --steps 2 \\
        --encoder tiny-random --langs en,de --pairs 20 --out /tmp/p                # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

from msm.config import load_config, parse_overrides
from msm.errors import MSMError
from msm.experiments.common import device_name
from msm.experiments.common import evaluate as evaluate_tasks
from msm.experiments.common import score_table, train_variant, write_section
from msm.finetune.config import FinetuneConfig
from msm.finetune.trainer import has_local_checkpoint, run_local
from msm.io import atomic_write_json

PROG = "msm experiment protocol"
ROWS = {"start": None, "finetune": None, "msm-reference": "reference", "msm-cross-lingual": "cross-lingual"}
LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


# ---- the article split -----------------------------------------------------------------------------------------

def split_articles(xquad_dir: Path, seed: int, langs: list[str] | None = None) -> tuple[list[int], list[int]]:
    """(training, held-out) article indices: half of the articles each, drawn with ``seed``; the files must be
    parallel (same titles in the same order in every language)."""
    titles = None
    for lang in langs or LANGS:
        path = xquad_dir / f"{lang}.json"
        if not path.is_file():
            raise MSMError(f"{path} not found; pass --data-dir with an xquad-r/ folder (../shared/data)")
        these = [a["title"] for a in json.loads(path.read_text(encoding="utf-8"))["data"]]
        if titles is not None and these != titles:
            raise MSMError(f"{path}: its articles differ from the other languages'; XQuAD-R files must be 11-way "
                           "parallel (re-download them)")
        titles = these
    order = list(range(len(titles)))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return sorted(order[:half]), sorted(order[half:])


def write_subset(src: Path, dst: Path, articles: list[int]) -> Path:
    """The SQuAD-format file ``src`` with only ``articles`` (indices), at ``dst``."""
    obj = json.loads(src.read_text(encoding="utf-8"))
    obj["data"] = [a for i, a in enumerate(obj["data"]) if i in set(articles)]
    atomic_write_json(dst, obj)
    return dst


def prepare_data(data_dir: Path, out: Path, split_seed: int, langs: list[str]) -> tuple[Path, Path]:
    """(English training file, held-out folder holding ``xquad-r/<lang>.json``) under ``out/data``."""
    xquad = data_dir / "xquad-r"
    train, held = split_articles(xquad, split_seed, langs)
    folder = out / f"data-split{split_seed}"
    train_file = write_subset(xquad / "en.json", folder / "train-en.json", train)
    for lang in langs:
        write_subset(xquad / f"{lang}.json", folder / "heldout" / "xquad-r" / f"{lang}.json", held)
    atomic_write_json(folder / "split.json", {"seed": split_seed, "train": train, "heldout": held})
    return train_file, folder / "heldout"


# ---- evaluation ------------------------------------------------------------------------------------------------

def lareqa_scores(encoder, heldout: Path, langs: list[str], k: int = 20) -> dict[str, float]:
    """Per-language and mean mAP@k (:mod:`msm.eval.tasks.lareqa`'s official scoring of its ranking) and the
    language-bias shares (:func:`msm.eval.tasks.lareqa.language_bias`), from one ranking."""
    from msm.eval.tasks.lareqa import language_bias, load, rank, score  # lazy: numpy

    data = load(heldout / "xquad-r", langs)
    top = rank(encoder, data, k)
    scores = {f"{r.language} {r.metric}": r.value for r in score(data, top, k)}
    scores.update(language_bias(data, top))
    return scores


def evaluate(model: str, data_dir: Path, heldout: Path, langs: list[str], pairs: int,
             max_length: int = 256) -> dict[str, float]:
    """LAReQA on the held-out articles (passages cut at ``max_length``, the fine-tuning's) + the Tatoeba means."""
    from msm.retrieval.encoder import Encoder  # lazy: numpy, torch

    scores = lareqa_scores(Encoder(model, max_length=max_length), heldout, langs)
    if pairs > 0:
        scores.update({k: v for k, v in evaluate_tasks(model, data_dir, pairs, ["tatoeba"]).items()
                       if k.startswith("mean")})
    return scores


# ---- training --------------------------------------------------------------------------------------------------

def finetune(start: str, seed: int, target: Path, train_file: Path, config: Path, steps: int | None,
             extra: list[str]) -> Path:
    """Fine-tune ``start`` into ``target`` (an interrupted run continues) and return its exported HF folder."""

    if (target / "export" / "config.json").is_file():
        return target / "export"
    overrides = [f"model.encoder={start}", f"data.path={train_file}", f"train.seed={seed}",
                 f"run.output_dir={target}"] + ([f"train.max_steps={steps}"] if steps else []) + extra
    cfg = load_config(config, FinetuneConfig, parse_overrides(overrides))
    run_local(cfg, resume=has_local_checkpoint(cfg), log=lambda *_: None)
    return target / "export"


def table(done: dict, run_id: str, keys: list[str]) -> str:
    rows: dict[str, list[dict]] = {}
    for r in done.values():
        if r["run"] == run_id:
            rows.setdefault(r["row"], []).append(r["scores"])
    return score_table({name: rows[name] for name in ROWS if rows.get(name)}, keys, label="row")


def main(argv: list[str] | None = None) -> int:
    from msm.data.readers import default_data_dir  # lazy: pyarrow

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"subset of {', '.join(ROWS)}")
    p.add_argument("--seeds", default="0,1", help="fine-tuning (and MSM) seeds")
    p.add_argument("--encoder", default="e5-small", help="the start model (alias, HF folder)")
    p.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the config's epochs)")
    p.add_argument("--msm-steps", type=int, default=80, help="MSM pretraining steps (the demo budget of make results)")
    p.add_argument("--split-seed", type=int, default=0, help="the article split (fixed across rows and seeds)")
    p.add_argument("--langs", default=",".join(LANGS), help="XQuAD-R languages pooled (default: all 11)")
    p.add_argument("--pairs", type=int, default=200, help="Tatoeba pairs per language (0: skip Tatoeba)")
    p.add_argument("--config", default="configs/finetune/protocol-xquad-r-cpu.yaml")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="fine-tuning config overrides")
    p.add_argument("--msm-config", default="configs/demo/pretrain.yaml")
    p.add_argument("--msm-set", nargs="*", default=[], metavar="KEY=VALUE", help="MSM pretraining overrides")
    p.add_argument("--mined", default="outputs/demo/mine", help="an `msm mine` output (MSM rows)")
    p.add_argument("--data-dir", default=None, help="folder with xquad-r/ and tatoeba/ (default: $MSM_DATA_DIR)")
    p.add_argument("--out", default="outputs/protocol")
    p.add_argument("--section", default="protocol")
    p.add_argument("--results-md", default="docs/RESULTS.md")
    args = p.parse_args(argv)
    rows, langs = args.rows.split(","), args.langs.split(",")
    bad = [r for r in rows if r not in ROWS] + [lang for lang in langs if lang not in LANGS]
    if bad:
        print(f"{PROG}: error: unknown row(s)/language(s) {bad}; rows: {', '.join(ROWS)}; languages: "
              f"{', '.join(LANGS)}", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if data_dir is None or not (Path(data_dir) / "xquad-r").is_dir():
        print(f"{PROG}: error: needs XQuAD-R: pass --data-dir (or set MSM_DATA_DIR) to the folder holding "
              "xquad-r/ and tatoeba/", file=sys.stderr)
        return 2
    mined = Path(args.mined)
    if any(ROWS[r] for r in rows) and not (mined / "manifest.json").is_file():
        print(f"{PROG}: error: {mined} is not an `msm mine` output, needed by the MSM rows; run "
              "`python -m msm.demo --stage model --stage mine` first (or pass --rows start,finetune)", file=sys.stderr)
        return 2
    data_dir, out, config = Path(data_dir), Path(args.out), Path(args.config)

    max_length = load_config(config, FinetuneConfig, parse_overrides(args.set)).model.passage_max_length
    command = " ".join([PROG] + (argv if argv is not None else sys.argv[1:]))
    settings = [args.encoder, args.steps, args.msm_steps, args.split_seed, langs, args.pairs, config.name, args.set,
                Path(args.msm_config).name, args.msm_set, mined.name]
    run_id = hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:8]
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "results.json"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    train_file, heldout = prepare_data(data_dir, out, args.split_seed, langs)
    seeds = [int(s) for s in args.seeds.split(",")]
    device = device_name(False)
    t0 = time.perf_counter()
    for row in rows:
        for seed in ([0] if row == "start" else seeds):
            key = f"{row}|{seed}|{run_id}"
            if key in done:
                continue
            t = time.perf_counter()
            start = args.encoder
            if ROWS[row]:
                # its own folder: "msm-<variant>-..." would be the fine-tuning's (row "msm-<variant>"), whose
                # finished export would then be taken for the fine-tuned model
                start = str(train_variant(ROWS[row], seed, args.msm_steps,
                                      out / f"pretrain-{ROWS[row]}-seed{seed}-{run_id}",
                                      mined, data_dir, Path(args.msm_config),
                                      [f"model.encoder={args.encoder}", *args.msm_set]))
            model = start if row == "start" else str(
                finetune(start, seed, out / f"{row}-seed{seed}-{run_id}", train_file, config, args.steps, args.set))
            shown = Path(model).relative_to(out).as_posix() if Path(model).is_relative_to(out) else model
            done[key] = {"row": row, "seed": seed, "run": run_id, "device": device, "model": shown,  # under --out
                         "scores": evaluate(model, data_dir, heldout, langs, args.pairs, max_length),
                         "seconds": round(time.perf_counter() - t, 1)}
            atomic_write_json(cache, done)
            print(f"{row} seed {seed}: mAP@20 {done[key]['scores']['mean mAP@20']:.3f} "
                  f"({done[key]['seconds']:.0f}s)", flush=True)
    keys = (["mean mAP@20"] + [f"{lang} mAP@20" for lang in langs] + ["own-language share of top-1 hits"]
            + (["mean acc@1 xxx->eng"] if args.pairs > 0 else []))
    split = json.loads((train_file.parent / "split.json").read_text())
    md = (f"Start `{args.encoder}`; XQuAD-R split by article (seed {args.split_seed}: {len(split['train'])} articles "
          f"fine-tune on English, {len(split['heldout'])} held out, {len(langs)} languages pooled); fine-tuning `{config.name}`{f' {args.steps} steps' if args.steps else ''}; MSM "
          f"{args.msm_steps} steps; seeds {args.seeds}; on {device}; `{command}` "
          f"({time.perf_counter() - t0:.0f}s this call).\n\n" + table(done, run_id, keys))
    print(md)
    write_section(Path(args.results_md), args.section, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
