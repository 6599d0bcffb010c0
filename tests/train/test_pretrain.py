"""Pretraining: the schedule, the plain loop, and one Ray Train fit of the tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msm.config import load_config
from msm.train.config import PretrainConfig
from msm.train.schedule import lr_factor

REPO = Path(__file__).resolve().parents[2]


def test_schedule_warmup_then_polynomial_decay():
    assert [lr_factor(s, 4, 12) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(8, 4, 12) == pytest.approx(0.5) and lr_factor(12, 4, 12) == 0.0
    assert lr_factor(8, 4, 12, power=2.0) == pytest.approx(0.25)


def test_configs_load():
    for name in ("tiny-cpu", "e5-small-cpu", "xlmr-base-8gpu"):
        cfg = load_config(REPO / "configs" / "pretrain" / f"{name}.yaml", PretrainConfig)
        assert cfg.optim.max_steps >= 1
    paper = load_config(REPO / "configs" / "pretrain" / "xlmr-base-8gpu.yaml", PretrainConfig)
    assert (paper.model.max_sentences, paper.model.max_tokens, paper.model.memory_bank_size) == (32, 64, 4096)


@pytest.mark.timeout(300)
def test_tiny_pretraining_on_ray(ray_local, tmp_path, shared_data):
    from msm.config import parse_overrides
    from msm.train.trainer import run_pretraining

    cfg = load_config(REPO / "configs" / "pretrain" / "tiny-cpu.yaml", PretrainConfig,
                      parse_overrides([f"run.output_dir={tmp_path}", f"data.data_dir={shared_data}"]))
    out = run_pretraining(cfg)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert (out / "export" / "config.json").is_file()
    assert list((out / "tiny").rglob("msm_state.safetensors"))
