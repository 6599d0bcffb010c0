"""Real job submission to a private ``ray start --head`` (auth disabled, free ports, own temp dir)."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pytest

from msm.cluster.local_head import start_local_head
from msm.cluster.submit import build_runtime_env, job_entrypoint, submit_job
from msm.errors import MSMError

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def head():
    import os

    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    h = start_local_head(num_cpus=2)
    yield h
    h.stop()
    assert not h.processes(), "head processes survived teardown"
    shutil.rmtree(h.temp_dir, ignore_errors=True)
    if old is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = old


def test_entrypoint_and_runtime_env(tmp_path):
    assert job_entrypoint("pretrain", "configs/pretrain/tiny-cpu.yaml", ["train.steps=2"]) == (
        "python jobs/pretrain.py --config configs/pretrain/tiny-cpu.yaml train.steps=2"
    )
    with pytest.raises(MSMError, match="module name under jobs/"):
        job_entrypoint("../evil", "c.yaml")
    extra = tmp_path / "env.yaml"
    extra.write_text("env_vars: {A: b}\nexcludes: [data/]\npip: [tqdm]\n")
    env = build_runtime_env("/repo", extra)
    assert env["env_vars"] == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "A": "b"}
    assert {".venv/", ".git/", "outputs/", "data/"} <= set(env["excludes"]) and env["pip"] == ["tqdm"]
    extra.write_text("- not a mapping\n")
    with pytest.raises(MSMError, match="must hold a YAML mapping"):
        build_runtime_env("/repo", extra)


def test_missing_job_is_named_before_submitting(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "mine.py").write_text("")
    with pytest.raises(MSMError, match=r"job 'nope'.*known jobs: mine"):
        submit_job("nope", "http://127.0.0.1:1", "c.yaml", working_dir=tmp_path)


@pytest.mark.timeout(600)
def test_submit_trivial_job_succeeds_and_failure_is_reported(head, tmp_path):
    work = tmp_path / "work"
    (work / "jobs").mkdir(parents=True)
    shutil.copy(HERE / "write_marker.py", work / "jobs" / "marker.py")
    (work / "marker.yaml").write_text("hello")
    out = tmp_path / "marker.txt"
    log = io.StringIO()
    job_id, status = submit_job(
        "marker", head.job_address, "marker.yaml", [f"--out={out}"], work, python=sys.executable, timeout_s=200, out=log
    )
    assert status == "SUCCEEDED", log.getvalue()
    assert out.read_text() == "hello 42\n"
    assert "marker written" in log.getvalue() and job_id in log.getvalue()
    # A failing job (unknown flag) must end FAILED, which `msm submit` turns into exit code 1.
    _, status = submit_job("marker", head.job_address, "marker.yaml", ["--bogus"], work, python=sys.executable,
                           timeout_s=120, out=io.StringIO())
    assert status == "FAILED"
    # The CLI verb maps the terminal status to the exit code (0 iff SUCCEEDED).
    from msm.cli import main

    argv = ["submit", "marker", "--address", head.job_address, "--config", "marker.yaml", "--working-dir", str(work),
            "--python", sys.executable, "--timeout", "120"]
    assert main([*argv, f"--set=--out={tmp_path / 'cli.txt'}"]) == 0 and (tmp_path / "cli.txt").is_file()
    assert main([*argv, "--set=--bogus"]) == 1
    assert main(["submit", "nope", "--address", head.job_address, "--config", "marker.yaml", "--working-dir", str(work)]) == 2


@pytest.mark.timeout(900)  # ~2 min idle
def test_submitted_two_worker_pretraining_survives_a_crash(head, tmp_path):
    """The shipped job on a cluster: DDP on gloo with 2 workers, both raise at step 3 (``run.fail_at_step``); Ray
    Train restarts the worker group (``run.max_failures=1``), the loop restores the step-2 checkpoint, and the job
    succeeds with every step logged once. (One fit: each costs ~1 min of worker start on 2 cores.)"""
    import json

    from msm.model.msm import MSMModel

    for shipped in ("jobs/pretrain.py", "configs/pretrain/tiny-cpu.yaml"):  # deleted: a failure, never a skip
        assert (REPO / shipped).is_file(), f"{shipped} is missing"
    out = tmp_path / "pretrain"
    log = io.StringIO()
    _, status = submit_job("pretrain", head.job_address, "configs/pretrain/tiny-cpu.yaml",
                           [f"run.output_dir={out}", "run.num_workers=2", "run.cpus_per_worker=0.5",
                            "run.fail_at_step=3", "run.max_failures=1"],
                           REPO, python=sys.executable, timeout_s=800, out=log)
    assert status == "SUCCEEDED", log.getvalue()[-3000:]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics] == [1, 2, 3, 4]  # step 3 redone from the step-2 checkpoint, logged once
    assert "val_score" in metrics[-1] and "val_score" not in metrics[0]
    assert (out / "export" / "config.json").is_file() and (out / "export-st" / "modules.json").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    ckpts = sorted(p.parent for p in (out / "tiny").glob("checkpoint_*/trainer_state.json"))
    assert sorted(json.loads((c / "trainer_state.json").read_text())["step"] for c in ckpts) == [2, 4]
    for c in ckpts:  # every kept checkpoint loads
        assert any(f.suffix == ".safetensors" for f in (c / "model").iterdir())
        MSMModel.load(c / "model")
