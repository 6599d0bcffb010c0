"""Sweep configs and search spaces without Ray: shipped configs load, bad spaces fail early naming the key,
Tune domains and searchers are built as configured, and the report (table, best config, plot) from a stub grid."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Optional, Union

import pandas as pd
import pytest
import yaml

from msm.cli import main
from msm.config import ConfigError, load_config
from msm.errors import MSMError
from msm.train.config import PretrainConfig
from msm.tune.config import (_absolute_paths, _accepts_float, _field_type, _resolve_base, AshaConfig, build_sweep,
                             dump_sweep, flatten, flatten_space, Knob, load_sweep, nest, parse_space, Sweep,
                             sweep_to_dict, SweepConfig)


REPO = Path(__file__).resolve().parents[2]
TINY_BASE = REPO / "configs" / "pretrain" / "tiny-cpu.yaml"


def write_sweep(tmp_path: Path, space: dict, **fields) -> Path:
    data = {"base": str(TINY_BASE), "space": space, "output_dir": str(tmp_path / "out"), "name": "s", **fields}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("path", ["configs/tune/tiny-cpu.yaml", "configs/tune/e5-small-cpu.yaml",
                                  "configs/tune/lr-mask-gpu.yaml"])
def test_shipped_configs_load(path):
    sweep = load_sweep(REPO / path)
    assert sweep.knobs and sweep.cfg.metric == "val_score" and sweep.cfg.mode == "max"
    cfg = load_config(REPO / path, type(sweep.cfg))
    assert cfg.base and (REPO / cfg.base).is_file()
    # every trial's resources fit one node of its target: 2 CPU cores here, an 8-CPU 1-GPU worker in k8s
    cpus, gpus = sweep.trial_resources()
    assert cpus <= (8 if gpus else 2) + 1e-9 and gpus <= 1


def test_k8s_sweep_job_points_at_an_existing_config():
    job = yaml.safe_load((REPO / "k8s" / "jobs" / "rayjob-sweep.yaml").read_text())
    args = job["spec"]["entrypoint"].split()
    assert args[:2] == ["python", "jobs/sweep.py"] and (REPO / args[1]).is_file()
    config = args[args.index("--config") + 1]
    from msm.config import parse_overrides

    sweep = load_sweep(REPO / config, parse_overrides([a for a in args[args.index("--config") + 2:]]))
    assert str(sweep.sweep_dir) == "/mnt/msm/runs/sweep"


BAD_SPACES = [
    ({"model.bogus": {"grid": [1]}}, "space.model.bogus: unknown key 'bogus'"),
    ({"nosuch.temperature": {"grid": [1]}}, "space.nosuch.temperature: unknown key 'nosuch'"),
    ({"model": {"choice": [1]}}, "space.model: 'model' is a whole section"),
    ({"model.temperature": {"choice": []}}, "space.model.temperature.choice: empty list"),
    ({"model.temperature": {"grid": []}}, "space.model.temperature.grid: empty list"),
    ({"model.temperature": {"uniform": [0.2, 0.1]}}, "space.model.temperature.uniform: bounds"),
    ({"model.temperature": {"uniform": [0.1]}}, "space.model.temperature.uniform: expected [low, high]"),
    ({"model.temperature": {"loguniform": [0.0, 0.1]}}, "space.model.temperature.loguniform: low must be > 0"),
    ({"model.memory_bank_size": {"uniform": [0, 64]}}, "space.model.memory_bank_size.uniform: "
                                                       "model.memory_bank_size is not a float knob"),
    ({"model.temperature": {"choice": [0.1, -1.0]}}, "space.model.temperature value -1.0"),
    ({"model.memory_bank_size": {"choice": [0, "big"]}}, "space.model.memory_bank_size value 'big'"),
    ({"model.temperature": {"grid": [0.1], "choice": [0.2]}}, "space.model.temperature: expected exactly one"),
    ({"model.temperature": {"range": [0.1, 0.2]}}, "space.model.temperature: expected exactly one"),
    ({"model.temperature": 0.1}, "space.model.temperature: expected exactly one"),
    ({"model.temperature": {"choice": 0.1}}, "space.model.temperature.choice: expected a list"),
    ({}, "space: empty"),
]


@pytest.mark.parametrize("space,message", BAD_SPACES, ids=[m.split(":")[0] + str(i) for i, (_, m) in
                                                            enumerate(BAD_SPACES)])
def test_invalid_space_names_the_key(tmp_path, space, message):
    with pytest.raises(ConfigError) as err:
        load_sweep(write_sweep(tmp_path, space))
    assert isinstance(err.value, MSMError) and message in str(err.value), str(err.value)
    assert str(tmp_path / "sweep.yaml") in str(err.value)


@pytest.mark.parametrize("fields,message", [
    ({"searcher": "optuna", "space": {"model.memory_bank_size": {"grid": [0, 64]}}}, "cannot take a grid"),
    ({"searcher": "grid", "space": {"model.temperature": {"uniform": [0.1, 0.2]}}}, "enumerates values only"),
    ({"asha": {"grace_period": 4, "max_t": 2}}, "max_t (2) must be >= grace_period (4)"),
    ({"num_samples": 0}, "num_samples must be >= 1"),
    ({"output_dir": "nosuch://bucket/sweep"}, "not a usable URI"),
    ({"overrides": {"optim": {"lr": -1}}}, "base/overrides"),
    ({"base": "configs/pretrain/missing.yaml"}, "config file not found"),
])
def test_invalid_sweep_settings(tmp_path, fields, message):
    fields = {"space": {"model.temperature": {"choice": [0.1]}}, **fields}
    space = fields.pop("space")
    with pytest.raises(MSMError) as err:
        load_sweep(write_sweep(tmp_path, space, **fields))
    assert message in str(err.value), str(err.value)


def test_cli_rejects_a_bad_space_before_anything_runs(tmp_path, capsys):
    path = write_sweep(tmp_path, {"model.temperature": {"choice": []}})
    assert main(["tune", "--config", str(path)]) == 2
    assert "space.model.temperature.choice: empty list" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # overrides on the command line reach the space (nested form) and are checked the same way
    good = write_sweep(tmp_path, {"model.temperature": {"choice": [0.1]}})
    assert main(["tune", "--config", str(good), "space.model.mask_ratio={uniform: [0.5, 1.5]}"]) == 2
    assert "space.model.mask_ratio value 1.5" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_resume_without_state_fails_clearly(tmp_path):
    from msm.tune.runner import run_sweep

    sweep = load_sweep(write_sweep(tmp_path, {"model.temperature": {"choice": [0.1]}}))
    with pytest.raises(MSMError, match="no sweep state to resume"):
        run_sweep(sweep, resume=True)


def test_space_keys_values_and_base(tmp_path):
    path = write_sweep(tmp_path, {"model": {"memory_bank_size": {"grid": [0, 64]}},  # nested form works too
                                  "model.num_cross_doc_negatives": {"choice": [None, 2]},
                                  "model.balance_bias": {"choice": [0.0, 0.5]},
                                  "model.temperature": {"loguniform": [0.05, 0.2]},
                                  "model.mask_ratio": {"uniform": [0.5, 1]},
                                  "data.single_language_batches": {"choice": [True, False]},
                                  "optim.lr": {"loguniform": [1e-5, 1e-3]}},
                       overrides={"optim": {"max_steps": 6}, "data": {"data_dir": "rel/data"}})
    sweep = load_sweep(path)
    assert [k.key for k in sweep.knobs][:2] == ["model.memory_bank_size", "model.num_cross_doc_negatives"]
    assert sweep.knobs[4].values == (0.5, 1.0)
    assert sweep.base["optim"]["max_steps"] == 6 and sweep.base["model"]["encoder"] == "tiny-random"
    assert Path(sweep.base["data"]["data_dir"]).is_absolute()  # resolved on the driver
    cfg = sweep.trial_config({"model.memory_bank_size": 0, "data.single_language_batches": False})
    assert cfg["model"]["memory_bank_size"] == 0 and cfg["data"]["single_language_batches"] is False
    assert nest(flatten(cfg)) == cfg
    assert sweep.sweep_dir == (tmp_path / "out").resolve() and Path(sweep.experiment_dir).name == "s"


def test_param_space_and_searchers(tmp_path):
    """Every configured value reaches the Tune objects (Ray keeps some only in private fields, read here). Kills a
    hard-coded ASHA grace period / reduction factor / max_t, a dropped seed or max_concurrent, a choice cut to its
    first value and swapped or wrong loguniform / uniform bounds."""
    import numpy as np
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.sample import Categorical, Float

    from msm.tune.runner import build_scheduler, build_search_alg, param_space

    space = {"model.memory_bank_size": {"grid": [0, 64]}, "model.balance_bias": {"choice": [0.0, 0.25, 0.5]},
             "model.temperature": {"loguniform": [0.05, 0.2]}, "model.mask_ratio": {"uniform": [0.5, 1.0]}}
    sweep = load_sweep(write_sweep(tmp_path, space, seed=3, asha={"grace_period": 2, "reduction_factor": 3,
                                                                   "max_t": 50, "time_attr": "step"}))
    ps = param_space(sweep.knobs, "random")
    assert ps["model"]["memory_bank_size"] == {"grid_search": [0, 64]}
    bias, temp, mask = ps["model"]["balance_bias"], ps["model"]["temperature"], ps["model"]["mask_ratio"]
    assert isinstance(bias, Categorical) and bias.categories == [0.0, 0.25, 0.5]
    assert isinstance(temp.get_sampler(), Float._LogUniform) and (temp.lower, temp.upper) == (0.05, 0.2)
    assert isinstance(mask.get_sampler(), Float._Uniform) and (mask.lower, mask.upper) == (0.5, 1.0)
    grid = load_sweep(write_sweep(tmp_path, {"model.balance_bias": {"choice": [0.0, 0.5]}}, searcher="grid"))
    assert param_space(grid.knobs, "grid") == {"model": {"balance_bias": {"grid_search": [0.0, 0.5]}}}
    search = build_search_alg(sweep.cfg, max_concurrent=2)
    assert isinstance(search, BasicVariantGenerator) and search.max_concurrent == 2
    assert search._random_state.random() == np.random.default_rng(3).random()  # seeded with the config's seed
    assert build_search_alg(sweep.cfg).max_concurrent == 0  # 0: no limit
    asha = build_scheduler(sweep.cfg)
    assert isinstance(asha, ASHAScheduler) and (asha._time_attr, asha._max_t, asha._reduction_factor) == ("step", 50, 3)
    # rungs at grace_period × reduction_factor^i below max_t: 2, 6, 18 (54 > 50)
    assert sorted(milestone for milestone, _ in asha._brackets[0]._rungs) == [2, 6, 18]
    fifo = load_sweep(write_sweep(tmp_path, space, asha={"enabled": False}))
    assert isinstance(build_scheduler(fifo.cfg), FIFOScheduler)


def test_optuna_searcher(tmp_path):
    pytest.importorskip("optuna")
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch
    from ray.tune.search.sample import Categorical, Float

    from msm.tune.runner import build_search_alg, param_space

    sweep = load_sweep(write_sweep(tmp_path, {"model.temperature": {"loguniform": [0.05, 0.2]},
                                              "model.num_cross_doc_negatives": {"choice": [None, 2, 8]}},
                                   searcher="optuna", seed=7))
    search = build_search_alg(sweep.cfg)
    assert isinstance(search, OptunaSearch) and search._seed == 7
    limited = build_search_alg(sweep.cfg, max_concurrent=3)
    assert isinstance(limited, ConcurrencyLimiter) and limited.max_concurrent == 3
    assert isinstance(limited.searcher, OptunaSearch) and limited.searcher._seed == 7
    ps = param_space(sweep.knobs, "optuna")["model"]
    assert isinstance(ps["num_cross_doc_negatives"], Categorical) and ps["num_cross_doc_negatives"].categories == [
        None, 2, 8]
    temp = ps["temperature"]
    assert isinstance(temp.get_sampler(), Float._LogUniform) and (temp.lower, temp.upper) == (0.05, 0.2)
    with pytest.raises(ConfigError, match="space.optim.betas.choice: searcher 'optuna' takes only"):
        load_sweep(write_sweep(tmp_path, {"optim.betas": {"choice": [[0.9, 0.98], [0.9, 0.999]]}},
                               searcher="optuna"))


class _Trial:
    def __init__(self, trial_id, status, config):
        self.trial_id, self.status, self.config = trial_id, status, config
        self.path = f"/sweep/exp/{trial_id}"


class _Result:
    def __init__(self, values, metrics=None, error=None):
        self.metrics_dataframe = pd.DataFrame({"val_score": values}) if values is not None else None
        self.metrics = metrics or {}
        self.error = error
        self.path = None


_SAVED: dict[str, list] = {}  # experiment path -> the trials Tune saved there


class _Analysis:
    """``tune.ExperimentAnalysis``: the trials of the experiment state saved at ``path``."""

    def __init__(self, path, storage_filesystem=None):
        self.trials = _SAVED[path]


class _Grid:
    """The slice of ``ResultGrid`` the report reads: results (here in another order than the trials)."""

    def __init__(self, entries):
        for trial, result in entries:
            result.path = trial.path
        self._results = [r for _, r in reversed(entries)]
        self.experiment_path, self.filesystem = f"/sweep/exp-{id(self)}", None
        _SAVED[self.experiment_path] = [t for t, _ in entries]

    def __len__(self):
        return len(self._results)

    def __getitem__(self, i):
        return self._results[i]


@pytest.fixture()
def saved_trials(monkeypatch):
    monkeypatch.setattr("msm.tune.report.ExperimentAnalysis", _Analysis)


def test_report_sorts_exports_best_config_and_plots(tmp_path, saved_trials):
    from msm.tune.report import write_report

    space = {"model.memory_bank_size": {"grid": [0, 64]}, "model.num_cross_doc_negatives": {"choice": [None, 2]},
             "model.temperature": {"loguniform": [0.05, 0.2]}}
    sweep = load_sweep(write_sweep(tmp_path, space, overrides={"optim": {"max_steps": 6}}))
    for tid, steps in (("t0", 6), ("t1", 2), ("t2", 6)):
        folder = sweep.sweep_dir / "trials" / tid
        folder.mkdir(parents=True)
        (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, steps + 1))
                                              + '{"step": 9, "tor')  # a torn last line is skipped
    knobs = lambda bank, neg, t: {"model": {"memory_bank_size": bank, "num_cross_doc_negatives": neg,  # noqa: E731
                                            "temperature": t}}
    grid = _Grid([
        (_Trial("t0", "TERMINATED", knobs(0, None, 0.1)), _Result([0.2, 0.5, 0.4], {"loss": 2.0, "done": True})),
        (_Trial("t1", "TERMINATED", knobs(64, 2, 0.06)), _Result([0.1], {"loss": 3.0})),
        (_Trial("t2", "TERMINATED", knobs(64, None, 0.15)), _Result([0.3, float("nan"), 0.45], {"loss": 1.0})),
        (_Trial("t3", "ERROR", knobs(0, 2, 0.07)), _Result(None, error=RuntimeError("boom\nlast line"))),
    ])
    out = write_report(sweep, grid)
    assert [r["trial_id"] for r in out.rows] == ["t0", "t2", "t1", "t3"]  # best val_score (max) first
    assert [r["rank"] for r in out.rows] == [1, 2, 3, None]
    t0, t2, t1, t3 = out.rows
    assert (t0["val_score"], t0["val_score_last"], t0["reports"]) == (0.5, 0.4, 3)
    assert t2["val_score"] == 0.45 and t1["stopped_early"] and not t0["stopped_early"] and t1["steps"] == 2
    assert t3["error"] == "last line" and t3["val_score"] is None
    assert out.best["trial_id"] == "t0" and not out.interrupted
    csv = pd.read_csv(out.files["results_csv"])
    assert list(csv["trial_id"]) == ["t0", "t2", "t1", "t3"] and "config/model.memory_bank_size" in csv
    data = json.loads(out.files["results_json"].read_text())
    assert data["knobs"] == [f"config/{k}" for k in space] and data["best"]["trial_id"] == "t0"
    md = out.files["results_md"].read_text()
    assert "| 1 | t0 | TERMINATED |" in md and "best config" in md
    best = load_config(out.files["best_config"], PretrainConfig)
    assert (best.model.memory_bank_size, best.model.num_cross_doc_negatives, best.model.temperature) == (0, None, 0.1)
    assert best.optim.max_steps == 6 and best.run.output_dir == str(sweep.sweep_dir / "best-run")
    assert out.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from msm.ui.runs import is_tune_dir, load_tune_results  # the UI's runs page reads the same folder

    table = load_tune_results(sweep.sweep_dir)
    assert is_tune_dir(sweep.sweep_dir) and len(table.knobs) == 3 and [p.name for p in table.plots] == [
        "val_score_vs_knobs.png"]
    # min mode and scope last rank differently
    sweep.cfg.mode, sweep.cfg.scope = "min", "last"
    rows = write_report(sweep, grid).rows
    assert [r["trial_id"] for r in rows][:3] == ["t1", "t0", "t2"] and math.isclose(rows[0]["val_score"], 0.1)


def test_report_without_metric_has_no_best_config(tmp_path, saved_trials):
    from msm.tune.report import write_report

    sweep = load_sweep(write_sweep(tmp_path, {"model.temperature": {"choice": [0.1]}}))
    (sweep.sweep_dir).mkdir(parents=True)
    (sweep.sweep_dir / "best_config.yaml").write_text("stale")
    out = write_report(sweep, _Grid([(_Trial("t0", "PENDING", {}), _Result(None))]))
    assert out.best is None and out.interrupted and "best_config" not in out.files
    assert not (sweep.sweep_dir / "best_config.yaml").exists()


def test_concurrency_is_capped_to_what_the_cluster_holds(tmp_path, monkeypatch):
    import ray

    from msm.tune.runner import concurrency

    space = {"model.temperature": {"choice": [0.1]}}
    overrides = {"run": {"cpus_per_worker": 0.7}}
    sweep = load_sweep(write_sweep(tmp_path, space, overrides=overrides, trial_cpus=0.05, max_concurrent_trials=4))
    assert sweep.trial_resources() == (pytest.approx(1.0), 0.0)  # 0.05 driver + 0.7 worker + 0.25 Ray Data
    notes = []
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    assert concurrency(sweep, notes.append) == 2 and "max_concurrent_trials 4 -> 2" in notes[0]
    sweep.cfg.max_concurrent_trials = None
    assert concurrency(sweep, notes.append) == 2
    sweep.cfg.max_concurrent_trials = 1
    assert concurrency(sweep, notes.append) == 1
    gpu = load_sweep(write_sweep(tmp_path, space, overrides={"run": {"use_gpu": True, "num_workers": 2}},
                                 max_concurrent_trials=3))
    assert gpu.trial_resources()[1] == 2.0
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 64.0, "GPU": 1.0})  # autoscaler still adding
    assert concurrency(gpu, notes.append) == 3 and "trials wait for more" in notes[-1]
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 64.0, "GPU": 4.0})
    assert concurrency(gpu, notes.append) == 2


def sweep_of(space, searcher="random", **fields) -> Sweep:
    return build_sweep(SweepConfig(base=str(TINY_BASE), space=space, searcher=searcher, **fields))


def whole(message: str) -> str:
    """A pattern matching exactly ``message``, nothing before or after."""
    return "^" + re.escape(message) + "$"


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


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grace_period": 0}, "grace_period must be >= 1"),
    ({"reduction_factor": 1.0}, "reduction_factor must be > 1"),
])
def test_asha_messages_are_exact(kwargs, message):
    """An out-of-range ASHA field fails with exactly the documented message, no extra text around it."""
    with pytest.raises(ValueError, match=whole(message)):
        AshaConfig(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_samples": 0}, "num_samples must be >= 1"),
    ({"max_concurrent_trials": 0}, "max_concurrent_trials must be >= 1 or null"),
    ({"train_poll_s": -1.0}, "train_poll_s must be > 0 or null"),
    ({"data_cpus": -0.5}, "trial_cpus and data_cpus must be >= 0"),
    ({"metric": ""}, "metric must be a non-empty name"),
    ({"name": "a/b"}, "name must be a non-empty folder name without '/'"),
])
def test_sweep_messages_are_exact(kwargs, message):
    """An out-of-range sweep field fails with exactly the documented message, no extra text around it."""
    with pytest.raises(ValueError, match=whole(message)):
        SweepConfig(**kwargs)


def test_empty_space_message_shows_a_usable_example():
    """An empty space fails naming the file and giving a knob example that can be pasted as is."""
    with pytest.raises(ConfigError, match=whole(
            "s.yaml: space: empty; add at least one knob, e.g. 'model.memory_bank_size: {grid: [0, 1024]}'")):
        parse_space({}, {}, "random", "s.yaml")


def test_spec_with_two_kinds_lists_the_kinds_it_got():
    """A knob naming two distribution kinds fails listing those kind names (not the whole mapping)."""
    with pytest.raises(ConfigError, match=re.escape(
            "s.yaml: space.model.temperature: expected exactly one of grid, choice, uniform, loguniform "
            "(e.g. {choice: [a, b]}), got ['grid', 'choice']") + "$"):
        parse_space({"model.temperature": {"grid": [0.1], "choice": [0.2]}}, {}, "random", "s.yaml")


def test_spec_given_as_a_bare_list_shows_that_list():
    """A knob written as a bare list (no kind) fails showing the list it got."""
    with pytest.raises(ConfigError, match=re.escape("(e.g. {choice: [a, b]}), got [0.1, 0.2]") + "$"):
        parse_space({"model.temperature": [0.1, 0.2]}, {}, "random", "s.yaml")


def test_non_list_values_name_their_type():
    """``{grid: 5}`` fails naming the type and value it got instead of a list."""
    with pytest.raises(ConfigError, match=whole("s.yaml: space.model.memory_bank_size.grid: expected a list, "
                                                "got int 5")):
        parse_space({"model.memory_bank_size": {"grid": 5}}, {}, "random", "s.yaml")


def test_a_sweep_at_a_uri_keeps_the_uri_and_reports_in_a_work_folder(s3_server):
    """A sweep at an S3 URI: its saved copy names the URI (resume finds it there), Tune's experiment and the trials'
    runs go under it, the report is written in a local work folder (one per URI) and put there."""
    from msm.tune.trainable import trial_output_dir

    cfg = SweepConfig(base=str(TINY_BASE), space={"model.temperature": {"choice": [0.1]}}, output_dir="s3://runs/sw",
                      name="n")
    sweep = build_sweep(cfg, "<src>")
    assert sweep_to_dict(sweep)["output_dir"] == "s3://runs/sw" and sweep.experiment_dir == "s3://runs/sw/n"
    assert trial_output_dir(sweep.where, "t1") == "s3://runs/sw/trials/t1"
    assert sweep.sweep_dir.is_absolute() and "s3:" not in str(sweep.sweep_dir)
    assert sweep.sweep_dir == build_sweep(cfg, "<src>").sweep_dir  # the same work folder for the same URI
    sweep.sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep.sweep_dir / "results.md").write_text("# table\n")
    assert sweep.read("results.md") is None
    sweep.upload("results.md", "missing.json")
    assert sweep.read("results.md") == "# table\n" and sweep.read("missing.json") is None


def test_bad_overrides_without_base_name_overrides():
    """With no base file, an unknown key in ``overrides`` fails naming the sweep file, ``overrides`` and the key."""
    cfg = SweepConfig(overrides={"model": {"bogus": 1}}, space={"model.temperature": {"choice": [0.1]}})
    with pytest.raises(ConfigError, match=r"^<src>: base/overrides: <src>: overrides: model\.bogus: unknown key "
                                          r"for MSMModelConfig"):
        build_sweep(cfg, "<src>")


def test_relative_base_is_found_next_to_the_sweep_file(tmp_path, monkeypatch):
    """``base: base.yaml`` in a sweep file resolves next to that file even when the cwd is elsewhere."""
    sweeps, elsewhere = tmp_path / "sweeps", tmp_path / "elsewhere"
    sweeps.mkdir()
    elsewhere.mkdir()
    (sweeps / "base.yaml").write_text(yaml.safe_dump({"model": {"memory_bank_size": 7}}))
    (sweeps / "s.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "output_dir": str(tmp_path / "out"),
                                                   "space": {"model.temperature": {"choice": [0.1]}}}))
    monkeypatch.chdir(elsewhere)
    sweep = load_sweep(sweeps / "s.yaml")
    assert sweep.base["model"]["memory_bank_size"] == 7  # the value written in sweeps/base.yaml
    direct = build_sweep(SweepConfig(base="base.yaml", space={"model.temperature": {"choice": [0.1]}}), "<s>",
                         sweeps)
    assert direct.base["model"]["memory_bank_size"] == 7


def test_relative_base_in_the_cwd_wins_over_the_sweep_folder(tmp_path, monkeypatch):
    """A relative ``base`` that exists in the cwd is used as given, even if the sweep folder has one too."""
    cwd, sweeps = tmp_path / "cwd", tmp_path / "sweeps"
    cwd.mkdir()
    sweeps.mkdir()
    (cwd / "base.yaml").write_text("{}")
    (sweeps / "base.yaml").write_text("{}")
    monkeypatch.chdir(cwd)
    assert _resolve_base("base.yaml", sweeps) == Path("base.yaml")
