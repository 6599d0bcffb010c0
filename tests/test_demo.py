"""The main job: ``python -m msm.demo --quick`` end to end on the real data and the offline e5-small, on a 2-CPU local
Ray cluster (what CI has), every stage's outputs checked. A Ray resource wait ends the demo (it runs pretraining
with --fail-on-stall) and the subprocess has a deadline, so a hang fails here in minutes, not after CI's 90."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from msm.demo import QUICK

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "MSM_LOCAL_CPUS": "2", "MSM_DATA_DIR": str(shared_data), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "MSM_NO_PROGRESS": "0", "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "msm.demo", "--quick", "--out", str(out)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=720)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-3000:]
        pytest.fail(f"the quick demo did not finish in 720 s (a hang?); its output ended with:\n{tail}")
    assert proc.returncode == 0, f"demo exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out, proc.stdout


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time on the 2 CPUs (tests/conftest.py)
@pytest.mark.timeout(780)
def test_the_quick_demo_runs_every_stage_to_the_end(demo_run):
    out, stdout = demo_run
    for i, stage in enumerate(("model", "mine", "pretrain", "eval"), 1):
        assert f"[{i}/4] {stage}" in stdout
    timings = json.loads(stdout.split("stage times (s): ", 1)[1].splitlines()[0])
    assert list(timings) == ["model", "mine", "pretrain", "eval"]

    # mine: every NTREX document paired with its own translation (NTREX's document ids are the reference)
    manifest = json.loads((out / "mine" / "manifest.json").read_text())
    langs = ["de", "en", "fr", "ru", "zh"]
    assert manifest["counts"]["documents_by_lang"] == {lang: QUICK.docs_per_lang for lang in langs}
    assert manifest["counts"]["input"] == manifest["counts"]["kept"] + manifest["counts"]["quarantined"]
    pairs = pq.read_table(out / "mine" / "pairs").select(["src_doc_id", "tgt_doc_id", "tgt_lang"]).to_pylist()
    assert len(pairs) == manifest["counts"]["pairs"] == 4 * QUICK.docs_per_lang
    assert all(p["src_doc_id"].split(":")[-1] == p["tgt_doc_id"].split(":")[-1] for p in pairs)

    # pretrain: every step logged once, validation and checkpoints on the budget's cadence, both exports
    run = out / "pretrain"
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == list(range(1, QUICK.steps + 1))
    assert [r["step"] for r in steps if "val_score" in r] == list(range(QUICK.every, QUICK.steps + 1, QUICK.every))
    checkpoints = sorted(p.name for p in (run / "demo").glob("checkpoint_*") if p.is_dir())
    assert len(checkpoints) == 2  # run.keep_checkpoints
    states = [json.loads((run / "demo" / c / "trainer_state.json").read_text())["step"] for c in checkpoints]
    assert sorted(states) == [QUICK.steps - QUICK.every, QUICK.steps]
    assert (run / "export" / "config.json").is_file() and (run / "export" / "model.safetensors").is_file()
    assert (run / "export-st" / "modules.json").is_file()
    corpus = json.loads((run / "corpus" / "manifest.json").read_text())["documents"]
    assert (corpus["read"], corpus["kept"], corpus["quarantined"]) == (5 * QUICK.docs_per_lang,) * 2 + ({},)

    # eval: both models on the same Tatoeba pairs, and the table built from their results
    table = (out / "comparison.md").read_text().splitlines()
    assert table[0] == "| language | metric | e5-small (start) | MSM (demo) | Δ |"
    results = {}
    for name in ("eval-base", "eval-msm"):
        rows = json.loads((out / name / "results.json").read_text())["results"]
        results[name] = {(r["language"], r["metric"]): r["value"] for r in rows}
        assert {r["count"] for r in rows if r["language"] != "mean"} == {QUICK.tatoeba_pairs}
    assert len(table) == 2 + len(results["eval-base"]) == 2 + 2 * (len(QUICK.tatoeba_langs) + 1)
    for line in table[2:]:
        lang, metric, base, msm, delta = (c.strip() for c in line.strip("|").split("|"))
        assert float(base) == pytest.approx(results["eval-base"][lang, metric], abs=5e-4)
        assert float(msm) == pytest.approx(results["eval-msm"][lang, metric], abs=5e-4)
        assert float(delta) == pytest.approx(float(msm) - float(base), abs=1e-3)
    assert results["eval-base"]["mean", "acc@1 xxx->eng"] > 0.5  # e5-small retrieves translations well above chance
