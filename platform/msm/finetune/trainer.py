"""``msm finetune``: Ray Train wiring (``TorchTrainer`` over :func:`msm.finetune.worker.train_worker`), or in process.

Run layout (``run.output_dir``): ``finetune_config.yaml``, ``metrics.jsonl``, ``tensorboard/``,
``<run.name>/checkpoint_*`` (Ray Train; each holds ``checkpoint/``, the Hugging Face trainer's checkpoint),
``export/`` (HF folder) and ``export-st/`` (sentence-transformers folder). In process: ``checkpoints/checkpoint-N``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from pathlib import Path

from msm.config import load_config, to_dict
from msm.encoders.resolve import check_model
from msm.errors import MSMError
from msm.finetune.config import FinetuneConfig
from msm.finetune.model import save_exports
from msm.finetune.readers import data_files
from msm.runtime import StallWatch, check_fits, ensure_ray, summary, torch_trainer, training_asks

CONFIG_FILE = "finetune_config.yaml"


def absolute(cfg: FinetuneConfig) -> FinetuneConfig:
    """Local paths made absolute on the driver (Ray workers run elsewhere); aliases and hub ids kept."""
    def fix(p: str) -> str:
        return p if not p or "://" in p else str(Path(p).expanduser().resolve())

    enc = cfg.model.encoder
    enc = fix(enc) if Path(enc).expanduser().exists() else enc
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, output_dir=fix(cfg.run.output_dir)),
                               data=dataclasses.replace(cfg.data, path=fix(cfg.data.path)),
                               model=dataclasses.replace(cfg.model, encoder=enc))


RUN_FILES = frozenset({CONFIG_FILE, "metrics.jsonl", "tensorboard", "export", "export-st", "checkpoints"})


def claim_output(cfg: FinetuneConfig, overwrite: bool = False):
    """The output contract for the run folder, a local path or a URI (:func:`msm.output.claim_run`: a
    :class:`~msm.output.RunClaim`)."""
    from msm.output import claim_run  # lazy: pyarrow

    return claim_run(cfg.run.output_dir, "finetune", CONFIG_FILE, to_dict(cfg), RUN_FILES, overwrite)


def _folder(cfg: FinetuneConfig):
    """The run folder (:class:`msm.run_folder.RunFolder`) at ``run.output_dir``, a path or a URI."""
    from msm.run_folder import RunFolder  # lazy: pyarrow

    return RunFolder(cfg.run.output_dir)


def _start(cfg: FinetuneConfig):
    """The run folder with its config copy, as pretraining's."""
    run = _folder(cfg)
    run.write_config(CONFIG_FILE, to_dict(cfg))
    return run


def local_checkpoints(cfg: FinetuneConfig) -> list[str]:
    """The in-process run's checkpoints (``checkpoints/checkpoint-N``, complete: the HF trainer's
    ``trainer_state.json`` in it), at its path or URI."""
    return _folder(absolute(cfg)).folders("checkpoints", "checkpoint-", "trainer_state.json")


def has_local_checkpoint(cfg: FinetuneConfig) -> bool:
    return bool(local_checkpoints(cfg))


def run_local(cfg: FinetuneConfig, resume: bool = False, log=print, overwrite: bool = False) -> Path | str:
    """Fit in this process (tests, the protocol on one machine); ``resume`` continues from the latest checkpoint.
    Returns the run folder (a path, or the ``run.output_dir`` URI)."""
    from msm.finetune.worker import train_in_process  # lazy: transformers

    cfg = absolute(cfg)
    if resume and not has_local_checkpoint(cfg):
        raise MSMError(f"{cfg.run.output_dir}: no checkpoint to resume from (expected "
                       f"{cfg.run.output_dir}/checkpoints/checkpoint-*)")
    claimed = claim_output(cfg, overwrite)
    if claimed.state == "complete" and not resume:
        log(f"{cfg.run.output_dir}: this config's run is already complete; --overwrite trains it again")
        return _folder(cfg).where
    data_files(cfg.data.path, cfg.data.format)
    claimed.replace()
    run = _start(cfg)
    model, history = train_in_process(cfg, run, resume)
    save_exports(cfg, model, run)
    losses = [h["loss"] for h in history if "loss" in h]
    log(f"finished {len(losses)} logged steps; loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "finished")
    return run.where


def plan_steps(cfg: FinetuneConfig, rows: int) -> tuple[int, int]:
    """(optimiser steps, passes over the data) for ``rows`` examples on ``run.num_workers`` workers."""
    from msm.finetune.data import ray_batch_size  # lazy: pyarrow

    per_step = cfg.train.batch_size * cfg.run.num_workers
    read_per_step = ray_batch_size(cfg) * cfg.run.num_workers
    if rows < read_per_step:
        raise MSMError(f"{cfg.data.path}: {rows} examples, fewer than one step needs ({read_per_step} = "
                       f"{cfg.run.num_workers} worker(s) x {ray_batch_size(cfg)}); lower train.batch_size")
    steps = cfg.train.max_steps if cfg.train.max_steps > 0 else max(1, int(cfg.train.epochs * rows // per_step))
    passes = math.ceil(steps * read_per_step / rows) + 1  # + 1: a worker's shard may run a few rows short
    return steps, passes


def build_ray_trainer(cfg: FinetuneConfig, run_config_kwargs: dict | None = None):
    """The ``TorchTrainer`` (:func:`msm.runtime.torch_trainer`, as pretraining's) over the examples, read once per
    pass in a seeded block order, the rows' order fixed on every run."""
    import ray.train  # lazy: ray
    from ray.data import ExecutionOptions  # lazy: ray

    from msm.finetune.data import ray_dataset  # lazy: pyarrow
    from msm.finetune.worker import train_worker  # lazy: transformers

    base = ray_dataset(cfg)
    steps, passes = plan_steps(cfg, base.count())
    epochs = [base if e == 0 else base.randomize_block_order(seed=cfg.train.seed + e) for e in range(passes)]
    ds = epochs[0].union(*epochs[1:]) if passes > 1 else epochs[0]
    run_id = hashlib.sha1(f"{cfg.run.output_dir}/{cfg.run.name}".encode()).hexdigest()[:10]
    options = ExecutionOptions(preserve_order=True)  # the same rows in the same order on every run
    # not split: every worker reads the whole ordered stream and keeps its rows of each step (RankRows), so which
    # worker trains on which rows does not depend on which one asked first (streaming_split), nor on the nodes
    return torch_trainer(train_worker, {"config": to_dict(cfg), "max_steps": steps, "run_id": run_id}, cfg.run,
                         {"train": ds}, ray.train.DataConfig(datasets_to_split=[], execution_options=options),
                         run_config_kwargs)


def check_resources(cfg: FinetuneConfig, log=print) -> None:
    """Fail before ``fit()`` when the workers and the read tasks feeding them cannot all run on this cluster."""

    check_fits("msm finetune", training_asks(cfg.run), can_grow=cfg.run.wait_for_nodes, log=log)


def run_finetune(cfg: FinetuneConfig, log=print, fail_on_stall: bool = False, overwrite: bool = False) -> Path | str:
    """Fit on the current Ray cluster (a local one is started if none), export, return the run folder (a path, or
    the ``run.output_dir`` URI: checkpoints go there through Ray Train's storage filesystem, the metrics, TensorBoard
    events and exports through :class:`msm.run_folder.RunFolder`).

    The output contract comes first (:func:`claim_output`): the same config's run continues from its latest
    checkpoint (``--resume``), or is reported complete; another config's is replaced only with ``overwrite``. The
    model and the cluster's resources are checked before anything is written.
    """

    from sentence_transformers import SentenceTransformer  # lazy: sentence_transformers

    from msm.finetune.worker import METRICS_FILE  # lazy: transformers
    from msm.progress import follow  # lazy: pyarrow

    cfg = absolute(cfg)
    claimed = claim_output(cfg, overwrite)
    if claimed.state == "complete":
        run = _folder(cfg)
        log(f"{run.loc.uri}: this config's run is already complete (exports in {run.loc.join('export').uri}); "
            "--overwrite trains it again")
        return run.where
    check_model(cfg.model.encoder, "model.encoder")
    data_files(cfg.data.path, cfg.data.format)  # the data is there, before Ray starts
    ensure_ray()
    check_resources(cfg, log)
    claimed.replace()  # every check passed: only now is an older run deleted (--overwrite)
    if claimed.state == "resume":
        log(f"{cfg.run.output_dir}: continuing this config's run from its latest checkpoint")
    run = _start(cfg)
    started = time.time()
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    trainer = build_ray_trainer(cfg)
    per_step = (cfg.train.batch_size * cfg.run.num_workers, "examples/s")
    watch = StallWatch(cfg.run.stall_after_s, fail=fail_on_stall, fix="lower run.num_workers or run.cpus_per_worker")
    metrics = run.loc.join(METRICS_FILE) if run.remote else run.work / METRICS_FILE
    with follow(metrics, trainer.train_loop_config["max_steps"], "finetune", per_step=per_step,
                stall=watch, since=started):
        result = trainer.fit()
    if result.checkpoint is None:
        raise MSMError(f"{run.loc.uri}: the run finished without a checkpoint (train.save_steps larger than the run?); "
                       "see the Ray Train log above")
    with result.checkpoint.as_directory() as folder:
        model = SentenceTransformer(os.path.join(folder, "checkpoint"), device="cpu")
        save_exports(cfg, model, run)
    log(f"finished: {summary(result.metrics or {})} (every logged step in {run.loc.join(METRICS_FILE).uri})")
    log(f"encoder exported to {run.loc.join('export').uri} (HF) and {run.loc.join('export-st').uri} "
        "(sentence-transformers)")
    return run.where


def resume_config(run_dir: str | Path) -> FinetuneConfig:
    """The config a Ray run was started with (its copy at the path or URI), after checking it has a checkpoint."""
    from msm.run_folder import RunFolder  # lazy: pyarrow

    run = RunFolder(run_dir)
    where = run.loc.uri
    if not run.loc.join(CONFIG_FILE).is_file():
        raise MSMError(f"--resume {where}: no {CONFIG_FILE} there; pass the run.output_dir of an earlier "
                       "msm finetune run")
    cfg = load_config(run.pull(CONFIG_FILE), FinetuneConfig)
    if not run.folders(cfg.run.name, "checkpoint_", "checkpoint"):
        raise MSMError(f"--resume {where}: no checkpoint under {where}/{cfg.run.name}; start a new run instead")
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, output_dir=where))
