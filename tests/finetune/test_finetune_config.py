"""``msm.finetune.config``: every rule of the fine-tuning config (bounds at both sides of each limit, one field at a
time; types; unknown and moved keys; defaults), and the whole message each broken rule gives."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest

from msm.config import ConfigError, config_from_dict, load_config
from msm.finetune import readers
from msm.finetune.config import FORMATS, FinetuneConfig, FinetuneData, FinetuneModel, FinetuneRun, FinetuneTrain

MODEL_MSG = "query_max_length and passage_max_length must be >= 4 tokens"
LR_MSG = "need lr > 0, scale > 0 and epochs > 0"
STEPS_MSG = "save_steps and logging_steps must be >= 1"
BATCH_MSG = "batch_size must be >= 2 (in-batch negatives need a second example)"


def _fails(cls, message: str, **kw) -> None:
    with pytest.raises(ValueError) as err:
        cls(**kw)
    assert str(err.value) == message


# ---- defaults ----------------------------------------------------------------------------------------------------

def test_defaults():
    assert FinetuneModel() == FinetuneModel(encoder="e5-small", towers="shared", pooling=None, query_prefix=None,
                                            passage_prefix=None, query_max_length=64, passage_max_length=256)
    assert FinetuneData() == FinetuneData(format="pairs", path="", with_context=True, hard_negatives=0, language="en",
                                          max_examples=None, dedupe=True, shuffle_buffer=10000)
    assert FinetuneTrain() == FinetuneTrain(loss="mnrl", scale=20.0, gather_across_devices=True, mini_batch_size=32,
                                            batch_size=32, epochs=3.0, max_steps=-1, lr=2e-5, warmup_ratio=0.1,
                                            weight_decay=0.01, max_grad_norm=1.0, scheduler="linear", seed=0,
                                            bf16=True, logging_steps=10, save_steps=500)
    run = FinetuneRun()
    assert (run.output_dir, run.name, run.num_workers, run.fail_at_step) == ("outputs/finetune", "finetune", 1, None)
    cfg = config_from_dict({}, FinetuneConfig)
    assert cfg == FinetuneConfig(FinetuneModel(), FinetuneData(), FinetuneTrain(), FinetuneRun())
    assert cfg.model is not FinetuneConfig().model  # a fresh section each time (default_factory)


def test_formats_agree_with_the_readers():
    assert FORMATS == ("squad", "tevatron", "pairs", "mewsli_x")
    cfg_formats = set(get_args(get_type_hints(FinetuneData)["format"]))
    assert cfg_formats == set(FORMATS) == set(readers.SUFFIXES) == set(readers.FIX)


# ---- bounds ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["query_max_length", "passage_max_length"])
def test_model_max_lengths_are_at_least_four_tokens(field):
    assert getattr(FinetuneModel(**{field: 4}), field) == 4
    _fails(FinetuneModel, MODEL_MSG, **{field: 3})
    _fails(FinetuneModel, MODEL_MSG, **{field: -10})


def test_data_bounds():
    assert FinetuneData(hard_negatives=0).hard_negatives == 0
    assert FinetuneData(hard_negatives=5).hard_negatives == 5
    _fails(FinetuneData, "hard_negatives must be >= 0", hard_negatives=-1)
    assert FinetuneData(shuffle_buffer=0).shuffle_buffer == 0
    _fails(FinetuneData, "shuffle_buffer must be >= 0 (0: file order)", shuffle_buffer=-1)
    assert FinetuneData(max_examples=None).max_examples is None
    assert FinetuneData(max_examples=1).max_examples == 1
    _fails(FinetuneData, "max_examples must be >= 1 or null", max_examples=0)
    _fails(FinetuneData, "max_examples must be >= 1 or null", max_examples=-3)


def test_data_rules_are_checked_in_order():
    _fails(FinetuneData, "hard_negatives must be >= 0", hard_negatives=-1, shuffle_buffer=-1, max_examples=0)
    _fails(FinetuneData, "shuffle_buffer must be >= 0 (0: file order)", shuffle_buffer=-1, max_examples=0)


def test_train_batch_size_needs_a_second_example():
    assert FinetuneTrain(batch_size=2).batch_size == 2
    _fails(FinetuneTrain, BATCH_MSG, batch_size=1)
    _fails(FinetuneTrain, BATCH_MSG, batch_size=0)


@pytest.mark.parametrize("field", ["lr", "scale", "epochs"])
def test_train_rates_must_be_positive(field):
    assert getattr(FinetuneTrain(**{field: 1e-9}), field) == 1e-9
    _fails(FinetuneTrain, LR_MSG, **{field: 0.0})
    _fails(FinetuneTrain, LR_MSG, **{field: -1.0})


@pytest.mark.parametrize("field", ["save_steps", "logging_steps"])
def test_train_step_intervals_are_at_least_one(field):
    assert getattr(FinetuneTrain(**{field: 1}), field) == 1
    _fails(FinetuneTrain, STEPS_MSG, **{field: 0})


def test_train_rules_are_checked_in_order():
    _fails(FinetuneTrain, BATCH_MSG, batch_size=1, lr=0.0, save_steps=0)
    _fails(FinetuneTrain, LR_MSG, lr=0.0, save_steps=0)


def test_unbounded_train_fields_take_any_value():
    t = FinetuneTrain(max_steps=-1, warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=0.0, seed=-5, mini_batch_size=1)
    assert (t.max_steps, t.warmup_ratio, t.seed, t.mini_batch_size) == (-1, 0.0, -5, 1)


def test_run_settings_rules_apply_to_the_finetune_run():
    _fails(FinetuneRun, "need num_workers >= 1 and cpus_per_worker >= 0", num_workers=0)


# ---- through the loader: the file, the section, the key ---------------------------------------------------------

@pytest.mark.parametrize(("data", "message"), [
    ({"data": {"hard_negatives": -1}}, "<config>: data: hard_negatives must be >= 0"),
    ({"model": {"query_max_length": 2}}, f"<config>: model: {MODEL_MSG}"),
    ({"train": {"batch_size": 1}}, f"<config>: train: {BATCH_MSG}"),
    ({"train": {"scale": 0}}, f"<config>: train: {LR_MSG}"),
    ({"data": {"format": "csv"}},
     "<config>: data.format: expected one of 'squad', 'tevatron', 'pairs', 'mewsli_x', got str 'csv'"),
    ({"data": {"hard_negatives": True}}, "<config>: data.hard_negatives: expected int, got bool True"),
    ({"data": {"max_examples": "ten"}}, "<config>: data.max_examples: expected int or null, got str 'ten'"),
    ({"train": {"batch_size": 2.5}}, "<config>: train.batch_size: expected int, got float 2.5"),
    ({"model": {"towers": "three"}}, "<config>: model.towers: expected one of 'shared', 'separate', got str 'three'"),
    ({"train": {"loss": "triplet"}}, "<config>: train.loss: expected one of 'mnrl', 'cached_mnrl', got str 'triplet'"),
    ({"data": {"hard_negative": 1}},
     "<config>: data.hard_negative: unknown key for FinetuneData (known keys: dedupe, format, hard_negatives, "
     "language, max_examples, path, shuffle_buffer, with_context)"),
    ({"train": {"fail_at_step": 2}},
     "<config>: train.fail_at_step: this key moved to run.fail_at_step; write `run.fail_at_step: 2` there instead"),
])
def test_a_broken_value_names_the_key_and_the_rule(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, FinetuneConfig)
    assert str(err.value) == message


def test_a_yaml_file_loads_and_ints_become_floats(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("data: {format: tevatron, path: x.jsonl, hard_negatives: 3, max_examples: 10}\n"
                    "train: {lr: 1, epochs: 2, batch_size: 16}\nrun: {fail_at_step: 4}\n")
    cfg = load_config(path, FinetuneConfig)
    assert (cfg.data.format, cfg.data.path, cfg.data.hard_negatives, cfg.data.max_examples) == (
        "tevatron", "x.jsonl", 3, 10)
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float) and cfg.train.epochs == 2.0
    assert cfg.run.fail_at_step == 4 and cfg.data.dedupe is True  # unset keys keep their defaults
    path.write_text("data: {shuffle_buffer: -2}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, FinetuneConfig)
    assert str(err.value) == f"{path}: data: shuffle_buffer must be >= 0 (0: file order)"
