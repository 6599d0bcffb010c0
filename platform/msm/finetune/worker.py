"""The fine-tuning recipe (:class:`FinetuneRecipe`: set-up → train → clean-up), in this process or on a Ray
Train worker, chosen once by its session (:class:`LocalSession`, :class:`RaySession`).

The loop, the optimiser, the schedule, checkpoints and exact resume (optimiser, scheduler, RNG states, data
position: ``resume_from_checkpoint`` skips the batches already seen) are the Hugging Face / sentence-transformers
trainer's. Ours are three callbacks: ``metrics.jsonl``, TensorBoard events and the fault drill (``run.fail_at_step``,
as in pretraining).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from msm.config import config_from_dict
from msm.finetune.config import FinetuneConfig
from msm.finetune.data import RankRows, RayBatches, hf_dataset, ray_batch_size, rows_from_examples
from msm.finetune.model import build_model, build_trainer, training_arguments
from msm.finetune.readers import read_examples
from msm.run_folder import RunFolder
from msm.uri import copy_tree, resolve

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
            raise RuntimeError(f"fault drill: run.fail_at_step={self.step} reached")


class Upload(TrainerCallback):
    """A run at a URI: the log and TensorBoard events uploaded at every log record and at the end, and (in process)
    each checkpoint after it is saved, ``trainer_state.json`` last (:class:`msm.run_folder.RunFolder`; nothing to do
    for a local run folder)."""

    def __init__(self, run: RunFolder, checkpoints: bool) -> None:
        self.run, self.checkpoints = run, checkpoints

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            self.run.push(METRICS_FILE, "tensorboard")

    def on_save(self, args, state, control, **kwargs):
        if self.checkpoints and state.is_world_process_zero and self.run.remote:
            self.run.upload_dir(f"checkpoints/checkpoint-{state.global_step}", "trainer_state.json")
            local = {p.name for p in (self.run.work / "checkpoints").glob("checkpoint-*")}
            for name in self.run.folders("checkpoints", "checkpoint-", "trainer_state.json"):
                if name.split("/")[-1] not in local:  # the trainer rotated it out (save_total_limit): so do we
                    self.run.delete(name)

    def on_train_end(self, args, state, control, **kwargs):
        self.on_log(args, state, control)


def callbacks(cfg, run: RunFolder, checkpoints: bool = False) -> list:
    """Rank 0's callbacks: ``metrics.jsonl``, TensorBoard events, the upload (after those have written), the fault
    drill (last: a checkpoint is uploaded before the drill raises)."""
    found = [MetricsFile(run.work / METRICS_FILE)]
    if cfg.run.tensorboard:
        from torch.utils.tensorboard import SummaryWriter  # lazy: torch

        found.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run.work / "tensorboard"))))
    return [*found, Upload(run, checkpoints), FailAt(cfg.run.fail_at_step)]


def resumed_step(folder: str | None) -> int:
    """The global step of the Hugging Face checkpoint ``folder`` (its ``trainer_state.json``); 0 without one."""
    if folder is None:
        return 0
    return int(json.loads((Path(folder) / "trainer_state.json").read_text())["global_step"])


class LocalSession:
    """In this process: the whole example set as a ``datasets.Dataset`` (the trainer's own no-duplicates sampler),
    checkpoints in ``<output_dir>/checkpoints/checkpoint-<step>`` (the HF trainer's names)."""

    rank = 0

    def __init__(self, cfg: FinetuneConfig, run: RunFolder, resume: bool) -> None:
        self.cfg, self.run, self.resume = cfg, run, resume
        self.out = run.work
        self.rows = None

    def check_data(self) -> None:
        self.rows = rows_from_examples(read_examples(self.cfg.data), self.cfg)  # fails before the model loads

    def arguments(self, steps: int | None):
        return training_arguments(self.cfg, self.out / "checkpoints")

    def callbacks(self) -> list:
        return callbacks(self.cfg, self.run, checkpoints=True)

    def dataset(self):
        """The training rows, given to the trainer when it is built (it adds its prompt columns then)."""
        return hf_dataset(self.rows)

    def attach_data(self, trainer):
        return trainer

    @contextlib.contextmanager
    def checkpoint(self):
        """The latest checkpoint when resuming (at a URI: downloaded into the work folder first); the log cut to
        its step, so every step is logged once."""
        last = None
        found = self.run.folders("checkpoints", "checkpoint-", "trainer_state.json") if self.resume else []
        if found:  # the newest complete one (a half-saved newer folder has no trainer_state.json)
            newest = max(found, key=lambda n: int(n.rsplit("-", 1)[1]))
            if self.run.remote:
                shutil.rmtree(self.out / newest, ignore_errors=True)
                copy_tree(self.run.loc.join(newest), resolve(self.out / newest))
            last = str(self.out / newest)
        self.run.keep_steps(METRICS_FILE, resumed_step(last))
        yield last


class RaySession:
    """On a Ray Train worker: its shard of the Ray Dataset, batched by :class:`msm.finetune.data.RayBatches` (the
    trainer's sampler and collator are bypassed by ``prepare_trainer``), Ray Train's report callback and
    checkpoint."""

    def __init__(self, cfg: FinetuneConfig, run_id: str) -> None:
        import ray.train  # lazy: ray

        self.cfg, self.ctx = cfg, ray.train.get_context()
        self.rank, self.run = self.ctx.get_world_rank(), RunFolder(cfg.run.output_dir)  # at a URI: a temp work folder
        # RayTrainReportCallback reports the highest checkpoint-N found in the trainer's output folder
        self.scratch = Path(tempfile.gettempdir()) / f"msm-finetune-{run_id}-rank{self.rank}"
        shutil.rmtree(self.scratch, ignore_errors=True)

    def check_data(self) -> None:
        return None  # the driver read it (the row count) before the workers started

    def arguments(self, steps: int | None):
        return training_arguments(self.cfg, self.scratch, max_steps=steps, in_process=False)

    def callbacks(self) -> list:
        from ray.train.huggingface.transformers import RayTrainReportCallback  # lazy: ray

        mine = callbacks(self.cfg, self.run) if self.rank == 0 else [FailAt(self.cfg.run.fail_at_step)]
        return [RayTrainReportCallback(), *mine]  # the report (and its checkpoint) before a fault drill

    def dataset(self):
        return None  # the worker's shard is attached after the trainer is built (attach_data)

    def attach_data(self, trainer):
        import ray.train  # lazy: ray
        from ray.train.huggingface.transformers import prepare_trainer  # lazy: ray

        cfg, world = self.cfg, self.ctx.get_world_size()
        stream = ray.train.get_dataset_shard("train")  # the whole ordered stream (not split): RankRows takes ours
        trainer.train_dataset = stream.iter_torch_batches(
            batch_size=ray_batch_size(cfg) * world, drop_last=True,
            collate_fn=RankRows(RayBatches(trainer.data_collator, cfg), self.rank, world),
            local_shuffle_buffer_size=cfg.data.shuffle_buffer or None,
            local_shuffle_seed=cfg.train.seed if cfg.data.shuffle_buffer else None)  # one order for every rank
        return prepare_trainer(trainer)

    @contextlib.contextmanager
    def checkpoint(self):
        import ray.train  # lazy: ray
        from ray.train.huggingface.transformers import RayTrainReportCallback  # lazy: ray

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            if self.rank == 0:
                self.run.keep_steps(METRICS_FILE, 0)  # a restart with no checkpoint logs from step 1 again
            yield None
            return
        with checkpoint.as_directory() as folder:
            last = os.path.join(folder, RayTrainReportCallback.CHECKPOINT_NAME)
            if self.rank == 0:  # a restart (node lost) rewrites the steps after the checkpoint: each logged once
                self.run.keep_steps(METRICS_FILE, resumed_step(last))
            yield last


class FinetuneRecipe:
    """Fine-tuning on one worker (or in this process), from :meth:`setup` to :meth:`cleanup`, the same shape as
    :class:`msm.train.loop.PretrainRecipe` around the sentence-transformers trainer, which owns the loop."""

    def __init__(self, cfg: FinetuneConfig, session: LocalSession | RaySession, steps: int | None = None) -> None:
        self.cfg, self.session, self.steps = cfg, session, steps

    # -- set-up: the data checked, the model, its loss and training arguments, the trainer fed by the session
    def setup(self) -> None:
        self.session.check_data()
        self.model = build_model(self.cfg)
        trainer = build_trainer(self.cfg, self.model, self.session.arguments(self.steps), self.session.dataset(),
                                self.session.callbacks())
        self.trainer = self.session.attach_data(trainer)

    # -- train: the trainer's loop from the session's checkpoint (exact resume: the trainer's)
    def train(self) -> None:
        with self.session.checkpoint() as last:
            self.trainer.train(resume_from_checkpoint=last)

    # -- clean-up: the trained model and the log (the driver exports them)
    def cleanup(self) -> tuple[object, list[dict]]:
        return self.trainer.model, self.trainer.state.log_history


def train_in_process(cfg: FinetuneConfig, run: RunFolder, resume: bool) -> tuple[object, list[dict]]:
    """Fit in this process; checkpoints in ``checkpoints/`` of the run folder. Returns (model, log)."""
    recipe = FinetuneRecipe(cfg, LocalSession(cfg, run, resume))
    recipe.setup()
    recipe.train()
    return recipe.cleanup()


def train_worker(config: dict) -> None:
    """Ray Train worker: the recipe on this worker's shard of the Ray Dataset."""
    cfg = config_from_dict(config["config"], FinetuneConfig)
    recipe = FinetuneRecipe(cfg, RaySession(cfg, config["run_id"]), steps=config["max_steps"])
    recipe.setup()
    recipe.train()
    recipe.cleanup()
