"""msm.runtime: a job that cannot fit the cluster fails before it starts, a stalled run says why (and can end),
and reads beside training workers ask only for what a small cluster has left."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from msm.config import load_config
from msm.runtime import DATA_CPUS, Ask, Pending, ResourceError, StallWatch, check_fits, fits_how_many, job_asks

REPO = Path(__file__).resolve().parents[1]
TWO_CPUS = {"CPU": 2.0, "memory": 1e10}


def test_a_job_that_fits_passes_and_one_that_does_not_names_its_numbers_and_keys():
    check_fits("msm pretrain", job_asks(1, 1.5, False), total=TWO_CPUS)  # 1.5 + one 0.25 read task = 1.75
    check_fits("msm pretrain", job_asks(1, 1.75, False), total=TWO_CPUS)  # exactly 2
    with pytest.raises(ResourceError) as err:
        check_fits("msm pretrain", job_asks(2, 1.0, False), total=TWO_CPUS)
    msg = str(err.value)
    assert msg.startswith("msm pretrain needs 2.25 CPU (2 training worker(s) × 1 CPU (run.num_workers, "
                          "run.cpus_per_worker) + 1 Ray Data read task(s) × 0.25 CPU) but the Ray cluster has 2 CPU")
    assert "Lower run.num_workers, run.cpus_per_worker or add a node" in msg
    assert "run.wait_for_nodes=true" in msg


def test_gpus_are_counted_apart_from_cpus():
    with pytest.raises(ResourceError, match=r"needs 2 GPU \(2 training worker\(s\) × 0.5 CPU \+ 1 GPU .*has 1 GPU"):
        check_fits("msm finetune", job_asks(2, 0.5, True), total={"CPU": 16.0, "GPU": 1.0})
    check_fits("msm finetune", job_asks(2, 0.5, True), total={"CPU": 16.0, "GPU": 2.0})


def test_a_cluster_that_can_grow_gets_a_note_instead_of_an_error():
    notes = []
    check_fits("msm tune (one trial)", [Ask("trial driver(s)", 1, 3.0, key="trial_cpus")], total=TWO_CPUS,
               can_grow=True, grow_key="overrides.run.wait_for_nodes", log=notes.append)
    assert len(notes) == 1 and notes[0].startswith("note: msm tune (one trial) needs 3 CPU (1 trial driver(s) × 3 CPU "
                                                   "(trial_cpus)) but the Ray cluster has 2 CPU")
    assert notes[0].endswith("overrides.run.wait_for_nodes is set, so it waits for the autoscaler to add nodes")


def test_fits_how_many():
    assert fits_how_many((0.75, 0.0), TWO_CPUS) == 2
    assert fits_how_many((0.7, 0.0), TWO_CPUS) == 2
    assert fits_how_many((1.0, 1.0), {"CPU": 8.0, "GPU": 3.0}) == 3
    assert fits_how_many((0.0, 0.0), TWO_CPUS) is None
    assert fits_how_many((2.5, 0.0), TWO_CPUS) == 0


def test_every_shipped_cpu_config_fits_a_two_cpu_machine():
    """The demo, the tiny configs and the e5-small CPU recipes are run on 2-CPU machines (and in CI)."""
    from msm.finetune.config import FinetuneConfig
    from msm.train.config import PretrainConfig
    from msm.tune import load_sweep

    for path in [REPO / "configs/demo/pretrain.yaml", *sorted((REPO / "configs/pretrain").glob("*cpu*.yaml")),
                 REPO / "configs/pretrain/e5-small-mined.yaml"]:
        r = load_config(path, PretrainConfig).run
        check_fits(str(path), job_asks(r.num_workers, r.cpus_per_worker, r.use_gpu), total=TWO_CPUS)
    for path in sorted((REPO / "configs/finetune").glob("*cpu*.yaml")):
        r = load_config(path, FinetuneConfig).run
        check_fits(str(path), job_asks(r.num_workers, r.cpus_per_worker, r.use_gpu), total=TWO_CPUS)
    for path in sorted((REPO / "configs/tune").glob("*cpu*.yaml")):
        sweep = load_sweep(str(path))
        cpu, gpu = sweep.trial_resources()
        assert gpu == 0 and cpu >= sweep.cfg.trial_cpus + DATA_CPUS
        concurrent = sweep.cfg.max_concurrent_trials or 1
        assert concurrent * cpu <= 2.0 + 1e-9, (path, concurrent, cpu)


# ---- the stall watch ------------------------------------------------------------------------------------------

def watch(pending: Pending | None, fail: bool = False, after_s: float = 60.0) -> StallWatch:
    return StallWatch(after_s, fail=fail, pending=lambda: pending, total=lambda: TWO_CPUS, fix="lower run.x")


def test_no_stall_before_the_time_or_without_unschedulable_demands():
    stuck = Pending([({"CPU": 1.0}, 1)])
    w = watch(stuck)
    assert w.check(59.0) is None and w.check(59.5) is None
    w = watch(Pending())
    assert w.check(600.0) is None and w.check(602.0) is None  # slow, but nothing waits (a model loading)
    w = watch(None)
    assert w.check(600.0) is None and w.check(602.0) is None  # no status to read: say nothing rather than guess
    waiting = watch(Pending([({"CPU": 0.25}, 2)], available={"CPU": 0.5}))  # the free CPUs hold it: a queue, soon run
    assert waiting.check(600.0) is None and waiting.check(602.0) is None


def test_a_stall_is_the_same_blocked_demand_twice_in_a_row():
    demands = iter([Pending([({"CPU": 1.0}, 1)], available={"CPU": 0.5}),
                    Pending([({"CPU": 0.25}, 1)], available={"CPU": 0.0}),  # another demand: not yet
                    Pending([({"CPU": 0.25}, 1)], available={"CPU": 0.0})])
    w = StallWatch(60.0, pending=lambda: next(demands), total=lambda: TWO_CPUS, fix="lower run.x")
    assert w.check(61.0) is None and w.check(63.0) is None
    assert w.check(65.0).startswith("no step for 65s; Ray cannot schedule 1 × {CPU: 0.25} on a cluster of 2 CPU")


def test_a_stall_names_the_pending_demand_and_the_fix():
    w = watch(Pending([({"CPU": 1.0}, 1), ({"GPU": 1.0, "CPU": 2.0}, 3)]))
    assert w.check(61.0) is None  # seen once
    line = w.check(63.0)
    assert line == ("no step for 63s; Ray cannot schedule 1 × {CPU: 1}; 3 × {CPU: 2, GPU: 1} on a cluster of 2 CPU, "
                    "0 GPU, and no node is being added: the run waits for resources it will never get (lower run.x)")
    assert w.stalled is None  # without fail it only reports


def test_an_autoscaler_starting_nodes_is_a_wait_not_a_stall():
    w = watch(Pending([({"CPU": 1.0}, 2)], nodes_starting=1), fail=True)
    w.check(400.0)
    assert w.check(402.0) == ("no step for 402s; Ray cannot schedule 2 × {CPU: 1}: waiting for 1 node(s) the "
                              "autoscaler is starting")
    assert w.stalled is None


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as at a terminal (a Ray Train fit() earlier in this test process leaves its
    own handler, which aborts a run that is not there: the stall error would then come only after the body)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_fail_on_stall_ends_the_blocked_body_with_the_stall_error(tmp_path, ctrl_c_raises):
    from msm.progress import follow

    w = watch(Pending([({"CPU": 1.0}, 1)]), fail=True, after_s=0.3)
    out = io.StringIO()
    t0 = time.monotonic()
    with pytest.raises(ResourceError) as err:
        with follow(tmp_path / "metrics.jsonl", 10, "pretrain", interval_s=0.05, stream=out, tty=False, stall=w):
            for _ in range(200):  # a fit() that never returns (short sleeps: the interrupt lands between them)
                time.sleep(0.05)
    assert time.monotonic() - t0 < 5
    assert str(err.value).startswith("stalled: no step for 0s; Ray cannot schedule 1 × {CPU: 1} on a cluster of 2 CPU")
    assert out.getvalue().startswith("pretrain: no step for 0s; Ray cannot schedule 1 × {CPU: 1}")


def test_where_ctrl_c_is_ignored_a_stall_is_reported_and_the_run_left_alone(tmp_path):
    """A job started in the background (SIGINT ignored) is never interrupted: the stall is only reported."""
    import signal

    from msm.progress import follow

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        out = io.StringIO()
        w = watch(Pending([({"CPU": 1.0}, 1)]), fail=True, after_s=0.1)
        with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=0.05, stream=out, tty=False, stall=w):
            time.sleep(0.6)
        assert "Ray cannot schedule 1 × {CPU: 1}" in out.getvalue() and w.stalled is None
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stall_is_raised_when_the_framework_answers_the_interrupt_by_returning(tmp_path):
    """Ray Train's own SIGINT handler aborts the run and fit() returns: the stall error comes after the body."""
    import signal

    from msm.progress import follow

    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
    try:
        w = watch(Pending([({"CPU": 1.0}, 1)]), fail=True, after_s=0.2)
        with pytest.raises(ResourceError, match="^stalled: no step"):
            with follow(tmp_path / "m.jsonl", 10, "pretrain", interval_s=0.05, stream=io.StringIO(), tty=False,
                        stall=w):
                while not interrupted:
                    time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_run_that_logs_steps_is_never_declared_stalled(tmp_path):
    from msm.progress import follow

    asked = []

    def pending():
        asked.append(1)
        return Pending([({"CPU": 1.0}, 1)])

    w = StallWatch(0.5, fail=True, pending=pending, total=lambda: TWO_CPUS)
    metrics = tmp_path / "metrics.jsonl"
    with follow(metrics, 30, "pretrain", interval_s=0.05, stream=io.StringIO(), tty=False, stall=w):
        for step in range(1, 31):
            with open(metrics, "a") as fh:
                fh.write(f'{{"step": {step}, "loss": 1.0, "time": {time.time()}}}\n')
            time.sleep(0.05)
    assert w.stalled is None and not asked


def test_other_errors_of_the_body_pass_through(tmp_path):
    from msm.progress import follow

    w = watch(Pending([({"CPU": 1.0}, 1)]), fail=True, after_s=60)
    with pytest.raises(ZeroDivisionError):
        with follow(tmp_path / "m.jsonl", 1, "x", interval_s=0.05, stream=io.StringIO(), tty=False, stall=w):
            1 / 0


# ---- Ray: reads beside a worker that holds most of the cluster ------------------------------------------------

def _corpus(tmp_path: Path, n_files: int = 3, rows: int = 5) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = []
    for i in range(n_files):
        name = f"part-{i:05d}.parquet"
        pq.write_table(pa.table({"lang": [f"l{i}"] * rows, "input_ids": [[[i, j]] for j in range(rows)],
                                 "extra": list(range(rows))}), tmp_path / name)
        names.append(name)
    return names


@pytest.mark.timeout(120)
def test_reads_run_beside_a_worker_holding_three_quarters_of_the_cpus(ray_local, tmp_path):
    """The demo's shape: one training worker with 1.5 of 2 CPUs. Ray's ``read_parquet`` would wait forever for a
    whole CPU for its listing task; these reads fit in the 0.5 left, in file order, with the columns asked."""
    import ray

    from msm.runtime import read_parquet_files
    from msm.uri import resolve

    @ray.remote(num_cpus=1.5)
    class Worker:
        def ready(self) -> bool:
            return True

    worker = Worker.remote()
    assert ray.get(worker.ready.remote(), timeout=60)
    try:
        files = _corpus(tmp_path)
        order = [files[2], files[0], files[1]]
        ds = read_parquet_files(resolve(str(tmp_path)), order, ["lang", "input_ids"])
        rows = ds.take_all()
    finally:
        ray.kill(worker)
    assert [r["lang"] for r in rows] == ["l2"] * 5 + ["l0"] * 5 + ["l1"] * 5
    assert sorted(rows[0]) == ["input_ids", "lang"]
    assert [list(map(list, r["input_ids"])) for r in rows[:2]] == [[[2, 0]], [[2, 1]]]


# ---- every training verb checks before it starts ---------------------------------------------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("argv, expected", [
    (["pretrain", "--config", "configs/pretrain/tiny-cpu.yaml", "run.cpus_per_worker=2.5"],
     "msm pretrain needs 2.75 CPU (1 training worker(s) × 2.5 CPU"),
    (["finetune", "--config", "configs/finetune/tiny-cpu.yaml", "run.num_workers=2"],
     "msm finetune needs 2.25 CPU (2 training worker(s) × 1 CPU"),
    (["tune", "--config", "configs/tune/tiny-cpu.yaml", "trial_cpus=1.2"],
     "msm tune (one trial) needs 2.15 CPU (1 trial driver(s) × 1.2 CPU (trial_cpus) + 1 trial's training workers"),
])
def test_a_job_larger_than_the_cluster_fails_at_once_and_writes_nothing(ray_local, tmp_path, capsys, monkeypatch,
                                                                        argv, expected):
    from msm.cli import main

    monkeypatch.chdir(REPO)
    out = tmp_path / "out"
    key = "output_dir" if argv[0] == "tune" else "run.output_dir"
    t0 = time.monotonic()
    assert main([*argv, f"{key}={out}"]) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert f"msm {argv[0]}: error: {expected}" in err and "but the Ray cluster has 2 CPU" in err
    assert not out.exists()
