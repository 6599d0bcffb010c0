"""Ray Train wiring: the corpus stage (:mod:`msm.train.corpus`, Ray Data), then a ``TorchTrainer`` over
:func:`msm.train.loop.train_loop` whose workers each stream their own share of the corpus (:class:`RankShards`).

Run layout (``run.output_dir``): ``pretrain_config.yaml``, ``corpus/`` (tokenised blocks + manifest), ``metrics.jsonl``,
``tensorboard/``,
``<run.name>/checkpoint_*`` (Ray Train; in process: ``checkpoints/checkpoint-<step>``), ``export/`` (the trained
sentence encoder as an HF folder) and ``export-st/`` (the same as a sentence-transformers folder).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from msm.config import load_config, to_dict
from msm.encoders.resolve import check_model
from msm.encoders.st_export import write_sentence_transformers_folder
from msm.errors import MSMError
from msm.model.msm import MSMModel
from msm.output import claim_run
from msm.progress import follow
from msm.run_folder import RunFolder
from msm.runtime import StallWatch, check_fits, ensure_ray, read_parquet_files, summary, torch_trainer, training_asks
from msm.train import corpus
from msm.train.config import PretrainConfig
from msm.train.corpus import build_local
from msm.train.data import check_source
from msm.train.loop import STATE_FILE, latest_checkpoint, train_loop

CONFIG_FILE = "pretrain_config.yaml"


def absolute(cfg: PretrainConfig) -> PretrainConfig:
    """Make local paths absolute on the driver (Ray workers run in other working directories)."""
    def fix(p: str | None) -> str | None:
        return p if p is None or "://" in p else str(Path(p).expanduser().resolve())

    return dataclasses.replace(
        cfg, run=dataclasses.replace(cfg.run, output_dir=fix(cfg.run.output_dir)),
        data=dataclasses.replace(cfg.data, data_dir=fix(cfg.data.data_dir), path=fix(cfg.data.path),
                                 corpus_dir=fix(cfg.data.corpus_dir)))


def build_trainer(cfg: PretrainConfig, run_config_kwargs: dict | None = None, log=print):
    """The corpus (built through Ray Data, or reused), then the ``TorchTrainer`` for ``cfg`` (paths must be
    absolute; :func:`msm.runtime.torch_trainer`); ``run_config_kwargs`` adds e.g. Tune callbacks."""
    from msm.train.shards import RankShards  # lazy: ray

    resuming = bool(RunFolder(cfg.run.output_dir).folders(cfg.run.name, "checkpoint_", STATE_FILE))
    manifest = corpus.build(cfg, log, resuming=resuming)
    loc = corpus.location(cfg)
    files = [f["path"] for f in manifest["files"]]
    # the dataset only names "train": RankShards reads each worker's own files
    return torch_trainer(train_loop, {"config": to_dict(cfg), "manifest": manifest}, cfg.run,
                         {"train": read_parquet_files(loc, files[:1])}, RankShards(loc, files, cfg.run.seed),
                         run_config_kwargs)


def check_resources(cfg: PretrainConfig, log=print) -> None:
    """Fail before ``fit()`` when the workers and their read tasks cannot all run on this cluster."""

    check_fits("msm pretrain", training_asks(cfg.run), can_grow=cfg.run.wait_for_nodes, log=log)


RUN_FILES = frozenset({CONFIG_FILE, "corpus", "metrics.jsonl", "tensorboard", "export", "export-st", "checkpoints"})


def claim_output(cfg: PretrainConfig, overwrite: bool = False):
    """The output contract for the run folder (:func:`msm.output.claim_run`: a :class:`~msm.output.RunClaim`);
    another config's run is refused without ``overwrite`` (and nothing in it changes), a folder holding anything
    else always."""

    return claim_run(cfg.run.output_dir, "pretrain", CONFIG_FILE, to_dict(cfg), RUN_FILES, overwrite)


def run_pretraining(cfg: PretrainConfig, log=print, fail_on_stall: bool = False, overwrite: bool = False) -> Path | str:
    """Fit on the current Ray cluster (a local one is started if none); export the encoder; return the run dir
    (a local path, or the ``run.output_dir`` URI). A run that cannot fit the cluster fails before it starts
    (:func:`check_resources`); one that waits on resources for ``run.stall_after_s`` says so on its progress line,
    and with ``fail_on_stall`` ends with a :class:`~msm.runtime.ResourceError`.

    The output contract comes first (:func:`claim_output`): re-running the same config in the same ``output_dir``
    continues from the run's latest checkpoint (Ray Train restores it), which is what ``msm pretrain --resume``
    does, or, when the run is complete, says so and returns; another config's run is replaced only with
    ``overwrite``. The model, then the cluster's resources, are checked before anything is written. The run's
    ``metrics.jsonl`` drives a progress line (``msm.progress``; this invocation's steps only); at a URI it is the
    uploaded copy, as fresh as ``run.report_every``.
    """


    cfg = absolute(cfg)
    claimed = claim_output(cfg, overwrite)
    run = RunFolder(cfg.run.output_dir)
    if claimed.state == "complete":
        log(f"{run.loc.uri}: this config's run is already complete (exports in {run.loc.join('export').uri}); "
            "--overwrite trains it again")
        return run.where
    check_model(cfg.model.encoder, "model.encoder")
    check_source(cfg)
    ensure_ray()
    check_resources(cfg, log)
    claimed.replace()  # every check passed: only now is an older run deleted (--overwrite)
    if claimed.state == "resume":
        log(f"{run.loc.uri}: continuing this config's run from its latest checkpoint")
    run.write_config(CONFIG_FILE, to_dict(cfg))
    started = time.time()
    # Each ray.train.report waits for the Train controller's next poll (default every 2 s); poll faster.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    metrics = run.loc.join("metrics.jsonl") if run.remote else run.work / "metrics.jsonl"
    trainer = build_trainer(cfg, log=log)  # the corpus stage first: its Ray Data work is not a stall of the fit
    watch = StallWatch(cfg.run.stall_after_s, fail=fail_on_stall, fix="lower run.num_workers or run.cpus_per_worker")
    with follow(metrics, cfg.optim.max_steps, "pretrain", stall=watch, since=started):
        result = trainer.fit()
    if result.checkpoint is None:
        raise MSMError(f"{run.loc.uri}: the run finished without a checkpoint; see the Ray Train log above")
    with result.checkpoint.as_directory() as folder:
        model = MSMModel.load(Path(folder) / "model")
    save_exports(model, run)
    log(f"finished: {summary(result.metrics)} (every step in {run.loc.join('metrics.jsonl').uri})")
    log(f"encoder exported to {run.loc.join('export').uri} (HF) and {run.loc.join('export-st').uri} "
        "(sentence-transformers)")
    return run.where


def save_exports(model, out: Path | RunFolder) -> None:
    """``export/`` (HF folder) and ``export-st/`` (sentence-transformers) of the run, each published complete (the
    name fine-tuning's exports have too: :func:`msm.finetune.model.save_exports`)."""

    run = out if isinstance(out, RunFolder) else RunFolder(out)
    tmp = run.scratch(".export-")
    model.export_encoder(tmp / "export")
    write_sentence_transformers_folder(tmp / "export", tmp / "export-st", overwrite=True)
    run.put_dir(tmp / "export-st", "export-st", "modules.json")
    run.put_dir(tmp / "export", "export", "config.json")
    shutil.rmtree(tmp, ignore_errors=True)


def resume_config(run_dir: str | Path) -> PretrainConfig:
    """The config a run was started with, after checking the run has a checkpoint to continue from."""
    run = RunFolder(run_dir)
    where = run.loc.uri
    if not run.loc.join(CONFIG_FILE).is_file():
        raise MSMError(f"--resume {where}: no {CONFIG_FILE} there; pass the run.output_dir of an earlier "
                       "msm pretrain run")
    cfg = load_config(run.pull(CONFIG_FILE), PretrainConfig)  # the work copy: downloaded when at a URI
    found = run.folders(cfg.run.name, "checkpoint_", STATE_FILE)
    if not found and latest_checkpoint(run) is None:
        raise MSMError(f"--resume {where}: no checkpoint under {where}/{cfg.run.name}; start a new run instead")
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, output_dir=where))


def run_local(cfg: PretrainConfig, resume: bool = False) -> Path | str:
    """The same loop in this process without Ray (tests, benchmarks); checkpoints in ``<output_dir>/checkpoints``
    (the run dir may be a URI as with Ray)."""

    cfg = absolute(cfg)
    run = RunFolder(cfg.run.output_dir)
    last = latest_checkpoint(run) if resume else None
    if resume and last is None:
        raise MSMError(f"{run.loc.uri}: no checkpoint to resume from (expected {run.loc.uri}/checkpoints/checkpoint-*)")
    run.write_config(CONFIG_FILE, to_dict(cfg))
    train_loop({"config": to_dict(cfg), "manifest": build_local(cfg, log=lambda *_: None, resuming=resume),
                "resume_from": last})
    return run.where
