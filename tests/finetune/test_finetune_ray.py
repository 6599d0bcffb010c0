"""``msm finetune`` under Ray Train (the only Ray test of the fine-tuning suite): a 1-worker tiny fit streamed from
Ray Data leaves Ray Train checkpoints holding the HF trainer's, metrics, TensorBoard events and both exports."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ray_train_fit_checkpoints_and_exports(ray_local, tiny_model_dir, shared_data, tmp_path):
    from sentence_transformers import SentenceTransformer

    from msm.cli import main

    out = tmp_path / "run"
    assert main(["finetune", "--config", str(REPO / "configs" / "finetune" / "tiny-cpu.yaml"),
                 f"model.encoder={tiny_model_dir}", f"data.path={shared_data / 'xquad-r' / 'en.json'}",
                 f"run.output_dir={out}"]) == 0
    checkpoints = sorted(p for p in (out / "tiny").glob("checkpoint_*") if p.is_dir())
    assert len(checkpoints) == 2  # save_steps 2 of max_steps 4, both kept
    for c in checkpoints:
        assert (c / "checkpoint" / "model.safetensors").is_file() and (c / "checkpoint" / "trainer_state.json").is_file()
    state = json.loads((checkpoints[-1] / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[:4] == [1, 2, 3, 4]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "export" / "model.safetensors").is_file() and (out / "export" / "msm_model.json").is_file()
    model = SentenceTransformer(str(out / "export-st"), device="cpu")
    assert model.encode(["Which NFL team won Super Bowl 50?"]).shape == (1, 32)
