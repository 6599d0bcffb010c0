"""``optim.accumulate`` in the training loop (in-process, no Ray): step s trains on batches s·a … s·a + a − 1."""

from __future__ import annotations

import json

from msm.config import load_config, parse_overrides
from msm.train.config import PretrainConfig

from factories import TINY_PRETRAIN as TINY



def test_each_step_consumes_accumulate_consecutive_batches(tmp_path, shared_data):
    """Token counts per step (``tokens_per_s × step_s``) against the stream's own batches (64-token sentences:
    NTREX sentences would all fill the tiny config's 16 tokens, every batch the same count)."""
    import itertools

    from msm.train.corpus import build_local
    from msm.train.stream import open_stream
    from msm.train.trainer import run_local

    cfg = load_config(TINY, PretrainConfig, parse_overrides([
        f"run.output_dir={tmp_path}", f"data.data_dir={shared_data}", "optim.max_steps=2", "optim.accumulate=2",
        "model.max_tokens=64", "validation.every_steps=-1", "run.checkpoint_every=100", "run.tensorboard=false"]))
    rows = [json.loads(line) for line in (run_local(cfg) / "metrics.jsonl").read_text().splitlines()]
    stream = open_stream(cfg, build_local(cfg), rank=0, world=1)
    tokens = [int(b["attention_mask"].sum()) for b in itertools.islice(stream, 4)]
    assert len(tokens) >= 4 and len(set(tokens[:4])) == 4  # the batches can be told apart by their token counts
    assert [round(r["tokens_per_s"] * r["step_s"]) for r in rows] == [tokens[0] + tokens[1], tokens[2] + tokens[3]]
    assert [r["step"] for r in rows] == [1, 2] and all(r["mlm_loss"] is None and r["loss"] > 0 for r in rows)
