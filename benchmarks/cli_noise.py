"""Lines a user reads, and seconds to the first error, before and after (one run, the same machine).

    python benchmarks/cli_noise.py [--before REF] [--out benchmarks/results/cli_noise.json]

Runs each command as a user would (``python -m msm.cli ...`` in a subprocess, its own local Ray cluster, 2 CPUs),
once with the code at ``REF`` (a git worktree; default 5a549db, the code before the output-contract issue) and once
with this checkout, and prints a table: lines printed (stdout + stderr), seconds, exit code, whether a traceback was
printed and whether a user's file survived. Only overrides both versions understand are used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, portable

DATA = REPO.parent / "shared" / "data"


def trials(tmp: Path) -> list[tuple[str, list[str], Path | None]]:
    """(name, argv after ``msm``, a user's folder that must survive or None)."""
    user = tmp / "user"
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Ein Satz Nummer {i}."}) + "\n" for i in range(6)))
    return [
        ("tiny mine", ["mine", "--config", "configs/mine/tiny-cpu.yaml", f"output_dir={tmp}/mine",
                       f"data_dir={DATA}", "embed.model=tiny-random"], None),
        ("tiny pretrain", ["pretrain", "--config", "configs/pretrain/tiny-cpu.yaml", f"run.output_dir={tmp}/pretrain",
                           f"data.data_dir={DATA}"], None),
        ("tiny finetune", ["finetune", "--config", "configs/finetune/tiny-cpu.yaml",
                           f"run.output_dir={tmp}/finetune"], None),
        ("pretrain, model that does not exist", ["pretrain", "--config", "configs/pretrain/tiny-cpu.yaml",
                                                 f"run.output_dir={tmp}/p2", f"data.data_dir={DATA}",
                                                 "model.encoder=no-such-model"], None),
        ("index, model that does not exist", ["index", "--corpus", str(corpus), "--model", "no-such-model",
                                              "--out", f"{tmp}/i2"], None),
        ("mine into a user's folder", ["mine", "--config", "configs/mine/tiny-cpu.yaml", f"output_dir={user}",
                                       f"data_dir={DATA}", "embed.model=tiny-random"], user),
        ("index into a user's folder", ["index", "--corpus", str(corpus), "--model", "tiny-random", "--out",
                                        str(user)], user),
    ]


def run(platform: Path, argv: list[str], user: Path | None) -> dict:
    if user is not None:
        user.mkdir(parents=True, exist_ok=True)
        (user / "precious.txt").write_text("keep me")
    env = {**os.environ, "PYTHONPATH": str(platform), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "MSM_LOCAL_CPUS": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("MSM_VERBOSE", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "msm.cli", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    printed = proc.stdout + proc.stderr
    return {"seconds": round(time.perf_counter() - t0, 1), "exit": proc.returncode,
            "lines": len(printed.splitlines()), "traceback": "Traceback" in printed,
            "user_file_kept": None if user is None else (user / "precious.txt").is_file(),
            "last_line": (printed.strip().splitlines() or [""])[-1][:200]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", default="5a549db", help="git ref of the code to compare with (default: 5a549db)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "cli_noise.json"))
    args = p.parse_args()
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=REPO, check=True,
                       capture_output=True)
        try:
            for version, platform in (("before", before / "platform"), ("after", REPO / "platform")):
                work = Path(tmp) / f"runs-{version}"
                work.mkdir()
                for name, argv, user in trials(work):
                    r = run(platform, argv, user)
                    rows.append({"trial": name, "version": version, **r})
                    print(f"{version:6} {name:38} {r['lines']:5} lines {r['seconds']:6.1f}s exit {r['exit']}",
                          flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPO, capture_output=True)
    print()
    print("| trial | lines before | lines after | s before | s after | exit before | exit after | traceback before/after | user's file kept before/after |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name in dict.fromkeys(r["trial"] for r in rows):
        b, a = (next(r for r in rows if r["trial"] == name and r["version"] == v) for v in ("before", "after"))
        kept = "—" if b["user_file_kept"] is None else f"{b['user_file_kept']}/{a['user_file_kept']}"
        print(f"| {name} | {b['lines']} | {a['lines']} | {b['seconds']} | {a['seconds']} | {b['exit']} | {a['exit']} | "
              f"{b['traceback']}/{a['traceback']} | {kept} |")
    result = {"before": args.before, "load_avg_at_start": load, "load_avg_at_end": os.getloadavg(), "rows": rows}
    Path(args.out).write_text(json.dumps(portable(result), indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
