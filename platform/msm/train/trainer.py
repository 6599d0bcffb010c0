"""Ray Train wiring: ``TorchTrainer`` over :func:`msm.train.loop.train_loop`."""

from __future__ import annotations

import os
from pathlib import Path

from msm.config import to_dict
from msm.train.config import PretrainConfig
from msm.train.loop import train_loop


def build_trainer(cfg: PretrainConfig):
    import ray.train
    from ray.train.torch import TorchTrainer

    storage = str(Path(cfg.run.output_dir).resolve()) if "://" not in cfg.run.output_dir else cfg.run.output_dir
    return TorchTrainer(
        train_loop,
        train_loop_config=to_dict(cfg),
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.run.num_workers, use_gpu=cfg.run.use_gpu,
                                               resources_per_worker={"CPU": cfg.run.cpus_per_worker}),
        run_config=ray.train.RunConfig(
            storage_path=storage, name=cfg.run.name,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.run.keep_checkpoints),
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures)),
    )


def run_pretraining(cfg: PretrainConfig, log=print) -> Path:
    """Fit on the current Ray cluster (a local one is started if none); export the encoder; return the run dir."""
    import ray

    from msm.model.msm import MSMModel

    if not ray.is_initialized():  # embedded local Ray inherits these; a submitted job brings its runtime_env
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        ray.init()
    result = build_trainer(cfg).fit()
    out = Path(cfg.run.output_dir)
    with result.checkpoint.as_directory() as folder:
        model = MSMModel.load(Path(folder) / "model")
        model.export_encoder(out / "export")
    log(f"finished: {result.metrics}; encoder exported to {out / 'export'}")
    return out
