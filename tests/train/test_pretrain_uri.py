"""Pretraining runs whose ``run.output_dir`` is a URI: an S3-compatible server (moto, loopback) and ``file://``.

Metrics, the config copy, TensorBoard, checkpoints and exports land at the URI; a crashed run resumes from the
checkpoint there and retraces the loss of the same run on a local disk."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from msm.errors import MSMError
from msm.train.config import PretrainConfig

from factories import tiny_pretrain

COMMON = ("optim.max_steps=3", "run.checkpoint_every=2", "validation.every_steps=-1", "run.keep_checkpoints=1")


def tiny(out: str, shared_data: Path, *overrides: str) -> PretrainConfig:
    return tiny_pretrain(out, shared_data, *COMMON, *overrides)


def s3_files(prefix: str) -> dict[str, bytes]:
    fs, path = pafs.FileSystem.from_uri(prefix)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    out = {}
    for i in infos:
        if i.type == pafs.FileType.File:
            with fs.open_input_stream(i.path) as fh:
                out[i.path[len(path) + 1:]] = fh.read()
    return out


@pytest.mark.timeout(300)
def test_s3_run_crashes_resumes_and_matches_the_local_run(s3_server, shared_data, tmp_path):
    from msm.model.msm import MSMModel
    from msm.train.loop import FaultDrill
    from msm.run_folder import RunFolder
    from msm.train.trainer import resume_config, run_local, save_exports

    local = [json.loads(x) for x in (run_local(tiny(str(tmp_path / "local"), shared_data)) / "metrics.jsonl")
             .read_text().splitlines()]
    uri = "s3://runs/tiny-1"
    with pytest.raises(FaultDrill):
        run_local(tiny(uri, shared_data, "run.fail_at_step=3"))
    files = s3_files(uri)
    assert [json.loads(x)["step"] for x in files["metrics.jsonl"].decode().splitlines()] == [1, 2]
    assert "checkpoints/checkpoint-2/trainer_state.json" in files and "pretrain_config.yaml" in files
    assert not list((tmp_path / "local").parent.glob("s3:*"))  # nothing landed in a local "s3:" folder
    cfg = resume_config(uri)  # the saved config at the URI, with its checkpoint found there
    assert cfg.run.output_dir == uri and cfg.run.fail_at_step == 3
    assert run_local(cfg, resume=True) == uri
    files = s3_files(uri)
    resumed = [json.loads(x) for x in files["metrics.jsonl"].decode().splitlines()]
    assert [r["step"] for r in resumed] == [1, 2, 3]  # step 3 from the step-2 checkpoint; the drill is spent
    for a, b in zip(local, resumed):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-4) and b["lr"] == pytest.approx(a["lr"]), a["step"]
    assert sorted({k.split("/")[1] for k in files if k.startswith("checkpoints/")}) == ["checkpoint-3"]  # keep 1
    assert any(k.startswith("tensorboard/events.out.tfevents.") for k in files)
    run = RunFolder(uri)
    model = MSMModel.load(run.fetch_dir("checkpoints/checkpoint-3") / "model")
    save_exports(model, run)
    files = s3_files(uri)
    assert "export/config.json" in files and "export/msm_model.json" in files and "export-st/modules.json" in files
    assert any(k.startswith("export/") and k.endswith(".safetensors") for k in files)


def test_file_uri_lands_in_the_local_folder_and_bad_uris_name_themselves(s3_server, shared_data, tmp_path):
    from msm.train.trainer import resume_config, run_local

    out = run_local(tiny(f"file://{tmp_path}/run", shared_data, "optim.max_steps=1"))
    assert Path(out) == tmp_path / "run"
    assert (tmp_path / "run" / "metrics.jsonl").is_file() and (tmp_path / "run" / "checkpoints" / "checkpoint-1").is_dir()
    with pytest.raises(MSMError, match="s3://no-such-bucket/run/pretrain_config.yaml: unreachable or not permitted .*bucket does not exist"):
        run_local(tiny("s3://no-such-bucket/run", shared_data))
    with pytest.raises(MSMError, match="--resume s3://runs/nothing-here: no pretrain_config.yaml there"):
        resume_config("s3://runs/nothing-here")
