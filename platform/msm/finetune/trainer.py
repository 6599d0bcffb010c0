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
    """The output contract for the run folder (:func:`msm.output.claim_run`: a :class:`~msm.output.RunClaim`).
    The run folder is local (or a shared filesystem): a URI is refused here, naming the fix."""
    from msm.output import claim_run  # lazy: pyarrow

    if "://" in cfg.run.output_dir:
        raise MSMError(f"run.output_dir {cfg.run.output_dir}: msm finetune writes its run folder to a local or shared "
                       "filesystem path (URIs: msm pretrain, msm mine, msm index for now); give a path such as "
                       "/mnt/msm/runs/finetune")
    return claim_run(cfg.run.output_dir, "finetune", CONFIG_FILE, to_dict(cfg), RUN_FILES, overwrite)


def _start(cfg: FinetuneConfig) -> Path:
    """The run folder with its config copy (:meth:`msm.run_folder.RunFolder.write_config`, as pretraining's)."""
    from msm.run_folder import RunFolder  # lazy: pyarrow

    run = RunFolder(cfg.run.output_dir)
    run.write_config(CONFIG_FILE, to_dict(cfg))
    return run.work


def has_local_checkpoint(cfg: FinetuneConfig) -> bool:
    return any((Path(absolute(cfg).run.output_dir) / "checkpoints").glob("checkpoint-*"))


def run_local(cfg: FinetuneConfig, resume: bool = False, log=print, overwrite: bool = False) -> Path:
    """Fit in this process (tests, the protocol on one machine); ``resume`` continues from the latest checkpoint."""
    from msm.finetune.worker import train_in_process  # lazy: transformers

    cfg = absolute(cfg)
    if resume and not any((Path(cfg.run.output_dir) / "checkpoints").glob("checkpoint-*")):
        raise MSMError(f"{cfg.run.output_dir}: no checkpoint to resume from (expected "
                       f"{Path(cfg.run.output_dir) / 'checkpoints'}/checkpoint-*)")
    claimed = claim_output(cfg, overwrite)
    if claimed.state == "complete" and not resume:
        log(f"{cfg.run.output_dir}: this config's run is already complete; --overwrite trains it again")
        return Path(cfg.run.output_dir)
    data_files(cfg.data.path, cfg.data.format)
    claimed.replace()
    out = _start(cfg)
    model, history = train_in_process(cfg, out, resume)
    save_exports(cfg, model, out)
    losses = [h["loss"] for h in history if "loss" in h]
    log(f"finished {len(losses)} logged steps; loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "finished")
    return out


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
    return torch_trainer(train_worker, {"config": to_dict(cfg), "max_steps": steps, "run_id": run_id}, cfg.run,
                         {"train": ds}, ray.train.DataConfig(execution_options=options), run_config_kwargs)


def check_resources(cfg: FinetuneConfig, log=print) -> None:
    """Fail before ``fit()`` when the workers and the read tasks feeding them cannot all run on this cluster."""

    check_fits("msm finetune", training_asks(cfg.run), can_grow=cfg.run.wait_for_nodes, log=log)


def run_finetune(cfg: FinetuneConfig, log=print, fail_on_stall: bool = False, overwrite: bool = False) -> Path:
    """Fit on the current Ray cluster (a local one is started if none), export, return the run folder.

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
        log(f"{cfg.run.output_dir}: this config's run is already complete (exports in "
            f"{Path(cfg.run.output_dir) / 'export'}); --overwrite trains it again")
        return Path(cfg.run.output_dir)
    check_model(cfg.model.encoder, "model.encoder")
    data_files(cfg.data.path, cfg.data.format)  # the data is there, before Ray starts
    ensure_ray()
    check_resources(cfg, log)
    claimed.replace()  # every check passed: only now is an older run deleted (--overwrite)
    if claimed.state == "resume":
        log(f"{cfg.run.output_dir}: continuing this config's run from its latest checkpoint")
    out = _start(cfg)
    started = time.time()
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    trainer = build_ray_trainer(cfg)
    per_step = (cfg.train.batch_size * cfg.run.num_workers, "examples/s")
    watch = StallWatch(cfg.run.stall_after_s, fail=fail_on_stall, fix="lower run.num_workers or run.cpus_per_worker")
    with follow(out / METRICS_FILE, trainer.train_loop_config["max_steps"], "finetune", per_step=per_step,
                stall=watch, since=started):
        result = trainer.fit()
    if result.checkpoint is None:
        raise MSMError(f"{out}: the run finished without a checkpoint (train.save_steps larger than the run?); "
                       "see the Ray Train log above")
    with result.checkpoint.as_directory() as folder:
        model = SentenceTransformer(os.path.join(folder, "checkpoint"), device="cpu")
        save_exports(cfg, model, out)
    log(f"finished: {summary(result.metrics or {})} (every logged step in {out / METRICS_FILE})")
    log(f"encoder exported to {out / 'export'} (HF) and {out / 'export-st'} (sentence-transformers)")
    return out


def resume_config(run_dir: str | Path) -> FinetuneConfig:
    run_dir = Path(run_dir).expanduser().resolve()
    if not (run_dir / CONFIG_FILE).is_file():
        raise MSMError(f"--resume {run_dir}: no {CONFIG_FILE} there; pass the run.output_dir of an earlier "
                       "msm finetune run")
    cfg = load_config(run_dir / CONFIG_FILE, FinetuneConfig)
    if not list((run_dir / cfg.run.name).glob("checkpoint_*")):
        raise MSMError(f"--resume {run_dir}: no checkpoint under {run_dir / cfg.run.name}; start a new run instead")
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, output_dir=str(run_dir)))
