"""Fixtures of the fine-tuning tests: a toy pair set and tiny in-process configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_toy import POSITIVES, QUERIES  # noqa: E402  (a uniquely named module: conftest names clash)


@pytest.fixture(scope="session")
def toy_pairs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "pairs.jsonl"
    path.write_text("".join(json.dumps({"query": q, "positive": p}) + "\n" for q, p in zip(QUERIES, POSITIVES)))
    return path


@pytest.fixture
def tiny_cfg(tiny_model_dir, toy_pairs, tmp_path):
    """A factory: the tiny-cpu recipe on the toy pairs, in ``tmp_path/<name>``, with ``overrides``."""
    from msm.config import load_config, parse_overrides
    from msm.finetune.config import FinetuneConfig

    repo = Path(__file__).resolve().parents[2]

    def make(name: str = "run", *overrides: str) -> FinetuneConfig:
        base = [f"model.encoder={tiny_model_dir}", "data.format=pairs", f"data.path={toy_pairs}",
                "data.max_examples=null", f"run.output_dir={tmp_path / name}", "run.tensorboard=false",
                "model.query_max_length=8", "model.passage_max_length=8"]
        return load_config(repo / "configs" / "finetune" / "tiny-cpu.yaml", FinetuneConfig,
                           parse_overrides(base + list(overrides)))

    return make
