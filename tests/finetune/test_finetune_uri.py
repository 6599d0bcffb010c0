"""Fine-tuning runs whose ``run.output_dir`` is a URI (an S3-compatible server, moto on loopback): the config copy,
metrics, TensorBoard events, checkpoints and exports land at the URI, never in a local folder named ``s3:``; a
crashed run resumes from the checkpoint there, logs every step once and retraces the local run's losses; the
exported model is read back from the URI by the next job (``resolve_model``: a local copy per machine)."""

from __future__ import annotations

import dataclasses
import json
import os

import pyarrow.fs as pafs
import pytest

from msm.finetune.trainer import has_local_checkpoint, resume_config, run_local

STEPS = ("train.max_steps=4", "train.save_steps=2", "train.lr=0.01", "train.batch_size=4")


def s3_text(uri: str) -> str:
    fs, path = pafs.FileSystem.from_uri(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read().decode()


def listed(uri: str) -> set[str]:
    fs, path = pafs.FileSystem.from_uri(uri)
    return {i.path[len(path) + 1:] for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
            if i.type == pafs.FileType.File}


@pytest.mark.timeout(300)
def test_s3_finetune_crashes_resumes_logs_once_and_matches_the_local_run(s3_server, tiny_cfg, tmp_path,
                                                                         monkeypatch):
    from msm.encoders.resolve import resolve_model

    monkeypatch.chdir(tmp_path)
    local = run_local(tiny_cfg("local", *STEPS), log=lambda *_: None)
    expected = {r["step"]: r["loss"] for r in map(json.loads, (local / "metrics.jsonl").read_text().splitlines())
                if "loss" in r}
    uri = "s3://runs/ft-1"
    broken = tiny_cfg("unused", *STEPS, "run.fail_at_step=2", "run.tensorboard=true", f"run.output_dir={uri}")
    with pytest.raises(RuntimeError, match="fault drill"):
        run_local(broken, log=lambda *_: None)
    files = listed(uri)
    assert "finetune_config.yaml" in files and "checkpoints/checkpoint-2/trainer_state.json" in files
    assert any(f.startswith("tensorboard/") for f in files) and "export/config.json" not in files
    assert [json.loads(x)["step"] for x in s3_text(f"{uri}/metrics.jsonl").splitlines()] == [1, 2]
    assert not [p for p in os.listdir(tmp_path) if p.startswith("s3:")]  # nothing in a local "s3:" folder
    assert has_local_checkpoint(broken)
    fixed = dataclasses.replace(broken, run=dataclasses.replace(broken.run, fail_at_step=None))
    assert run_local(fixed, resume=True, log=lambda *_: None) == uri
    rows = [json.loads(x) for x in s3_text(f"{uri}/metrics.jsonl").splitlines()]
    got = {r["step"]: r["loss"] for r in rows if "loss" in r}
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # every step once, 3-4 from checkpoint-2
    assert all(abs(got[s] - expected[s]) < 1e-4 for s in expected), (expected, got)
    files = listed(uri)
    assert {"export/config.json", "export/msm_model.json", "export-st/modules.json"} <= files
    model = resolve_model(f"{uri}/export")  # the next job (eval, index) reads the export at the URI
    assert json.loads(open(os.path.join(model, "msm_model.json")).read())["pooling"] == "mean"
    stamp = os.stat(os.path.join(model, "config.json")).st_mtime_ns
    assert resolve_model(f"{uri}/export") == model  # cached: unchanged at the URI, not downloaded again
    assert os.stat(os.path.join(model, "config.json")).st_mtime_ns == stamp


def test_resume_config_reads_the_saved_config_at_the_uri(s3_server, tiny_cfg):
    from msm.errors import MSMError

    with pytest.raises(MSMError, match="no finetune_config.yaml there"):
        resume_config("s3://runs/ft-none")
    cfg = tiny_cfg("x", *STEPS, "run.output_dir=s3://runs/ft-2")
    from msm.finetune.trainer import _start  # noqa: PLC2701 (the config copy, as a run writes it first)
    _start(cfg)
    with pytest.raises(MSMError, match="no checkpoint under s3://runs/ft-2/"):
        resume_config("s3://runs/ft-2")
