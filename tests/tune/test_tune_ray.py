"""Real sweeps on the session's local Ray cluster (2 CPUs), tiny random encoder, few steps, objective ``val_score``.

Every trial starts a Tune driver actor, a Train controller, a worker and Ray Data actors (~20-30 s on 2 cores), so
there is one sweep: 3 trials under ASHA, interrupted after ASHA stopped a trial, then resumed.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml
from ray.tune import Callback

from msm.config import load_config
from msm.errors import MSMError
from msm.train.config import PretrainConfig
from msm.tune import load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[2]


def write_sweep(tmp_path: Path, shared_data: Path, space: dict, max_steps: int, **fields) -> Path:
    data = {
        "base": str(REPO / "configs" / "pretrain" / "tiny-cpu.yaml"),
        "overrides": {"data": {"data_dir": str(shared_data)},
                      "optim": {"max_steps": max_steps, "warmup_steps": 1},
                      "validation": {"every_steps": 2, "max_sentences": 32, "languages": ["deu"]},
                      "run": {"cpus_per_worker": 0.7, "checkpoint_every": 1000, "keep_checkpoints": 1,
                              "tensorboard": False}},
        "space": space, "metric": "val_score", "mode": "max", "trial_cpus": 0.05, "train_poll_s": 0.2,
        "output_dir": str(tmp_path / "sweep"), "name": "t", **fields}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def metric_rows(trial_dir: str) -> list[dict]:
    return [json.loads(line) for line in (Path(trial_dir) / "metrics.jsonl").read_text().splitlines()]


HOPELESS = 1e4


class InterruptAtFirstHopelessTrial(Callback):
    """Sends the driver SIGUSR1 (Tune handles it like Ctrl+C: save the state, stop) once, when the first trial
    with the hopeless learning rate finishes."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.config["optim"]["lr"] == HOPELESS and not os.path.exists(self.flag):
            Path(self.flag).write_text(trial.trial_id)  # the callback is saved with the sweep and comes back
            os.kill(os.getpid(), signal.SIGUSR1)        # on resume: the flag keeps it from firing twice


@pytest.mark.timeout(900)  # ~3 min idle; a hang guard, not a speed test (a loaded 2-core machine took 410 s)
def test_asha_sweep_interrupted_and_resumed(ray_local, tmp_path, shared_data):
    """3 trials one at a time in grid order: a sane learning rate, then two hopeless ones (the model collapses,
    val_score drops to chance). ASHA (grace 1) stops the first hopeless trial at its first validation, below the
    sane trial's, which interrupts the sweep; the resumed sweep runs the last trial without touching the two
    finished ones."""
    path = write_sweep(tmp_path, shared_data, max_steps=8, searcher="random", num_samples=1,
                       max_concurrent_trials=1, asha={"grace_period": 1, "reduction_factor": 2, "max_t": 1000},
                       space={"optim.lr": {"grid": [1e-3, HOPELESS, HOPELESS]},
                              "model.memory_bank_size": {"choice": [0, 16]},
                              "model.temperature": {"loguniform": [0.05, 0.2]}})
    flag = tmp_path / "interrupted"
    first = run_sweep(load_sweep(path), verbose=0, callbacks=[InterruptAtFirstHopelessTrial(str(flag))])
    assert first.interrupted and flag.is_file()
    stopped = next(r for r in first.rows if r["trial_id"] == flag.read_text())
    assert stopped["status"] == "TERMINATED" and stopped["stopped_early"] and stopped["steps"] < 8, first.rows
    assert stopped["reports"] >= 1 and stopped["rank"] is not None
    sane = [r for r in first.rows if r["config/optim.lr"] == 1e-3]
    assert len(sane) == 1 and sane[0]["status"] == "TERMINATED"
    assert sane[0]["steps"] == 8 and sane[0]["reports"] == 4 and not sane[0]["stopped_early"], first.rows
    assert "of 3" in first.files["results_md"].read_text()
    finished = {r["trial_id"]: (Path(r["trial_dir"]) / "metrics.jsonl").read_text()
                for r in first.rows if r["status"] == "TERMINATED"}
    assert len(finished) == 2
    with pytest.raises(MSMError, match="pass --resume"):  # a fresh start over an interrupted sweep is refused
        run_sweep(load_sweep(path), verbose=0)

    out = run_sweep(load_sweep(path), resume=True, verbose=0)
    assert not out.interrupted and len(out.rows) == 3
    assert all(r["status"] == "TERMINATED" for r in out.rows), out.rows
    for trial_id, text in finished.items():  # finished trials were not run again
        assert (out.sweep_dir / "trials" / trial_id / "metrics.jsonl").read_text() == text
    last = next(r for r in out.rows if r["trial_id"] not in finished)
    assert last["config/optim.lr"] == HOPELESS and last["reports"] >= 1
    for r in out.rows:  # every trial trained and was scored on validation
        assert 0.0 <= r["val_score"] <= 1.0 and any("val_score" in m for m in metric_rows(r["trial_dir"]))
    # the sorted table, the best config (a sane trial's, ready to run) and the plot
    assert [r["rank"] for r in out.rows] == [1, 2, 3]
    assert [r["val_score"] for r in out.rows] == sorted((r["val_score"] for r in out.rows), reverse=True)
    assert out.best["config/optim.lr"] == 1e-3
    for name in ("results.csv", "results.json", "results.md", "best_config.yaml", "val_score_vs_knobs.png"):
        assert (out.sweep_dir / name).is_file(), name
    best = load_config(out.sweep_dir / "best_config.yaml", PretrainConfig)
    assert best.optim.lr == 1e-3 and best.model.memory_bank_size == out.best["config/model.memory_bank_size"]
    assert best.model.temperature == pytest.approx(out.best["config/model.temperature"])
    assert best.optim.max_steps == 8 and best.model.encoder == "tiny-random"


@pytest.mark.timeout(60)
def test_placement_groups_of_dead_controllers_are_released(ray_local):
    """What a stopped trial leaves behind when Train's own cleaner cannot reach the cluster: the driver removes it."""
    import time

    import ray
    from ray.util.placement_group import placement_group_table

    from msm.tune.runner import _worker_placement_groups, release_orphaned_placement_groups

    class RayTrainWorker:  # the class name Train V2's (module-level) workers carry in the State API
        def ping(self):
            return True

    RayTrainWorker.__qualname__ = "RayTrainWorker"  # not "test_...<locals>.RayTrainWorker"
    worker_class = ray.remote(num_cpus=0)(RayTrainWorker)

    @ray.remote(num_cpus=0)
    class Controller:
        def start(self):
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            pg = placement_group([{"CPU": 0.01}])
            ray.get(pg.ready())
            self.worker = worker_class.options(
                num_cpus=0.01, scheduling_strategy=PlacementGroupSchedulingStrategy(pg)).remote()
            ray.get(self.worker.ping.remote())
            return pg.id.hex()

    def wait_for(entry):
        for _ in range(100):  # the State API sees GCS changes after a moment
            if entry in _worker_placement_groups():
                return
            time.sleep(0.1)
        raise AssertionError(f"{entry} not in {_worker_placement_groups()}")

    controller = Controller.remote()
    pg_id = ray.get(controller.start.remote())
    wait_for((pg_id, False))
    assert release_orphaned_placement_groups() == 0  # its workers are alive: left alone
    ray.kill(controller)  # takes the worker it owns along
    wait_for((pg_id, True))
    assert release_orphaned_placement_groups() == 1
    assert placement_group_table()[pg_id]["state"] == "REMOVED"
