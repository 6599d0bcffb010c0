"""``msm finetune`` in process on the tiny model: the loss falls and the fine-tuned encoder ranks its toy pairs
first (the start model does not); resume equals the uninterrupted run; separate towers export; every recipe loads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from finetune_toy import POSITIVES, QUERIES
from msm.finetune.trainer import run_local

REPO = Path(__file__).resolve().parents[2]


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _acc_at_1(model: str) -> float:
    """Query → positive accuracy@1 over the 16 toy pairs, encoded as `msm eval` encodes (msm.retrieval.Encoder)."""
    from msm.retrieval.encoder import Encoder

    enc = Encoder(model, max_length=8)
    q, d = enc.encode(QUERIES, kind="query"), enc.encode(POSITIVES, kind="passage")
    return float((np.argmax(q @ d.T, axis=1) == np.arange(len(QUERIES))).mean())


def test_loss_falls_and_the_encoder_learns_its_pairs(tiny_cfg, tiny_model_dir):
    cfg = tiny_cfg("toy", "train.max_steps=10", "train.lr=0.01", "train.warmup_ratio=0.0", "train.save_steps=10")
    out = run_local(cfg, log=lambda *_: None)
    losses = list(_losses(out).values())
    assert len(losses) == 10 and np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    start, tuned = _acc_at_1(str(tiny_model_dir)), _acc_at_1(str(out / "export"))
    assert tuned >= 0.75 and tuned > start + 0.5, (start, tuned)
    assert (out / "export-st" / "modules.json").is_file() and (out / "checkpoints" / "checkpoint-10").is_dir()
    assert json.loads((out / "export" / "msm_model.json").read_text())["pooling"] == "mean"


def test_resume_equals_the_uninterrupted_run(tiny_cfg):
    steps = ["train.max_steps=4", "train.save_steps=2", "train.lr=0.01", "train.batch_size=4"]
    whole = run_local(tiny_cfg("whole", *steps), log=lambda *_: None)
    broken = tiny_cfg("broken", *steps, "run.fail_at_step=2")
    with pytest.raises(RuntimeError, match="fault drill"):
        run_local(broken, log=lambda *_: None)
    assert sorted(_losses(Path(broken.run.output_dir))) == [1, 2]
    run_local(dataclasses.replace(broken, run=dataclasses.replace(broken.run, fail_at_step=None)), resume=True,
              log=lambda *_: None)
    a, b = _losses(whole), _losses(Path(broken.run.output_dir))
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert all(abs(a[s] - b[s]) < 1e-4 for s in a), (a, b)


def test_separate_towers_export_a_router_model(tiny_cfg):
    from sentence_transformers import SentenceTransformer

    out = run_local(tiny_cfg("towers", "model.towers=separate", "train.max_steps=2", "train.save_steps=2",
                             "model.query_prefix=Q"), log=lambda *_: None)
    assert (out / "export" / "query" / "config.json").is_file() and (out / "export" / "passage" / "config.json").is_file()
    model = SentenceTransformer(str(out / "export-st"), device="cpu")
    q, d = model.encode_query(["apple"]), model.encode_document(["apple"])
    assert q.shape == d.shape and not np.allclose(q, d)  # two towers (and the query prompt) differ


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "finetune").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_loads(path):
    from msm.config import load_config
    from msm.finetune.config import FinetuneConfig

    cfg = load_config(path, FinetuneConfig)
    text = path.read_text()
    assert text.startswith("#") and ("Source" in text or "tiny" in path.name or "Mechanics" in text), path
    assert cfg.train.batch_size >= 2


def test_ray_batches_drop_duplicates_and_keep_the_batch_size(tiny_cfg):
    """Under Ray each worker's batch is cut to exactly batch_size (the gathered loss needs equal batches), with
    rows sharing a text with an earlier row dropped first (ST's NO_DUPLICATES in process)."""
    from msm.finetune.data import RayBatches, ray_batch_size

    cfg = tiny_cfg("batches", "train.batch_size=4")
    assert ray_batch_size(cfg) == 5
    collate = RayBatches(lambda rows: rows, cfg)

    def batch(pairs):
        return {"query": [q for q, _ in pairs], "positive": [p for _, p in pairs], "context": [""] * len(pairs),
                "negatives": [[] for _ in pairs]}

    rows = collate(batch([("a", "x"), ("b", "x"), ("c", "y"), ("d", "z"), ("e", "w")]))
    assert [r["anchor"] for r in rows] == ["a", "c", "d", "e"]  # ("b", "x") repeats x
    rows = collate(batch([("a", "x"), ("b", "x"), ("c", "x"), ("d", "y"), ("e", "y")]))
    assert len(rows) == 4 and [r["anchor"] for r in rows[:2]] == ["a", "d"]  # refilled from the dropped rows
