"""One fine-tuning process: the sentence-transformers trainer, in this process or as a Ray Train worker.

The loop, the optimiser, the schedule, checkpoints and exact resume (optimiser, scheduler, RNG states, data
position: ``resume_from_checkpoint`` skips the batches already seen) are the Hugging Face / sentence-transformers
trainer's. Ours are three callbacks: ``metrics.jsonl``, TensorBoard events and a fault drill.
"""

from __future__ import annotations

import json
import time
import os
from pathlib import Path

from transformers import TrainerCallback

from msm.config import config_from_dict
from msm.finetune.config import FinetuneConfig

METRICS_FILE = "metrics.jsonl"


class MetricsFile(TrainerCallback):
    """Every log record (loss, learning rate, step) as one JSON line, by the main process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.write(json.dumps({"step": state.global_step, **logs, "time": time.time()}) + "\n")


class FailAt(TrainerCallback):
    """Fault drill: raise after step ``step`` (its checkpoint saved first) unless the run resumed a checkpoint."""

    def __init__(self, step: int | None) -> None:
        self.step, self.resumed = step, False

    def on_train_begin(self, args, state, control, **kwargs):
        self.resumed = state.global_step > 0

    def on_save(self, args, state, control, **kwargs):
        if self.step is not None and not self.resumed and state.global_step >= self.step:
            raise RuntimeError(f"fault drill: train.fail_at_step={self.step} reached")


def callbacks(cfg, out: Path) -> list:
    found = [MetricsFile(out / METRICS_FILE), FailAt(cfg.train.fail_at_step)]
    if cfg.run.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        found.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(out / "tensorboard"))))
    return found


def train_in_process(cfg: FinetuneConfig, out: Path, resume: bool) -> tuple[object, list[dict]]:
    """Fit in this process on ``datasets.Dataset`` rows; checkpoints in ``<out>/checkpoints``. Returns (model, log)."""
    from transformers.trainer_utils import get_last_checkpoint

    from msm.finetune.data import hf_dataset, rows_from_examples
    from msm.finetune.model import build_model, build_trainer, training_arguments
    from msm.finetune.readers import read_examples

    ckpt = out / "checkpoints"
    last = get_last_checkpoint(str(ckpt)) if resume and ckpt.is_dir() else None
    rows = rows_from_examples(read_examples(cfg.data), cfg)  # a bad input fails before the model loads
    model = build_model(cfg)
    trainer = build_trainer(cfg, model, training_arguments(cfg, ckpt), hf_dataset(rows), callbacks(cfg, out))
    trainer.train(resume_from_checkpoint=last)
    return trainer.model, trainer.state.log_history


def train_worker(config: dict) -> None:
    """Ray Train worker: the trainer prepared for Ray (its data is this worker's shard of the Ray Dataset)."""
    import shutil
    import tempfile

    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    from msm.finetune.data import RayBatches, ray_batch_size
    from msm.finetune.model import build_model, build_trainer, training_arguments

    cfg = config_from_dict(config["config"], FinetuneConfig)
    ctx = ray.train.get_context()
    out = Path(cfg.run.output_dir)
    scratch = Path(tempfile.gettempdir()) / f"msm-finetune-{config['run_id']}-rank{ctx.get_world_rank()}"
    shutil.rmtree(scratch, ignore_errors=True)  # RayTrainReportCallback reports the highest checkpoint-N found there
    model = build_model(cfg)
    args = training_arguments(cfg, scratch, max_steps=config["max_steps"], in_process=False)
    extra = callbacks(cfg, out) if ctx.get_world_rank() == 0 else [FailAt(cfg.train.fail_at_step)]
    trainer = build_trainer(cfg, model, args, None, [RayTrainReportCallback(), *extra])  # report before a drill
    shard = ray.train.get_dataset_shard("train")
    trainer.train_dataset = shard.iter_torch_batches(
        batch_size=ray_batch_size(cfg), drop_last=True, collate_fn=RayBatches(trainer.data_collator, cfg),
        local_shuffle_buffer_size=cfg.data.shuffle_buffer or None,
        local_shuffle_seed=cfg.train.seed + ctx.get_world_rank() if cfg.data.shuffle_buffer else None)
    trainer = prepare_trainer(trainer)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        trainer.train()
        return
    with checkpoint.as_directory() as folder:
        trainer.train(resume_from_checkpoint=os.path.join(folder, RayTrainReportCallback.CHECKPOINT_NAME))
