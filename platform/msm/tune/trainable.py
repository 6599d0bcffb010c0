"""One Tune trial = one Ray Train run: a function trainable that builds and fits a ``TorchTrainer``.

Ray 2.60 runs Train V2, where ``Tuner(trainer)`` is gone. The supported pattern: Tune runs a *function* trainable
per trial (a small driver actor, ``tune.with_resources(fn, {"cpu": trial_cpus})``); it builds the trial's
``TorchTrainer`` (``msm.train.trainer.build_trainer``) with ``RunConfig(callbacks=[TuneReportCallback()])`` and
calls ``fit()``. Every worker calls ``ray.train.report``; the callback, running in the Train controller, forwards
rank 0's metrics to the trial's Tune session, where schedulers (ASHA) and searchers see them.

:class:`MetricReportCallback` forwards only reports that carry the sweep's metric (``val_score`` is reported every
``validation.every_steps`` steps, the loss every ``run.report_every`` steps): Tune rejects results lacking the metric it optimises,
and ASHA's time unit (``training_iteration``) becomes "metric reports so far".
"""

from __future__ import annotations

import os
from pathlib import Path

import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback

from msm.config import config_from_dict, merge
from msm.train.config import PretrainConfig
from msm.uri import resolve


class MetricReportCallback(TuneReportCallback):
    """``TuneReportCallback`` that skips reports without ``metric`` (or with it ``None``)."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric = metric

    def after_report(self, run_context, metrics, checkpoint):
        if metrics and metrics[0].get(self.metric) is not None:
            super().after_report(run_context, metrics, checkpoint)


def trial_output_dir(sweep_dir: str | Path, trial_id: str) -> str:
    """Where a trial's pretraining run writes (``metrics.jsonl``, Ray Train checkpoints): a path or a URI under
    the sweep's."""
    return resolve(sweep_dir).join("trials", trial_id).uri


CORPUS_KEYS = ("model.encoder", "model.max_sentences", "model.max_tokens")  # besides data.* (msm.train.corpus)


def with_shared_corpus(sweep, log=print) -> dict:
    """The sweep's base config with ``data.corpus_dir = <sweep>/corpus``, built now (Ray Data, coordinated from
    here) for every trial to read, when no knob changes what the corpus depends on; else the base as it is (each
    trial then builds its own)."""
    from msm.train import corpus  # lazy: pyarrow, torch
    from msm.train.trainer import absolute  # lazy: pyarrow, torch

    def shapes_corpus(key: str) -> bool:
        return key in CORPUS_KEYS or (key.startswith("data.") and key.split(".")[1] not in corpus.BATCHING)

    if any(shapes_corpus(k.key) for k in sweep.knobs):
        return sweep.base
    base = merge(sweep.base, {"data": {"corpus_dir": sweep.loc.join("corpus").uri}})
    cfg = absolute(config_from_dict(merge(base, {"run": {"output_dir": sweep.where}}), PretrainConfig,
                                    "sweep base"))
    corpus.build(cfg, log)
    return base


def run_trial(config: dict, *, base: dict, sweep_dir: str, metric: str, env: dict | None = None) -> None:
    """Tune function trainable. ``config``: the sampled knobs, nested like PretrainConfig. ``env``: variables set
    in this trial's process before the Train run starts (Train propagates its own, e.g. the controller's poll
    interval, to the controller and workers)."""


    from msm.train.trainer import build_trainer  # lazy: pyarrow, torch

    os.environ.update(env or {})
    trial_id = ray.tune.get_context().get_trial_id()
    data = merge(base, config)
    data = merge(data, {"run": {"output_dir": trial_output_dir(sweep_dir, trial_id)}})
    cfg = config_from_dict(data, PretrainConfig, f"trial {trial_id}")
    # Same storage path and name on a restarted trial: Train V2 resumes from the trial's latest checkpoint.
    build_trainer(cfg, run_config_kwargs={"callbacks": [MetricReportCallback(metric)]}).fit()
