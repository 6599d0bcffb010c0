"""Run, interrupt and resume a sweep: ``Tuner`` over :func:`msm.tune.trainable.run_trial`, then the report."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import ray
import yaml
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch
from ray.util import remove_placement_group
from ray.util.placement_group import PlacementGroup
from ray.util.state import list_actors, list_placement_groups

from msm.config import ConfigError, load_config
from msm.errors import MSMError
from msm.output import Kind, claim, clear, drop
from msm.progress import follow
from msm.runtime import Ask, StallWatch, check_fits, ensure_ray
from msm.tune.config import Knob, Sweep, SweepConfig, build_sweep, dump_sweep, nest, sweep_to_dict
from msm.tune.report import FINAL_STATES, SweepOutcome, write_report
from msm.tune.trainable import run_trial, with_shared_corpus
from msm.uri import Location, resolve

SAVED_SWEEP = "sweep.yaml"


def param_space(knobs: list[Knob], searcher: str) -> dict:
    """Knobs → a nested Tune search space (``grid`` → ``grid_search``; under searcher grid, ``choice`` too)."""

    flat: dict[str, Any] = {}
    for k in knobs:
        if k.kind == "grid" or (searcher == "grid" and k.kind == "choice"):
            flat[k.key] = tune.grid_search(list(k.values))
        elif k.kind == "choice":
            flat[k.key] = tune.choice(list(k.values))
        elif k.kind == "uniform":
            flat[k.key] = tune.uniform(*k.values)
        else:
            flat[k.key] = tune.loguniform(*k.values)
    return nest(flat)


def check_searcher(cfg: SweepConfig, source: str = "<sweep>") -> None:
    if cfg.searcher == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError(f"{source}: searcher: 'optuna' needs the optuna package "
                              "(pip install 'optuna>=3,<6'), or use searcher random/grid") from None


def build_search_alg(cfg: SweepConfig, max_concurrent: int | None = None):
    """The searcher. ``max_concurrent`` goes into the grid/random generator itself: Tune ignores
    ``TuneConfig.max_concurrent_trials`` for a ``BasicVariantGenerator`` instance (it wraps only ``Searcher``s)."""
    if cfg.searcher == "optuna":

        search = OptunaSearch(seed=cfg.seed)
        return ConcurrencyLimiter(search, max_concurrent) if max_concurrent else search

    return BasicVariantGenerator(random_state=cfg.seed, max_concurrent=max_concurrent or 0)


def build_scheduler(cfg: SweepConfig):
    a = cfg.asha
    if not a.enabled:
        return FIFOScheduler()
    return ASHAScheduler(time_attr=a.time_attr, grace_period=a.grace_period, reduction_factor=a.reduction_factor,
                         max_t=a.max_t)


def _sweep_settings_of(text: str) -> dict | None:
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return drop(obj, ("output_dir",)) if isinstance(obj, dict) and "space" in obj else None


def sweep_settings(sweep: Sweep) -> dict:
    return drop(sweep_to_dict(sweep), ("output_dir",))


def output_kind(sweep: Sweep) -> Kind:
    """The sweep folder under the output contract (:mod:`msm.output`): ``sweep.yaml`` marks it (written when the
    sweep starts; ``--resume`` reads it), with Tune's experiment folder, the trials' runs, the shared corpus and the
    report beside it."""
    names = {SAVED_SWEEP, sweep.cfg.name, "trials", "corpus", "results.csv", "results.json", "results.md",
             "best_config.yaml", f"{sweep.cfg.metric}_vs_knobs.png"}
    return Kind("tune", SAVED_SWEEP, frozenset(names), _sweep_settings_of, what="output_dir",
                resume_hint=" (or continue it with its saved config: --resume)", owned_prefixes=(".corpus.",))


def check_resources(sweep: Sweep, log: Callable[[str], Any] = print) -> None:
    """Fail before the sweep starts when not even one trial (its driver actor, its Train workers, the read tasks
    feeding them) fits the cluster: every trial would wait forever."""

    cpu, gpu = sweep.trial_resources()
    run = sweep.base["run"]
    asks = [Ask("trial driver(s)", 1, sweep.cfg.trial_cpus, key="trial_cpus"),
            Ask("trial's training workers and read tasks", 1, cpu - sweep.cfg.trial_cpus, gpu,
                key="overrides.run.num_workers, overrides.run.cpus_per_worker, data_cpus")]
    check_fits("msm tune (one trial)", asks, can_grow=run["wait_for_nodes"], grow_key="overrides.run.wait_for_nodes",
               log=log)


def concurrency(sweep: Sweep, log: Callable[[str], Any] = print) -> int | None:
    """``max_concurrent_trials``, capped so every running trial's inner resources fit the cluster.

    Tune places only a trial's driver actor; its Train workers and Ray Data actor are requested later, from inside
    the trial. Without the cap, concurrent trials can hold every CPU while each waits for its data actor (a
    deadlock). A cluster that has less than one trial needs right now (an autoscaler still adding nodes) is not
    capped.
    """


    need_cpu, need_gpu = sweep.trial_resources()
    have = ray.cluster_resources()
    caps = []
    for name, need in (("CPU", need_cpu), ("GPU", need_gpu)):
        if need <= 0:
            continue
        total = float(have.get(name, 0.0))
        if total + 1e-9 < need:
            log(f"note: one trial needs {need:g} {name} but the cluster has {total:g} now; trials wait for more")
            return sweep.cfg.max_concurrent_trials
        caps.append(math.floor(total / need + 1e-9))
    cap = min(caps) if caps else None
    wanted = sweep.cfg.max_concurrent_trials
    if cap is not None and (wanted is None or wanted > cap):
        if wanted is not None:
            log(f"note: max_concurrent_trials {wanted} -> {cap}: a trial needs {need_cpu:g} CPU "
                f"(trial_cpus + workers x cpus_per_worker + data_cpus) and {need_gpu:g} GPU; "
                f"the cluster has {have.get('CPU', 0):g} CPU, {have.get('GPU', 0):g} GPU")
        return cap
    return wanted


TRAIN_WORKER_CLASS = "RayTrainWorker"  # Ray Train V2's worker actor


def _worker_placement_groups() -> list[tuple[str, bool]]:
    """(id, every actor in it dead) of this job's live placement groups that hold Ray Train workers.

    Public State API, asked at this driver's own cluster (its GCS address): with several local Ray instances on
    one machine, the default address lookup may find another. Tune's own trial groups hold no Train workers."""

    context = ray.get_runtime_context()
    address, job = context.gcs_address, context.get_job_id()
    options = {"address": address, "detail": True, "limit": 10_000, "raise_on_missing_output": False}
    actors = list_actors(filters=[("job_id", "=", job)], **options)
    out = []
    for pg in list_placement_groups(filters=[("state", "=", "CREATED")], **options):
        if pg.creator_job_id != job or pg.is_detached:
            continue
        members = [a for a in actors if a.placement_group_id == pg.placement_group_id]
        if any(a.class_name == TRAIN_WORKER_CLASS for a in members):
            out.append((pg.placement_group_id, all(a.state == "DEAD" for a in members)))
    return out


def release_orphaned_placement_groups() -> int:
    """Remove placement groups whose Train workers are all dead (a stopped trial's, its controller gone).

    A trial stopped by ASHA is killed with its Train controller, which takes its workers along; the workers'
    placement group lives on until the whole job ends. Train V2's detached ``PlacementGroupCleaner`` normally
    removes it, but it asks the State API without an address, which finds the wrong cluster when several Ray
    instances run on one machine (a local sweep beside another local cluster), leaving CPUs reserved and later
    trials waiting forever. This does the same from the driver (``ray.util.remove_placement_group``).
    """

    n = 0
    for pg_id, dead in _worker_placement_groups():
        if dead:
            remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(pg_id)))
            n += 1
    return n


def _release_all(timeout_s: float = 10.0) -> None:
    """After the sweep: wait (briefly) for the trials' controllers to go, removing what they leave behind."""

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            release_orphaned_placement_groups()
            if not _worker_placement_groups() or time.monotonic() > deadline:
                return
        except Exception:  # best effort: the State API needs the dashboard
            return
        time.sleep(0.5)


class _ReleaseStoppedTrials(Callback):
    """Tune callback: every few seconds of the sweep loop, :func:`release_orphaned_placement_groups`."""

    def __init__(self, every_s: float = 2.0) -> None:
        self.every_s = every_s
        self._last = 0.0
        self._failed = False

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        if self._failed or now - self._last < self.every_s:
            return
        self._last = now
        try:
            release_orphaned_placement_groups()
        except Exception as exc:  # best effort: the State API needs the dashboard
            self._failed = True
            print(f"note: cannot release placement groups of stopped trials ({exc!r})")


def _trainable(sweep: Sweep):
    env = {}
    if sweep.cfg.train_poll_s is not None:  # Ray Train V2 reads it where fit() runs and passes it on
        env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = str(sweep.cfg.train_poll_s)
    fn = tune.with_parameters(run_trial, base=with_shared_corpus(sweep), sweep_dir=sweep.where,
                              metric=sweep.cfg.metric, env=env)
    return tune.with_resources(fn, {"cpu": sweep.cfg.trial_cpus})


def load_saved_sweep(sweep_dir: str | Path) -> Sweep:
    """The sweep saved in ``sweep_dir`` (a path or a URI) when it started."""
    loc = resolve(sweep_dir)
    if loc.local:
        path = Path(loc.path) / SAVED_SWEEP
        return build_sweep(load_config(path, SweepConfig), str(path), Path(loc.path))
    local = Path(tempfile.mkdtemp(prefix="msm-sweep-")) / SAVED_SWEEP
    local.write_bytes(loc.join(SAVED_SWEEP).read_bytes())
    return build_sweep(load_config(local, SweepConfig), loc.join(SAVED_SWEEP).uri, local.parent)


def _storage(loc: Location) -> tuple[str, object]:
    """Tune's ``(path, storage_filesystem)`` for a local folder (no filesystem: Tune's default) or a URI."""
    return (loc.path, None) if loc.local else (loc.path, loc.fs)


def _decide(sweep: Sweep, resume: bool, overwrite: bool) -> tuple[str, SweepOutcome | None]:
    """What to do at the sweep folder, under the output contract, before Ray starts: ``fresh``, ``resume``,
    ``replace`` (fresh, after this verb's older sweep there is deleted) or ``reuse`` (with the finished sweep's
    outcome). Refuses a folder holding anything else, another config's sweep without ``overwrite``, an
    interrupted sweep without ``resume`` and ``resume`` without a sweep state."""

    saved = sweep.read(SAVED_SWEEP) if resume else None
    compare = _sweep_settings_of(saved) if saved is not None else None
    found = claim(sweep.loc, output_kind(sweep), compare or sweep_settings(sweep), overwrite)
    if found.state in ("other", "partial") or (overwrite and found.state == "same"):
        return "replace", None
    results = sweep.read("results.json") if found.state == "same" and not resume else None
    if results is not None and json.loads(results).get("complete"):
        rows = json.loads(results)["trials"]
        return "reuse", SweepOutcome(sweep.sweep_dir, rows, {"results_json": sweep.loc.join("results.json").uri,
                                                             "results_md": sweep.loc.join("results.md").uri})
    can_restore = tune.Tuner.can_restore(*_storage(sweep.loc.join(sweep.cfg.name)))
    if resume and not can_restore:
        raise MSMError(f"{sweep.experiment_dir}: no sweep state to resume (run without --resume to start it, or point "
                       "output_dir/name at the interrupted sweep)")
    if not resume and can_restore:
        raise MSMError(f"{sweep.experiment_dir}: a sweep already ran here; pass --resume to continue it, or set "
                       "another output_dir or name")
    return ("resume" if resume else "fresh"), None


def _saved_sweep(sweep: Sweep, log: Callable[[str], Any]) -> Sweep:
    """The sweep as it started (its ``sweep.yaml``), where it is now."""
    saved = load_saved_sweep(sweep.where) if sweep.read(SAVED_SWEEP) is not None else sweep
    saved.cfg.output_dir, saved.cfg.name = sweep.where, sweep.cfg.name
    if sweep_to_dict(saved) != sweep_to_dict(sweep):
        log(f"note: the config differs from the one this sweep started with; resuming with the saved copy "
            f"{sweep.loc.join(SAVED_SWEEP).uri}")
    return saved


def run_sweep(sweep: Sweep, resume: bool = False, verbose: int = 1, callbacks: list | None = None,
              log: Callable[[str], Any] = print, fail_on_stall: bool = False, overwrite: bool = False) -> SweepOutcome:
    """Run the sweep (``resume``: continue the one under ``output_dir/name``); write the report; return it.

    A fresh run refuses a folder that already holds this sweep's Tune state (resume it or pick another
    ``output_dir``/``name``). On resume the saved ``sweep.yaml`` is used: finished trials are kept as they are,
    unfinished ones continue (their Train runs from their latest checkpoint), errored ones are retried.
    ``callbacks``: extra ``ray.tune.Callback`` objects (fresh runs only; a resumed run restores the saved ones).
    A progress line sums the trials' steps (``metrics.jsonl``) against trials × ``optim.max_steps``. A sweep whose
    one trial cannot fit the cluster fails before it starts (:func:`check_resources`); a sweep that waits for
    resources for ``run.stall_after_s`` says so, and with ``fail_on_stall`` ends with that error.
    """


    check_searcher(sweep.cfg, sweep.source)
    action, done = _decide(sweep, resume, overwrite)
    if done is not None:
        log(f"{sweep.where}: this sweep is already complete; reusing its report {done.files['results_md']} "
            "(--overwrite runs it again)")
        return done
    if action == "resume":
        sweep = _saved_sweep(sweep, log)
    ensure_ray()
    check_resources(sweep, log)
    if action == "replace":  # every check passed: only now is the older sweep deleted (--overwrite)
        clear(sweep.loc, output_kind(sweep))
    experiment, filesystem = _storage(sweep.loc.join(sweep.cfg.name))
    if action == "resume":
        tuner = tune.Tuner.restore(experiment, trainable=_trainable(sweep), resume_unfinished=True,
                                   resume_errored=True, storage_filesystem=filesystem)
    else:
        sweep.sweep_dir.mkdir(parents=True, exist_ok=True)
        dump_sweep(sweep, sweep.sweep_dir / SAVED_SWEEP)
        sweep.upload(SAVED_SWEEP)
        storage_path, _ = _storage(sweep.loc)
        cfg = sweep.cfg
        tuner = tune.Tuner(
            _trainable(sweep),
            param_space=param_space(sweep.knobs, cfg.searcher),
            tune_config=tune.TuneConfig(metric=cfg.metric, mode=cfg.mode,
                                        search_alg=build_search_alg(cfg, concurrency(sweep, log)),
                                        scheduler=build_scheduler(cfg), num_samples=cfg.num_samples),
            run_config=tune.RunConfig(storage_path=storage_path, storage_filesystem=filesystem, name=cfg.name,
                                      verbose=verbose,
                                      callbacks=[_ReleaseStoppedTrials(), *(callbacks or [])]),
        )
    total = sweep.expected_trials * sweep.base["optim"]["max_steps"]  # trials stopped early end short of it
    watch = StallWatch(sweep.base["run"]["stall_after_s"], fail=fail_on_stall,
                       fix="lower max_concurrent_trials, trial_cpus or overrides.run.cpus_per_worker")
    trials = sweep.loc.join("trials")
    with follow(lambda: [Location(trials.fs, p, p) for p in trials.files("metrics.jsonl")], total, "sweep",
                stall=watch):
        grid = tuner.fit()
    _release_all()
    outcome = write_report(sweep, grid)
    n_done = sum(r["status"] in FINAL_STATES for r in outcome.rows)
    if outcome.interrupted:
        log(f"sweep interrupted with {n_done}/{sweep.expected_trials} trials done; partial results in "
            f"{sweep.where}; continue with --resume")
    elif outcome.best is None:
        raise MSMError(f"no trial reported metric {sweep.cfg.metric!r} (see {sweep.loc.join('results.md').uri}); check "
                       "the metric name and that the pretraining loop reports it (e.g. validation enabled)")
    else:
        b = outcome.best
        log(f"best trial {b['trial_id']}: {sweep.cfg.metric}={b[sweep.cfg.metric]:.4g} "
            f"({', '.join(f'{k.key}={b[k.column]!r}' for k in sweep.knobs)}); "
            f"config: {sweep.loc.join('best_config.yaml').uri}; table: {sweep.loc.join('results.md').uri}")
    return outcome


__all__ = ["build_scheduler", "build_search_alg", "load_saved_sweep", "param_space", "run_sweep"]
