"""msm.tune.config rules one by one: documented defaults (docs/tune.md), range checks at their boundaries, the
dotted-key helpers, trial counts and resources worked out by hand, base-path resolution and the resolved copy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import pytest
import yaml

from msm.config import ConfigError
from msm.tune.config import (AshaConfig, Knob, Sweep, SweepConfig, _absolute_paths, _accepts_float, _field_type,
                             _resolve_base, build_sweep, dump_sweep, flatten, flatten_space, load_sweep, nest,
                             parse_space, sweep_to_dict)

REPO = Path(__file__).resolve().parents[2]
TINY_BASE = REPO / "configs" / "pretrain" / "tiny-cpu.yaml"


def test_documented_defaults():
    """The defaults of docs/tune.md's config reference table."""
    cfg, asha = SweepConfig(), AshaConfig()
    assert (cfg.base, cfg.overrides, cfg.space, cfg.searcher, cfg.num_samples) == (None, {}, {}, "random", 1)
    assert (cfg.metric, cfg.mode, cfg.scope, cfg.max_concurrent_trials) == ("val_score", "max", "all", None)
    assert (cfg.trial_cpus, cfg.data_cpus, cfg.train_poll_s, cfg.seed) == (0.1, 0.25, None, 0)
    assert (cfg.output_dir, cfg.name) == ("outputs/tune", "sweep")
    assert (asha.enabled, asha.time_attr, asha.grace_period, asha.reduction_factor, asha.max_t) == (
        True, "training_iteration", 1, 2.0, 1000)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grace_period": 0}, "grace_period must be >= 1"),
    ({"grace_period": 3, "max_t": 2}, r"max_t \(2\) must be >= grace_period \(3\)"),
    ({"reduction_factor": 1.0}, "reduction_factor must be > 1"),
])
def test_asha_bounds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AshaConfig(**kwargs)


def test_asha_and_sweep_boundary_values_are_accepted():
    AshaConfig(grace_period=1, max_t=1, reduction_factor=1.01)
    SweepConfig(num_samples=1, max_concurrent_trials=1, train_poll_s=0.01, trial_cpus=0.0, data_cpus=0.0,
                metric="m", name="n")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_samples": 0}, "num_samples must be >= 1"),
    ({"max_concurrent_trials": 0}, "max_concurrent_trials must be >= 1 or null"),
    ({"train_poll_s": 0.0}, "train_poll_s must be > 0 or null"),
    ({"trial_cpus": -0.1}, "trial_cpus and data_cpus must be >= 0"),
    ({"data_cpus": -0.1}, "trial_cpus and data_cpus must be >= 0"),
    ({"metric": ""}, "metric must be a non-empty name"),
    ({"name": ""}, "name must be a non-empty folder name"),
    ({"name": "a/b"}, "without '/'"),
])
def test_sweep_bounds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SweepConfig(**kwargs)


def test_knob_column_and_kind():
    assert Knob("model.temperature", "uniform", (0.1, 0.2)).column == "config/model.temperature"
    assert [Knob("k", kind, ()).categorical for kind in ("grid", "choice", "uniform", "loguniform")] == [
        True, True, False, False]


def test_nest_and_flatten_by_hand():
    flat = {"a.b.c": 1, "a.b.d": [1, 2], "a.e": 2, "f": {}}
    nested = {"a": {"b": {"c": 1, "d": [1, 2]}, "e": 2}, "f": {}}
    assert nest(flat) == nested
    assert flatten(nested) == flat  # an empty dict is a value, lists stay values
    assert flatten({"x": {"y": 1}}, prefix="p") == {"p.x.y": 1}
    assert flatten_space({"model": {"temperature": {"choice": [0.1]}, "mask_ratio": {"uniform": [0.5, 1]}},
                          "optim.lr": {"grid": [1]}, "run": {}}) == {
        "model.temperature": {"choice": [0.1]}, "model.mask_ratio": {"uniform": [0.5, 1]},
        "optim.lr": {"grid": [1]}, "run": {}}


def test_field_types_and_float_knobs():
    assert _field_type("model.temperature") is float
    assert _accepts_float(_field_type("model.proj_dim")) is False  # int | None
    with pytest.raises(ConfigError, match="model.temperature is not a section, so 'model.temperature.x'"):
        _field_type("model.temperature.x")
    with pytest.raises(ConfigError, match=r"unknown key 'bogus' in PretrainConfig \(known: data, model"):
        _field_type("bogus")
    assert _accepts_float(float) and _accepts_float(Optional[float]) and _accepts_float(float | None)
    assert _accepts_float(Union[int, float]) and not _accepts_float(int) and not _accepts_float(Optional[int])
    assert not _accepts_float(str)


def sweep_of(space, searcher="random", **fields) -> Sweep:
    return build_sweep(SweepConfig(base=str(TINY_BASE), space=space, searcher=searcher, **fields))


def test_expected_trials_by_hand():
    space = {"model.memory_bank_size": {"grid": [0, 16]}, "model.balance_bias": {"choice": [0.0, 0.5, 1.0]},
             "model.temperature": {"uniform": [0.05, 0.2]}}
    assert sweep_of(space, num_samples=3).expected_trials == 3 * 2  # choice is sampled, not enumerated
    grid = {k: v for k, v in space.items() if k != "model.temperature"}
    assert sweep_of(grid, "grid", num_samples=2).expected_trials == 2 * 2 * 3


def test_trial_resources_take_each_knobs_largest_value():
    base = {"run": {"num_workers": 2, "cpus_per_worker": 1.5, "use_gpu": False}}
    plain = Sweep(SweepConfig(trial_cpus=0.5, data_cpus=0.25), base, [], "<t>")
    assert plain.trial_resources() == (0.5 + 2 * 1.5 + 0.25, 0.0)
    knobs = [Knob("run.num_workers", "grid", (3, 1)), Knob("run.cpus_per_worker", "choice", (1.0, 2.0)),
             Knob("run.use_gpu", "choice", (False, True))]
    assert Sweep(SweepConfig(trial_cpus=0.5, data_cpus=0.25), base, knobs, "<t>").trial_resources() == (
        0.5 + 3 * 2.0 + 0.25, 3.0)
    gpu = {"run": {"num_workers": 2, "cpus_per_worker": 1.0, "use_gpu": True}}
    assert Sweep(SweepConfig(), gpu, [], "<t>").trial_resources()[1] == 2.0


def test_ranges_become_float_pairs_and_bad_ranges_fail():
    knob = sweep_of({"model.temperature": {"uniform": [1, 2]}}).knobs[0]
    assert knob.values == (1.0, 2.0) and all(type(v) is float for v in knob.values)
    assert sweep_of({"model.temperature": {"loguniform": [0.01, 0.1]}}).knobs[0] == Knob(
        "model.temperature", "loguniform", (0.01, 0.1))
    for bad, message in [([0.1, float("inf")], "bounds must be finite"), ([True, 2], "expected \\[low, high\\]"),
                         ([0.1, 0.1], "low < high"), ([0.1, 0.2, 0.3], "expected \\[low, high\\]"),
                         (["a", 1], "expected \\[low, high\\]")]:
        with pytest.raises(ConfigError, match=message):
            sweep_of({"model.temperature": {"uniform": bad}})
    with pytest.raises(ConfigError, match="loguniform: low must be > 0, got -0.1"):
        sweep_of({"model.temperature": {"loguniform": [-0.1, 0.1]}})
    with pytest.raises(ConfigError, match="value 2.0"):  # both bounds must make a valid config (mask_ratio <= 1)
        sweep_of({"model.mask_ratio": {"uniform": [0.5, 2.0]}})


def test_searcher_rules():
    assert sweep_of({"model.num_cross_doc_negatives": {"choice": [None, 2]}}, "optuna").knobs[0].values == (None, 2)
    with pytest.raises(ConfigError, match="searcher 'optuna' takes only null, bool, number or string"):
        sweep_of({"data.languages": {"choice": [["deu", "fra"], ["eng"]]}}, "optuna")
    sweep_of({"data.languages": {"choice": [["deu", "fra"], ["eng"]]}}, "random")  # lists are fine elsewhere
    with pytest.raises(ConfigError, match="searcher 'grid' enumerates values only; use grid or choice, or searcher "
                                          "random/optuna for loguniform"):
        sweep_of({"model.temperature": {"loguniform": [0.01, 0.1]}}, "grid")
    with pytest.raises(ConfigError, match="<sweep>: space.model.temperature: expected exactly one of grid, choice"):
        parse_space({"model.temperature": {}}, {}, "random")
    with pytest.raises(ConfigError, match="space.model.temperature: expected exactly one of grid, choice, uniform, "
                                          "loguniform, got 'chioce'"):  # a typo in the kind, nested form
        sweep_of({"model": {"temperature": {"chioce": [0.1]}}})


def test_base_resolution(tmp_path, monkeypatch):
    assert _resolve_base(None, tmp_path) is None
    assert _resolve_base(str(TINY_BASE), None) == TINY_BASE
    nested = tmp_path / "configs" / "tune"
    nested.mkdir(parents=True)
    (tmp_path / "configs" / "base.yaml").write_text("{}")
    monkeypatch.chdir(REPO.parent)
    assert _resolve_base("configs/base.yaml", nested) == tmp_path / "configs" / "base.yaml"  # via a parent
    assert _resolve_base("base.yaml", nested.parent) == tmp_path / "configs" / "base.yaml"
    assert _resolve_base("missing.yaml", nested) == Path("missing.yaml")
    assert _resolve_base("missing.yaml", None) == Path("missing.yaml")


def test_absolute_data_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {"data": {"data_dir": "rel", "path": "s3://bucket/x", "other": "keep"}, "model": {"encoder": "rel"}}
    out = _absolute_paths(base)
    assert out["data"] == {"data_dir": str(tmp_path / "rel"), "path": "s3://bucket/x", "other": "keep"}
    assert out["model"] == {"encoder": "rel"} and base["data"]["data_dir"] == "rel"  # input untouched
    assert _absolute_paths({"data": {"path": "p"}})["data"]["path"] == str(tmp_path / "p")
    assert _absolute_paths({})["data"] == {}


def test_resolved_copy_round_trips(tmp_path):
    sweep = sweep_of({"model.temperature": {"choice": [0.1, 0.2]}}, output_dir=str(tmp_path / "o"), name="n")
    data = sweep_to_dict(sweep)
    assert data["base"] is None and data["overrides"] == sweep.base and data["output_dir"] == str(tmp_path / "o")
    assert data["space"] == {"model.temperature": {"choice": [0.1, 0.2]}} and data["name"] == "n"
    path = dump_sweep(sweep, tmp_path / "sweep.yaml")
    text = path.read_text()
    assert text.startswith("# Resolved sweep (from <sweep>); `msm tune --resume` reads this copy.\n")
    assert list(yaml.safe_load(text)) == list(data)  # key order kept (sort_keys=False)
    again = load_sweep(path)
    assert again.knobs == sweep.knobs and again.base == sweep.base
    named = dump_sweep(sweep_of({"model.temperature": {"choice": [0.1]}}, output_dir=str(tmp_path / "o"),
                                name="süß-Ω"), tmp_path / "named.yaml")
    assert "name: süß-Ω" in named.read_text(encoding="utf-8")  # written as is (allow_unicode), not \xFC escapes
    uri = SweepConfig(base=str(TINY_BASE), space={"model.temperature": {"choice": [0.1]}}, output_dir="s3://b/x")
    with pytest.raises(ConfigError, match="<src>: output_dir: 's3://b/x' is a URI"):
        build_sweep(uri, "<src>")
