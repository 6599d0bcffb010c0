"""A user's mistake found inside Ray (a Train worker, a Ray Data read task) reaches the terminal as its own message,
once, exit 2, with no traceback; a run is quiet by default (a few lines: progress and summaries). Each command runs
as a user runs it, in a subprocess with its own local Ray cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(300)]


def msm(*argv, cwd=REPO, extra_env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MSM_LOCAL_CPUS": "2", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    env.pop("MSM_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "msm.cli", *map(str, argv)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=280)


def test_an_error_inside_a_train_worker_is_its_message_once(tmp_path, shared_data):
    """data.docs_per_batch larger than a worker's share: the worker's stream raises MSMError."""
    proc = msm("pretrain", "--config", "configs/pretrain/tiny-cpu.yaml", "--out", tmp_path / "run",
               f"data.data_dir={shared_data}", "data.docs_per_batch=50")
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 2, printed[-3000:]
    expected = "msm pretrain: error: worker 0: its share of the corpus makes no batch of data.docs_per_batch=50"
    assert printed.count(expected) == 1 and "Traceback" not in printed, printed[-3000:]
    assert len(printed.splitlines()) <= 12, printed  # the corpus summary, the error; no Ray chatter


def test_a_reader_error_inside_ray_data_is_its_message_once(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"query": "q1", "positive": "p1"}\n{"query": "q2", "positive": \n')
    proc = msm("finetune", "--config", "configs/finetune/tiny-cpu.yaml", "--out", tmp_path / "run",
               "data.format=pairs", f"data.path={bad}", "data.max_examples=null")
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 2, printed[-3000:]
    assert printed.count(f"{bad}:2: not JSON") == 1 and "Traceback" not in printed, printed[-3000:]


def test_a_tiny_pretrain_is_quiet_and_debug_and_verbose_say_more(tmp_path, shared_data):
    proc = msm("pretrain", "--config", "configs/pretrain/tiny-cpu.yaml", "--out", tmp_path / "run",
               f"data.data_dir={shared_data}")
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 0, "\n".join(lines[-40:])
    assert len(lines) <= 12, "\n".join(lines)
    assert any(line.startswith("pretrain: step 4/4 (100%)") for line in lines)
    assert any(line.startswith("encoder exported to") for line in lines)
    assert not any("Token authentication" in line or "Loading weights" in line for line in lines), "\n".join(lines)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    again = msm("pretrain", "--config", "configs/pretrain/tiny-cpu.yaml", "--out", tmp_path / "run",
                f"data.data_dir={shared_data}")  # the same config: complete, nothing to do, in seconds
    assert again.returncode == 0 and "already complete" in again.stdout and "pretrain: step" not in again.stdout


def test_an_input_with_no_document_is_named(tmp_path):
    """Files that exist but hold no document: the verb says so (it used to fail on its own missing work folder)."""
    import yaml

    (tmp_path / "empty.jsonl").write_text("")
    config = tmp_path / "m.yaml"
    config.write_text(yaml.safe_dump({"inputs": [{"kind": "jsonl", "path": str(tmp_path / "empty.jsonl")}],
                                      "embed": {"model": "tiny-random"}}))
    proc = msm("mine", "--config", config, "--out", tmp_path / "out")
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in printed, printed[-3000:]
    assert f"msm mine: error: inputs: no document was read from the inputs ({tmp_path / 'empty.jsonl'})" in printed
    assert not (tmp_path / "out").exists()
