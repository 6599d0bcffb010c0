"""Driver memory and time at corpus scale: ``msm mine`` / ``msm index`` / ``msm pretrain`` on synthetic corpora of
N, 4N and 16N.

Corpora are real NTREX-128 sentences: ``mine`` gets N documents split evenly over ``--langs``, each document 3-8
sentence indices drawn with a seeded RNG and the same indices in every language (so the documents are
parallel), one JSONL input per language with its ``lang`` declared; ``index`` gets N passages, each one NTREX
line of a random language; ``pretrain`` gets the ``mine`` documents as an ``msm mine`` output (``documents/``, one
sentence list per document: the source both the old and the new pretraining read) and trains, at the paper's
block shape (32 sentences x 64 tokens, 4 documents a batch), ``--steps`` × scale
steps with 2 workers, reporting the driver's peak RSS and a worker's (rank 0's ``max_rss_mb`` in
``metrics.jsonl``). The encoder is the tiny random XLM-R (cheap to run), the mine config is the measured
code's own ``configs/mine/tiny-cpu.yaml`` with the inputs, output and model overridden (pairing defaults kept).

Every measurement runs in a fresh subprocess (the *driver*) that starts its own local Ray (2 CPUs), calls the
library the way the CLI does and reports its own ``ru_maxrss``: the Ray processes (raylet, workers, object
store) are other processes and are not counted; shared-memory pages of Ray objects the driver reads are.
``--baseline-ref REF`` also runs the same drivers on a temporary ``git worktree`` of REF (``PYTHONPATH`` =
its ``platform/``; each row records the ``msm.__file__`` that ran, in the driver and in a Ray worker).

    python benchmarks/scale_memory.py mine --baseline-ref HEAD --only baseline   # the old code, N=5000 x 1,4,16
    python benchmarks/scale_memory.py mine --only current                         # the working tree
    python benchmarks/scale_memory.py index --n 200 --scales 1,4                  # both, quick
    python benchmarks/scale_memory.py pretrain --n 2000 --baseline-ref 41862ed    # old (in-memory) vs streamed

Results are merged into ``benchmarks/results/scale_memory_<workload>.json`` keyed by label (``baseline`` /
``current``). A workload is one entry of ``WORKLOADS``: a corpus maker (parent) and a driver (subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from harness import portable

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
NTREX_TAGS = {"en": "eng", "de": "deu", "fr": "fra", "ru": "rus", "es": "spa", "it": "ita", "pt": "por",
              "pl": "pol", "tr": "tur", "vi": "vie", "zh": "zho-CN", "ja": "jpn", "ko": "kor", "ar": "arb",
              "hi": "hin", "el": "ell", "sw": "swa", "th": "tha"}
RESULT_TAG = "@@RESULT "
RSS_TAG = "@@RSS "  # the driver's peak RSS so far, every RSS_EVERY_S: what a timed-out run still tells
RSS_EVERY_S = 10.0
STARTUP_TIMEOUT = "timed out during startup"  # ray.init's message when the raylet/GCS start too slowly


def ntrex_lines(data_dir: Path, lang: str) -> list[str]:
    f = data_dir / "ntrex" / f"newstest2019-{'src' if lang == 'en' else 'ref'}.{NTREX_TAGS[lang]}.txt"
    return f.read_text(encoding="utf-8").split("\n")[:1997]


# ---------------------------------------------------------------- corpora (parent process, stdlib only)

def make_mine_corpus(out: Path, data_dir: Path, n_docs: int, langs: list[str], seed: int) -> dict:
    """``n_docs`` parallel documents over ``langs`` (``n_docs // len(langs)`` each): one JSONL file per language."""
    per_lang = n_docs // len(langs)
    lines = {lang: ntrex_lines(data_dir, lang) for lang in langs}
    rng = random.Random(seed)
    docs = [rng.sample(range(len(lines[langs[0]])), rng.randint(3, 8)) for _ in range(per_lang)]
    out.mkdir(parents=True, exist_ok=True)
    inputs = []
    for lang in langs:
        f = out / f"{lang}.jsonl"
        if not f.is_file():
            tmp = f.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                for d, idx in enumerate(docs):
                    text = " ".join(lines[lang][i] for i in idx)
                    fh.write(json.dumps({"id": f"d{d}", "text": text, "lang": lang}, ensure_ascii=False) + "\n")
            tmp.rename(f)
        inputs.append({"kind": "jsonl", "path": str(f), "lang": lang})
    return {"inputs": inputs, "documents": per_lang * len(langs),
            "generated_sentences": sum(map(len, docs)) * len(langs)}


def make_pretrain_corpus(out: Path, data_dir: Path, n_docs: int, langs: list[str], seed: int) -> dict:
    """The ``mine`` documents as an ``msm mine`` output folder: ``documents/part-*.parquet`` + ``manifest.json``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_lang = n_docs // len(langs)
    lines = {lang: ntrex_lines(data_dir, lang) for lang in langs}
    rng = random.Random(seed)
    docs = [rng.sample(range(len(lines[langs[0]])), rng.randint(3, 8)) for _ in range(per_lang)]
    folder = out / "mined"
    if not (folder / "manifest.json").is_file():
        (folder / "documents").mkdir(parents=True, exist_ok=True)
        for lang in langs:
            rows = [{"doc_id": f"{lang}:d{d}", "lang": lang, "sentences": [lines[lang][i] for i in idx]}
                    for d, idx in enumerate(docs)]
            for k in range(0, len(rows), 5000):
                pq.write_table(pa.Table.from_pylist(rows[k:k + 5000]), folder / "documents" / f"{lang}-{k:07d}.parquet")
        (folder / "manifest.json").write_text("{}")
    return {"mined": str(folder), "documents": per_lang * len(langs),
            "generated_sentences": sum(map(len, docs)) * len(langs)}


def make_index_corpus(out: Path, data_dir: Path, n_passages: int, langs: list[str], seed: int) -> dict:
    """``n_passages`` passages, each one NTREX line of a random language of ``langs``, in one JSONL file."""
    lines = {lang: ntrex_lines(data_dir, lang) for lang in langs}
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    f = out / "corpus.jsonl"
    if not f.is_file():
        tmp = f.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for p in range(n_passages):
                lang = rng.choice(langs)
                fh.write(json.dumps({"id": f"p{p}", "text": rng.choice(lines[lang])}, ensure_ascii=False) + "\n")
        tmp.rename(f)
    return {"corpus": str(f), "documents": n_passages}


# ---------------------------------------------------------------- drivers (subprocess, imports msm)

def _start_ray() -> dict:
    """A fresh local Ray for this driver; returns where ``msm`` is imported from here and in a Ray worker."""
    import ray

    import msm

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})

    @ray.remote
    def where() -> str:
        import msm as m

        return m.__file__

    return {"msm_file": msm.__file__, "worker_msm_file": ray.get(where.remote())}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def drive_mine(spec: dict) -> dict:
    """``msm mine --config <root>/configs/mine/tiny-cpu.yaml inputs=... output_dir=... embed.model=...``."""
    from msm.config import load_config, parse_overrides
    from msm.data.config import MineConfig
    from msm.data.pipeline import mine

    overrides = [f"inputs={json.dumps(spec['inputs'])}", f"output_dir={spec['output']}",
                 f"embed.model={spec['model']}", f"data_dir={spec['data_dir']}"]
    cfg = load_config(Path(spec["root"]) / "configs" / "mine" / "tiny-cpu.yaml", MineConfig, parse_overrides(overrides))
    info = _start_ray()
    rss0 = _maxrss_mib()
    t = time.perf_counter()
    manifest = mine(cfg)
    wall = time.perf_counter() - t
    c = manifest["counts"]
    return {**info, "rss_before_mib": round(rss0, 1), "driver_peak_rss_mib": round(_maxrss_mib(), 1),
            "wall_s": round(wall, 2), "timings_s": manifest.get("timings_s", {}), "input": c["input"],
            "kept": c["kept"], "quarantined": c["quarantined"], "sentences": c["sentences"], "pairs": c["pairs"],
            "code_version": manifest.get("code_version")}


def drive_index(spec: dict) -> dict:
    """``msm index --corpus <jsonl> --model <tiny> --out <dir> --max-length 64``; counts the index's vectors."""
    import faiss

    from msm.indexing import build_index

    info = _start_ray()
    rss0 = _maxrss_mib()
    t = time.perf_counter()
    out = build_index(spec["corpus"], spec["model"], spec["output"], max_length=64)
    wall = time.perf_counter() - t
    stats = json.loads((Path(out) / "build.json").read_text())
    vectors = faiss.read_index(str(Path(out) / "index" / "index.faiss")).ntotal
    return {**info, "rss_before_mib": round(rss0, 1), "driver_peak_rss_mib": round(_maxrss_mib(), 1),
            "wall_s": round(wall, 2), "vectors": int(vectors), "passages": stats.get("passages"),
            "shards": stats.get("shards"), "count_ok": int(vectors) == spec["documents"]}


def drive_pretrain(spec: dict) -> dict:
    """``msm pretrain --config <root>/configs/pretrain/tiny-cpu.yaml data.source=mined data.path=... `` on 2 workers."""
    from msm.config import load_config, parse_overrides
    from msm.train.config import PretrainConfig
    from msm.train.trainer import run_pretraining

    steps = spec["steps"] * spec["scale"]
    overrides = [f"model.encoder={spec['model']}", "data.source=mined", f"data.path={spec['mined']}",
                 "model.max_sentences=32", "model.max_tokens=64",  # the paper's block shape
                 "data.max_docs_per_lang=1000000000", "data.docs_per_batch=4", f"data.languages={json.dumps(spec['langs'])}",
                 f"run.output_dir={spec['output']}", f"optim.max_steps={steps}", "optim.warmup_steps=1",
                 "validation.every_steps=-1", f"run.checkpoint_every={steps}", "run.report_every=1000000",
                 "run.num_workers=2", "run.cpus_per_worker=0.5", "run.tensorboard=false"]
    cfg = load_config(Path(spec["root"]) / "configs" / "pretrain" / "tiny-cpu.yaml", PretrainConfig,
                      parse_overrides(overrides))
    info = _start_ray()
    rss0 = _maxrss_mib()
    t = time.perf_counter()
    run_pretraining(cfg, log=lambda *_: None)
    wall = time.perf_counter() - t
    rows = [json.loads(line) for line in (Path(spec["output"]) / "metrics.jsonl").read_text().splitlines()]
    step_s = sorted(r["step_s"] for r in rows[1:]) or [rows[0]["step_s"]]
    return {**info, "rss_before_mib": round(rss0, 1), "driver_peak_rss_mib": round(_maxrss_mib(), 1),
            "worker_peak_rss_mib": round(max(r["max_rss_mb"] for r in rows), 1), "wall_s": round(wall, 2),
            "steps": len(rows), "first_step_s": round(rows[0]["step_s"], 2),
            "median_step_s": round(step_s[len(step_s) // 2], 4)}


@dataclass(frozen=True)
class Workload:
    """``make`` writes the corpus of one scale (parent); ``drive`` measures it (driver subprocess)."""

    make: Callable[[Path, Path, int, list[str], int], dict]
    drive: Callable[[dict], dict]
    langs: str


WORKLOADS = {"mine": Workload(make_mine_corpus, drive_mine, "en,de,fr,ru"),
             "pretrain": Workload(make_pretrain_corpus, drive_pretrain, "en,de,fr,ru"),
             "index": Workload(make_index_corpus, drive_index, "en,de,fr,ru")}


def _report_rss(t0: float) -> None:
    while True:
        time.sleep(RSS_EVERY_S)
        now = {"t_s": round(time.perf_counter() - t0, 1), "peak_rss_mib": round(_maxrss_mib(), 1)}
        print(RSS_TAG + json.dumps(now), flush=True)


def _driver_main(workload: str, spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    threading.Thread(target=_report_rss, args=(time.perf_counter(),), daemon=True).start()
    result = WORKLOADS[workload].drive(spec)
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------- orchestration (parent)

def machine() -> dict:
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "ram_gib": round(mem / 2**20, 1), "python": sys.version.split()[0]}


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def run_driver(workload: str, spec: dict, root: Path, work: Path, timeout_s: float) -> dict:
    """One measurement in a subprocess importing ``msm`` from ``root/platform``; its output goes to a log file."""
    spec_file = work / f"spec-{spec['label']}-{spec['scale']}.json"
    spec_file.write_text(json.dumps(spec))
    log = work / f"{workload}-{spec['label']}-{spec['scale']}x.log"
    env = {**os.environ, "PYTHONPATH": str(root / "platform"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
           "PYTHONUNBUFFERED": "1"}
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_drive", workload, str(spec_file)],
                                cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            text = log.read_text(errors="replace").splitlines()
            rss = [json.loads(l[len(RSS_TAG):]) for l in text if l.startswith(RSS_TAG)]
            stages = [l for l in text if l.startswith(f"[{workload}]")]
            return {"timed_out": True, "process_s": round(time.perf_counter() - t, 1), "log": str(log),
                    "driver_peak_rss_mib_so_far": rss[-1]["peak_rss_mib"] if rss else None,
                    "last_stage_line": stages[-1] if stages else None}
    process_s = round(time.perf_counter() - t, 1)
    found = [l for l in log.read_text(errors="replace").splitlines() if l.startswith(RESULT_TAG)]
    if rc != 0 or not found:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"driver {workload} {spec['label']} {spec['scale']}x failed (rc {rc}, log {log}):\n"
                           + "\n".join(tail))
    return {**json.loads(found[-1][len(RESULT_TAG):]), "process_s": process_s, "log": str(log)}


def tiny_model(work: Path) -> str:
    """The tiny random XLM-R, built once by the working tree's ``msm`` (the same files for every code version)."""
    out = work / "tiny-xlmr"
    if not (out / "config.json").is_file():
        subprocess.run([sys.executable, "-c", "import sys; from msm.encoders.tiny import build_tiny_model; "
                        "build_tiny_model(sys.argv[1])", str(out)], check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "platform")})
    return str(out)


def measure(args: argparse.Namespace) -> int:
    wl = WORKLOADS[args.workload]
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir).resolve()
    langs = args.langs.split(",")
    scales = [int(s) for s in args.scales.split(",")]
    model = tiny_model(work)
    versions: list[tuple[str, Path, str, str]] = []  # label, root, ref, commit
    worktree = None
    if args.baseline_ref and args.only in (None, "baseline"):
        commit = git("rev-parse", args.baseline_ref)
        worktree = Path(tempfile.mkdtemp(prefix="msm-baseline-", dir=work)) / "tree"
        git("worktree", "add", "--detach", str(worktree), commit)
        versions.append(("baseline", worktree, args.baseline_ref, commit))
    elif args.only == "baseline":
        raise SystemExit("--only baseline needs --baseline-ref REF")
    if args.only in (None, "current"):
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "platform"))
        versions.append(("current", REPO, "working tree", git("rev-parse", "HEAD") + ("+dirty" if dirty else "")))
    results_file = RESULTS / f"scale_memory_{args.workload}.json"
    try:
        for label, root, ref, commit in versions:
            rows = []
            for scale in scales:
                corpus = wl.make(work / f"{args.workload}-n{args.n}-x{scale}-s{args.seed}-{'-'.join(langs)}", data_dir,
                                 args.n * scale, langs, args.seed)
                output = work / f"out-{label}-{scale}"
                spec = {**corpus, "label": label, "scale": scale, "model": model, "output": str(output),
                        "root": str(root), "data_dir": str(data_dir), "steps": args.steps, "langs": langs}
                load = os.getloadavg()
                print(f"[{args.workload}] {label} {scale}x ({corpus['documents']} documents) ... ", end="", flush=True)
                try:
                    result = run_driver(args.workload, spec, root, work, args.timeout_min * 60)
                except RuntimeError as exc:  # a loaded machine can time out Ray's own start: one retry for that
                    if STARTUP_TIMEOUT not in str(exc):
                        raise
                    print("Ray did not start in time (machine loaded), retrying ... ", end="", flush=True)
                    result = run_driver(args.workload, spec, root, work, args.timeout_min * 60)
                where = {result.get(k, str(root / "platform")) for k in ("msm_file", "worker_msm_file")}
                if any(not w.startswith(str(root / "platform")) for w in where):
                    raise RuntimeError(f"{label}: msm imported from {sorted(where)}, not {root / 'platform'}")
                row = {"scale": scale, "documents": corpus["documents"], "loadavg_before": [round(x, 2) for x in load],
                       **{k: v for k, v in corpus.items() if k == "generated_sentences"}, **result}
                row["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
                shutil.rmtree(output, ignore_errors=True)
                rows.append(row)
                save(results_file, label, {"ref": ref, "commit": commit, "n": args.n, "langs": langs, "seed": args.seed,
                                           "machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                           "rows": rows})
                if row.get("timed_out"):
                    print(f"TIMED OUT after {row['process_s']} s, driver peak RSS so far "
                          f"{row['driver_peak_rss_mib_so_far']} MiB, last: {row['last_stage_line']}", flush=True)
                    break
                worker = (f", {row['worker_peak_rss_mib']:.0f} MiB worker peak RSS" if "worker_peak_rss_mib" in row
                          else "")
                print(f"{row['driver_peak_rss_mib']:.0f} MiB driver peak RSS{worker}, {row['wall_s']:.1f} s "
                      f"(load {load[0]:.1f})", flush=True)
    finally:
        if worktree is not None:
            git("worktree", "remove", "--force", str(worktree))
            shutil.rmtree(worktree.parent, ignore_errors=True)
    print_table(args.workload, json.loads(results_file.read_text()))
    print(f"wrote {results_file}")
    return 0


def save(results_file: Path, label: str, run: dict) -> None:
    """Replace ``label``'s entry of ``results_file``, keeping the other labels' (re-read: another run may write)."""
    stored = json.loads(results_file.read_text()) if results_file.is_file() else {}
    stored[label] = portable(run)
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(stored, indent=2) + "\n")


def print_table(workload: str, stored: dict) -> None:
    stages: list[str] = []
    for run in stored.values():
        for row in run["rows"]:
            stages += [s for s in row.get("timings_s", {}) if s not in stages and s != "total"]
    count = {"mine": "sentences", "index": "vectors", "pretrain": "steps"}[workload]
    workers = workload == "pretrain"
    head = ["version", "scale", "documents", count, "RSS MiB", "RSS/1x",
            *(["worker MiB", "worker/1x", "step s"] if workers else []), "wall s", *[f"{s} s" for s in stages],
            "ms/doc", "load"]
    lines = [head]
    for label, run in stored.items():
        one = next((r for r in run["rows"] if r["scale"] == 1 and not r.get("timed_out")), {})
        base, wbase = one.get("driver_peak_rss_mib"), one.get("worker_peak_rss_mib")
        for r in run["rows"]:
            if r.get("timed_out"):
                so_far = r.get("driver_peak_rss_mib_so_far")
                lines.append([label, f"{r['scale']}x", str(r["documents"]), "-", f">={so_far:.0f}" if so_far else "-",
                              f">={so_far / base:.2f}" if so_far and base else "-", *(["-"] * 3 if workers else []),
                              f">{r['process_s']:.0f}",
                              *["-"] * len(stages), "-", f"{r['loadavg_before'][0]:.1f}"])
                continue
            rss = r["driver_peak_rss_mib"]
            lines.append([label, f"{r['scale']}x", str(r["documents"]), str(r.get(count, "-")), f"{rss:.0f}",
                          f"{rss / base:.2f}" if base else "-",
                          *([f"{r['worker_peak_rss_mib']:.0f}", f"{r['worker_peak_rss_mib'] / wbase:.2f}",
                             f"{r['median_step_s']:.3f}"] if workers else []), f"{r['wall_s']:.1f}",
                          *[f"{r['timings_s'][s]:.1f}" if s in r.get("timings_s", {}) else "-" for s in stages],
                          f"{1000 * r['wall_s'] / r['documents']:.2f}", f"{r['loadavg_before'][0]:.1f}"])
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_drive"]:
        return _driver_main(argv[1], argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="workload", required=True)
    for name, wl in WORKLOADS.items():
        p = sub.add_parser(name, help=(wl.drive.__doc__ or "").split("\n")[0])
        p.add_argument("--n", type=int, default=5000, help="documents (passages) at scale 1")
        p.add_argument("--steps", type=int, default=10, help="pretrain: training steps at scale 1 (× scale)")
        p.add_argument("--scales", default="1,4,16", help="multiples of --n")
        p.add_argument("--langs", default=wl.langs, help="ISO 639-1 codes of NTREX languages")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--baseline-ref", help="git ref measured as 'baseline' from a temporary worktree")
        p.add_argument("--only", choices=["baseline", "current"], help="measure one version only")
        p.add_argument("--data-dir", default=os.environ.get("MSM_DATA_DIR", str(REPO.parent / "shared" / "data")))
        p.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "msm-scale-memory"),
                       help="corpora, the tiny model, driver logs (kept between runs)")
        p.add_argument("--timeout-min", type=float, default=40, help="per driver run; a slower run is reported as such")
    return measure(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
