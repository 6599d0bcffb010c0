"""The Ray runtime every job shares: start or join Ray, check that a job fits the cluster before it asks, read
files beside training workers with bounded resources, and watch a run for a wait that would never end.

* :func:`ensure_ray` is the one way a job starts or joins Ray: the cluster at ``$RAY_ADDRESS`` (a submitted job,
  or ``RAY_ADDRESS=auto`` for a ``ray start`` cluster on this machine), else a fresh local one (the embedded Ray
  of ``make demo``; ``MSM_LOCAL_CPUS=N`` makes it report N CPUs, e.g. to rehearse a 2-CPU machine on a larger one).
* :func:`check_fits` compares what a job will ask for (training workers × CPUs/GPUs, the Ray Data read tasks
  that feed them, a sweep's trial drivers) with the cluster's total, before ``fit()``; a job that cannot fit
  fails at once with the numbers and the config key to change, instead of waiting forever for a CPU that no node
  has. On a cluster that grows (an autoscaler, KubeRay ``enableInTreeAutoscaling``) the nodes it has not started
  yet are not in the total: ``run.wait_for_nodes: true`` turns the failure into a note.
* :func:`read_parquet_files` reads a known list of Parquet files as a Ray Dataset with one read task per file,
  each asking for :data:`DATA_CPUS`. Hand-written because Ray 2.60's ``read_parquet`` first runs a file-listing
  task (``ListFiles``) that asks for a whole CPU whatever ``num_cpus`` the read was given: beside a training
  worker holding 1.5 of 2 CPUs it is never scheduled, and the worker waits for its data forever.
* :class:`StallWatch` is asked by the progress line (:func:`msm.progress.follow`) when no step was logged for
  ``stall_after_s`` seconds: it reports the demands Ray cannot schedule (what ``ray status`` calls "Pending
  Demands") and the nodes an autoscaler is still starting; with ``fail`` it ends the run with that message.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from msm.errors import MSMError

DATA_CPUS = 0.25  # CPUs of each Ray Data read task that runs beside training workers (light: parsing Parquet)
LOCAL_CPUS_ENV = "MSM_LOCAL_CPUS"  # CPUs a fresh local cluster reports (default: this machine's); e.g. CI's 2
STALL_AFTER_S = 300.0  # default seconds without a logged step (and with unschedulable demands) that count as a stall


class ResourceError(MSMError):
    """A job asks for more than the cluster has, or waited too long for resources it never got."""


def verbose() -> bool:
    """``msm --verbose`` (or ``MSM_VERBOSE=1``): the libraries' own logs and progress bars are wanted."""
    return os.environ.get("MSM_VERBOSE") == "1"


QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bars (it follows the hub's)
             "TRANSFORMERS_VERBOSITY": "error"}  # model load reports, advisory warnings


def quiet_libraries() -> None:
    """Unless :func:`verbose`: the libraries' chatter off, here and (through the environment) in the Ray workers a
    local cluster starts from this process: transformers' load reports and bars, Ray's token-authentication
    warning, Ray Data's execution logs on the driver (its bars: :func:`ensure_ray`). msm's own progress lines stay."""

    if verbose():
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def _quiet_ray_data() -> None:
    """Ray Data's progress bars and execution banners off on this driver (called when Ray starts or is joined)."""

    if verbose():
        return
    try:
        from ray.data import DataContext  # lazy: ray

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
    except Exception:  # Ray Data absent or changed: chatter is not worth failing over
        return
    # After ray.data's import, which gives its logger a file handler (the session's ray-data.log, kept whole) and a
    # console handler: on the console, no INFO lines (executions finished, sinks written), no note that the bars
    # are off, and no failed task's traceback (logged twice before the exception reaches msm.cli, which prints its
    # message once).
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
            handler.setLevel(logging.WARNING)
            if not any(isinstance(f, _ConsoleQuiet) for f in handler.filters):
                handler.addFilter(_ConsoleQuiet())
    for name in ("ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _ConsoleQuiet:
    """A logging filter: Ray Data's records that only repeat what msm reports itself."""

    NAMES = ("ray.data._internal.progress", "ray.data._internal.execution.streaming_executor_state",
             "ray.data.exceptions")

    def filter(self, record) -> bool:
        return not record.name.startswith(self.NAMES)


def ensure_ray(log_to_driver: bool | None = None) -> None:
    """Join the cluster at ``$RAY_ADDRESS`` or start a local one (nothing when Ray is already initialised).

    ``log_to_driver`` (default: :func:`verbose`): the workers' own output on this terminal; otherwise it stays in
    the session's logs (``/tmp/ray/session_latest/logs``) and errors reach the driver as exceptions. The embedded
    local Ray inherits ``HF_HUB_OFFLINE`` / ``TOKENIZERS_PARALLELISM`` from here; a submitted job brings its own
    runtime env."""
    import ray  # lazy: ray

    _quiet_ray_data()
    if ray.is_initialized():
        return
    if log_to_driver is None:
        log_to_driver = verbose()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    address = os.environ.get("RAY_ADDRESS") or "local"
    cpus = os.environ.get(LOCAL_CPUS_ENV)
    extra = {"num_cpus": int(cpus)} if cpus and address == "local" else {}

    ray.init(address=address, log_to_driver=log_to_driver,
             logging_level=logging.INFO if verbose() else logging.WARNING, **extra)


# ---- one TorchTrainer for both training recipes -----------------------------------------------------------------

def storage(output_dir: str) -> dict:
    """Ray Train's storage for a run folder: a local folder, or the URI's pyarrow filesystem (the one our own files
    use, so an S3-compatible endpoint or credentials configured for one apply to both)."""
    if "://" not in output_dir:
        return {"storage_path": output_dir}
    from msm.uri import resolve  # lazy: pyarrow

    loc = resolve(output_dir)
    return {"storage_path": loc.path, "storage_filesystem": loc.fs}


def torch_trainer(loop, loop_config: dict, run, datasets: dict, dataset_config=None,
                  run_config_kwargs: dict | None = None):
    """The ``TorchTrainer`` of a training job (pretraining and fine-tuning both build theirs here) from its
    :class:`~msm.run_settings.RunSettings` ``run``: workers (CPUs each, a GPU each with ``use_gpu``), storage at
    ``run.output_dir`` under ``run.name``, the newest ``keep_checkpoints`` kept, ``max_failures`` restarts of the
    worker group; ``run_config_kwargs`` adds e.g. a sweep's Tune callback."""
    import ray.train  # lazy: ray
    from ray.train.torch import TorchTrainer  # lazy: ray

    return TorchTrainer(
        loop, train_loop_config=loop_config, datasets=datasets,
        **({"dataset_config": dataset_config} if dataset_config is not None else {}),
        scaling_config=ray.train.ScalingConfig(num_workers=run.num_workers, use_gpu=run.use_gpu,
                                               resources_per_worker={"CPU": run.cpus_per_worker},
                                               placement_strategy=run.placement_strategy),
        run_config=ray.train.RunConfig(
            **storage(run.output_dir), name=run.name,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=run.keep_checkpoints),
            failure_config=ray.train.FailureConfig(max_failures=run.max_failures), **(run_config_kwargs or {})))


def training_asks(run, prefix: str = "run.") -> list[Ask]:
    """:func:`job_asks` of a :class:`~msm.run_settings.RunSettings`."""
    return job_asks(run.num_workers, run.cpus_per_worker, run.use_gpu, prefix=prefix)


# ---- will the job fit? ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ask:
    """One kind of thing a job asks Ray for: ``count`` × (``cpu``, ``gpu``); ``key`` is the config key that sets it."""

    what: str
    count: int
    cpu: float
    gpu: float = 0.0
    key: str = ""

    def describe(self) -> str:
        parts = [f"{self.cpu:g} CPU"] + ([f"{self.gpu:g} GPU"] if self.gpu else [])
        return f"{self.count} {self.what} × {' + '.join(parts)}" + (f" ({self.key})" if self.key else "")


def job_asks(num_workers: int, cpus_per_worker: float, use_gpu: bool, data_tasks: int = 1,
             prefix: str = "run.") -> list[Ask]:
    """A training job's asks: its workers and the Ray Data read tasks that feed them (at least one must run
    beside the workers, or the workers wait for data)."""
    return [Ask("training worker(s)", num_workers, cpus_per_worker, 1.0 if use_gpu else 0.0,
                f"{prefix}num_workers, {prefix}cpus_per_worker"),
            Ask("Ray Data read task(s)", data_tasks, DATA_CPUS)]


def cluster_total() -> dict[str, float]:
    import ray  # lazy: ray

    return {k: float(v) for k, v in ray.cluster_resources().items()}


def check_fits(job: str, asks: list[Ask], total: dict[str, float] | None = None, can_grow: bool = False,
               grow_key: str = "run.wait_for_nodes", log: Callable[[str], object] = print) -> None:
    """Raise :class:`ResourceError` when ``asks`` together need more CPUs or GPUs than the cluster has (or, with
    ``can_grow``, say so and go on: an autoscaler may add the nodes)."""
    total = cluster_total() if total is None else total
    for name, need in (("CPU", sum(a.count * a.cpu for a in asks)), ("GPU", sum(a.count * a.gpu for a in asks))):
        have = total.get(name, 0.0)
        if need <= have + 1e-9:
            continue
        detail = " + ".join(a.describe() for a in asks if (a.cpu if name == "CPU" else a.gpu))
        keys = ", ".join(dict.fromkeys(a.key for a in asks if a.key and (a.cpu if name == "CPU" else a.gpu)))
        msg = (f"{job} needs {need:g} {name} ({detail}) but the Ray cluster has {have:g} {name}; it would wait "
               f"forever. Lower {keys or 'the job size'} or add a node")
        if can_grow:
            log(f"note: {msg}; {grow_key} is set, so it waits for the autoscaler to add nodes")
            continue
        raise ResourceError(f"{msg} (on an autoscaling cluster set {grow_key}=true)")


def fits_how_many(per_unit: tuple[float, float], total: dict[str, float] | None = None) -> int | None:
    """How many units of (CPU, GPU) fit the cluster's total at once (None: unlimited, a unit asks for nothing)."""
    total = cluster_total() if total is None else total
    caps = [math.floor(total.get(name, 0.0) / need + 1e-9) for name, need in zip(("CPU", "GPU"), per_unit) if need > 0]
    return min(caps) if caps else None


def summary(metrics: dict) -> str:
    """A run's last metrics as one short line: step, loss, the validation score(s)."""
    keys = ["step", "loss", "val_score", "eval_loss"]
    parts = [f"{k} {metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k} {metrics[k]}"
             for k in keys if metrics.get(k) is not None]
    return ", ".join(parts) or "no metrics"


# ---- reading files beside training workers ----------------------------------------------------------------------

def read_parquet_files(root, files: list[str], columns: list[str] | None = None, num_cpus: float = DATA_CPUS):
    """The rows of ``files`` (paths relative to the :class:`~msm.uri.Location` ``root``), in that order, as a Ray
    Dataset: one read task per file, each asking for ``num_cpus``; no listing task (see the module docstring)."""
    import ray.data  # lazy: ray

    ds = ray.data.read_datasource(_parquet_files_cls()(root, list(files), columns), num_cpus=num_cpus,
                                  override_num_blocks=max(1, len(files)))
    ds.context.execution_options.preserve_order = True  # this dataset's own context: the files' order, kept
    return ds


def _parquet_file_batches(fs, path: str, columns: list[str] | None) -> Iterator:
    import pyarrow as pa  # lazy: pyarrow
    import pyarrow.parquet as pq  # lazy: pyarrow

    with fs.open_input_file(path) as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=4096, columns=columns):
            yield pa.Table.from_batches([batch])


_PARQUET_FILES = None


def _parquet_files_cls():
    """The datasource class, defined on first use (``ray.data`` stays out of this module's import)."""
    global _PARQUET_FILES
    if _PARQUET_FILES is not None:
        return _PARQUET_FILES
    from ray.data.block import BlockMetadata  # lazy: ray
    from ray.data.datasource import Datasource, ReadTask  # lazy: ray

    class ParquetFiles(Datasource):
        def __init__(self, root, files: list[str], columns: list[str] | None) -> None:
            super().__init__()
            self.root, self.files, self.columns = root, files, columns

        def get_name(self) -> str:
            return "ReadParquetFiles"

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None):
            tasks = []
            for f in self.files:
                path = self.root.join(f).path
                meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=[path])
                tasks.append(ReadTask(lambda fs=self.root.fs, p=path, c=self.columns: _parquet_file_batches(fs, p, c),
                                      meta, per_task_row_limit=per_task_row_limit))
            return tasks

    _PARQUET_FILES = ParquetFiles
    return ParquetFiles


# ---- a run that waits ------------------------------------------------------------------------------------------

@dataclass
class Pending:
    """What Ray could not schedule at one moment: resource bundles with their counts, the resources free then, and
    the nodes being started."""

    demands: list[tuple[dict, int]] = field(default_factory=list)
    nodes_starting: int = 0
    available: dict[str, float] | None = None  # None: unknown (every demand counts as unschedulable)

    def blocked(self) -> list[tuple[dict, int]]:
        """The demands that the free resources cannot hold (the others only wait for the scheduler's next turn)."""
        if self.available is None:
            return list(self.demands)
        return [(b, n) for b, n in self.demands
                if any(v > self.available.get(k, 0.0) + 1e-9 for k, v in b.items())]

    def describe(self) -> str:
        parts = [f"{n} × {{{', '.join(f'{k}: {v:g}' for k, v in sorted(b.items()))}}}" for b, n in self.blocked()]
        return "; ".join(parts) or "nothing"


def pending_now() -> Pending | None:
    """The cluster's unscheduled demands (tasks, actors, placement groups), its free resources and pending nodes,
    from the same status ``ray status`` prints; None when it cannot be read (no GCS, an old cluster)."""
    try:
        import ray  # lazy: ray
        from ray.autoscaler.v2.sdk import get_cluster_status  # lazy: ray

        status = get_cluster_status(ray.get_runtime_context().gcs_address)
        available = {k: float(v) for k, v in ray.available_resources().items()}
    except Exception:  # best effort: a missing status must not break the run it watches
        return None
    demands: list[tuple[dict, int]] = []
    summary = status.resource_demands
    for d in [*summary.ray_task_actor_demand, *summary.placement_group_demand]:
        demands += [(dict(b.bundle), int(b.count)) for b in d.bundles_by_count]
    return Pending(demands, len(status.pending_launches) + len(status.pending_nodes), available)


@dataclass
class StallWatch:
    """Decides whether a run that logged no step for ``after_s`` seconds is stuck on resources.

    ``check(idle_s)`` returns a line for the progress output (or None): a stall when, in two checks in a row, Ray
    reports the same demands that the cluster's free resources cannot hold and no node is being started; a wait
    when an autoscaler is still starting nodes (never an error). A demand the free resources could hold is only
    waiting for the scheduler. On a cluster shared with other jobs their waiting demands count too: the line is a
    hint there, and ``--fail-on-stall`` is for a cluster the run has to itself. ``fail``: a stall is fatal; the
    caller ends the run with :meth:`error`."""

    after_s: float = STALL_AFTER_S
    fail: bool = False
    fix: str = "lower the workers' CPUs/GPUs or add a node"
    total: Callable[[], dict[str, float]] = cluster_total
    pending: Callable[[], Pending | None] = pending_now
    stalled: str | None = None  # the message of the stall that ended the run
    _last: str | None = None  # the blocked demands of the previous check

    def check(self, idle_s: float) -> str | None:
        if idle_s < self.after_s:
            self._last = None
            return None
        p = self.pending()
        blocked = p.describe() if p is not None and p.blocked() else None
        seen_before, self._last = self._last, blocked
        if blocked is None or blocked != seen_before:  # nothing blocked, or not yet twice in a row
            return None
        wait = f"no step for {idle_s:.0f}s; Ray cannot schedule {blocked}"
        if p.nodes_starting:
            return f"{wait}: waiting for {p.nodes_starting} node(s) the autoscaler is starting"
        total = self.total()
        msg = (f"{wait} on a cluster of {total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU, and no node is "
               f"being added: the run waits for resources it will never get ({self.fix})")
        if self.fail:
            self.stalled = msg
        return msg

    def error(self) -> ResourceError:
        return ResourceError(f"stalled: {self.stalled} (--fail-on-stall)")
