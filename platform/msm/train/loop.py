"""The pretraining recipe, read top to bottom: :meth:`PretrainRecipe.setup` → :meth:`~PretrainRecipe.train` →
:meth:`~PretrainRecipe.cleanup`. Plain PyTorch; where it runs is chosen once, by its :class:`Session`.

``train_loop({"config": PretrainConfig as dict, "manifest": the corpus manifest, "resume_from": name | None})``
runs it on every Ray Train worker (:class:`RaySession`: batches from the worker's Ray Data shard,
``ray.train.report`` and Ray Train checkpoints) or in this process (:class:`LocalSession`: the same stream read
from the corpus files, checkpoints published under ``<output_dir>/checkpoints/checkpoint-<step>``). Either way a
restart continues from the exact step: model, optimiser, scheduler, memory bank, RNG states and every worker's
stream position are restored, and ``metrics.jsonl`` is cut back to that step.

Each step: accumulate ``optim.accumulate`` micro-batches (:func:`accumulate_gradients`) → clip and step → log
(``metrics.jsonl``, TensorBoard; rank 0) → maybe validate (rank 0; every rank reports at the same steps) → maybe
checkpoint (every rank's stream position gathered first). With several workers the model is wrapped by
:func:`wrap_ddp` (``DDP_KWARGS``: no buffer broadcasting, the memory bank synchronises itself).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import resource
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter

from msm import code_version
from msm.config import config_from_dict, to_dict
from msm.errors import MSMError
from msm.model.msm import MSMModel
from msm.run_folder import RunFolder
from msm.train.config import PretrainConfig
from msm.train.schedule import lr_factor
from msm.train.stream import Position
from msm.train.stream import fingerprint as stream_fingerprint
from msm.train.stream import open_stream
from msm.train.validate import evaluate, validation_pairs

STATE_FILE = "trainer_state.json"  # a checkpoint's step, config, data fingerprint and stream positions
CHECKPOINTS = "checkpoints"  # in-process checkpoints: checkpoints/checkpoint-<step>, as the HF trainer names them
LEGACY_PREFIX = "step-"  # checkpoints/step-NNNNNN of runs before 2026-12-07, still found when resuming

# How the model is wrapped for data-parallel training (``wrap_ddp``). The module's buffers:
#   * ``memory_bank.keys / langs / ptr``: kept identical on every rank by the bank's own all-gather of every
#     rank's targets (``losses/memory_bank.py``); broadcasting rank 0's copy at each forward (DDP's default) is
#     what used to throw the other ranks' enqueues away;
#   * the projection heads' BatchNorm ``running_mean / running_var / num_batches_tracked``: per rank, as the
#     reference (fairseq, ``--ddp-backend=no_c10d``, never broadcasts buffers); training normalises with batch
#     statistics, and nothing we run uses eval-mode heads (validation and export use the sentence encoder only);
#     the checkpoint holds rank 0's;
#   * the HF encoder's ``embeddings.position_ids / token_type_ids``: constants.
# So no buffer needs broadcasting, and not broadcasting also saves one collective per forward.
# ``find_unused_parameters``: the HF pooler is unused with mean pooling. Newer PyTorch renames the flag
# ``forward_sync_buffers`` (which still syncs buffers once at construction: every rank starts identical).
DDP_KWARGS = {"find_unused_parameters": True,
              ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(
                  torch.nn.parallel.DistributedDataParallel).parameters else "broadcast_buffers"): False}


class FaultDrill(RuntimeError):
    """Raised at ``run.fail_at_step`` to exercise restarts."""


# ---- where the recipe runs ---------------------------------------------------------------------------------------

class LocalSession:
    """In this process: one rank, the stream read from the corpus files, checkpoints under the run folder."""

    rank, world = 0, 1

    def __init__(self, cfg: PretrainConfig, run: RunFolder, resume_from: str | None) -> None:
        self.cfg, self.run, self.resume_from = cfg, run, resume_from

    def device(self) -> torch.device:
        return torch.device("cuda" if self.cfg.run.use_gpu and torch.cuda.is_available() else "cpu")

    def stream(self, cfg: PretrainConfig, manifest: dict):
        return open_stream(cfg, manifest, self.rank, self.world)

    def checkpoint(self) -> contextlib.AbstractContextManager:
        """The folder of the checkpoint to restore (or None), for a ``with``."""
        return contextlib.nullcontext(self.run.fetch_dir(self.resume_from) if self.resume_from else None)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def before_fault(self) -> None:
        return None

    def report(self, metrics: dict, state: Checkpoint | None, step: int) -> None:
        """Publish the checkpoint when one is due; the metrics are in ``metrics.jsonl``, no one else listens."""
        if state is not None:
            save_local(self.run, state, step, self.cfg.run.keep_checkpoints)


class RaySession:
    """On a Ray Train worker: its rank, its Ray Data shard, Ray Train's checkpoint, ``ray.train.report``."""

    def __init__(self, ctx) -> None:
        self.ctx, self.rank, self.world = ctx, ctx.get_world_rank(), ctx.get_world_size()

    def device(self) -> torch.device:
        import ray.train.torch  # lazy: ray

        return ray.train.torch.get_device()

    def stream(self, cfg: PretrainConfig, manifest: dict):
        import ray.train  # lazy: ray


        return open_stream(cfg, manifest, self.rank, self.world, ray.train.get_dataset_shard("train"))

    @contextlib.contextmanager
    def _restored(self):
        import ray.train  # lazy: ray

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def checkpoint(self) -> contextlib.AbstractContextManager:
        return self._restored()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        import ray.train.torch  # lazy: ray

        return wrap_ddp(model, ray.train.torch.prepare_model) if self.world > 1 else model

    def before_fault(self) -> None:
        import ray.train  # lazy: ray

        # fail only once the controller has committed every reported checkpoint
        ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)

    def report(self, metrics: dict, state: Checkpoint | None, step: int) -> None:
        """``ray.train.report`` (a report waits for the Train controller's poll, 2 s by default), with rank 0's
        checkpoint when one is due."""
        import ray.train  # lazy: ray

        if state is None:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            if self.rank == 0:
                state.save(Path(tmp), step)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp) if self.rank == 0 else None)


def _ray_session() -> RaySession | None:
    try:
        import ray.train  # lazy: ray

        return RaySession(ray.train.get_context())
    except Exception:  # not inside a Ray Train worker
        return None


# ---- the recipe -------------------------------------------------------------------------------------------------

class Checkpoint:
    """What a checkpoint holds and how it is written and read back (:func:`save_state` / :func:`load_state`)."""

    def __init__(self, model: MSMModel, opt, sched, cfg: PretrainConfig, fingerprint: str, positions: list,
                 rngs: list[dict] | None = None) -> None:
        self.model, self.opt, self.sched, self.cfg = model, opt, sched, cfg
        self.fingerprint, self.positions, self.rngs = fingerprint, positions, rngs

    def save(self, folder: Path, step: int) -> None:
        save_state(folder, self.model, self.opt, self.sched, step, self.cfg, self.fingerprint, self.positions,
                   self.rngs)


class PretrainRecipe:
    """MSM pretraining on one worker (or in this process), from :meth:`setup` to :meth:`cleanup`."""

    def __init__(self, config: dict, session: LocalSession | RaySession) -> None:
        self.cfg = config_from_dict(config["config"], PretrainConfig, "pretrain config")
        self.manifest, self.session = config["manifest"], session
        self.run = RunFolder(self.cfg.run.output_dir)

    # -- set-up: model, optimiser and schedule, data, restored state, validation, logging
    def setup(self) -> None:
        cfg, rank = self.cfg, self.session.rank
        self.fingerprint = stream_fingerprint(cfg, self.manifest, self.session.world)
        torch.manual_seed(cfg.run.seed + rank)
        self.model = MSMModel.from_config(cfg.model)
        self.model.seed(cfg.run.seed + rank)
        self.device = self.session.device()
        self.stream = self.session.stream(cfg, self.manifest)
        self.model.to(self.device).train()  # from_pretrained leaves the HF encoder in eval mode: dropout on, as the reference
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                     eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, cfg.optim.warmup_steps, cfg.optim.max_steps, cfg.optim.power))
        self.start, positions = self._restore()
        if self.start:
            self.stream.seek(Position(*positions[rank]))
        if rank == 0:
            self.run.keep_steps("metrics.jsonl", self.start)
        self.train_model = self.session.wrap(self.model)
        self.pairs = None
        if cfg.validation.every_steps >= 0 and rank == 0:  # validation runs on rank 0 only

            self.pairs = validation_pairs(cfg)
        self.writer = _tensorboard(self.run.work, cfg) if rank == 0 else None
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" and cfg.run.bf16
                         else contextlib.nullcontext())

    def _restore(self) -> tuple[int, list]:
        with self.session.checkpoint() as folder:
            if folder is None:
                return 0, []
            return load_state(folder, self.model, self.opt, self.sched, self.fingerprint, self.session.rank)

    # -- train: one optimiser step after another
    def train(self) -> None:
        cfg = self.cfg
        for step in range(self.start + 1, cfg.optim.max_steps + 1):
            if cfg.run.fail_at_step == step and not self.start:
                self.session.before_fault()
                raise FaultDrill(f"fault drill: run.fail_at_step={step} (rank {self.session.rank})")
            parts, seconds = self.step()
            metrics = self.metrics(step, parts, seconds)
            validate = self._due(step, cfg.validation.every_steps)
            if validate and self.pairs is not None:

                metrics.update(evaluate(self.model.sentence_encoder, self.pairs, cfg.model.max_tokens))
            self.log(step, metrics)
            save = step == cfg.optim.max_steps or step % cfg.run.checkpoint_every == 0
            if self.session.rank == 0 and (save or validate or step % cfg.run.report_every == 0):
                self.run.push("metrics.jsonl", "tensorboard")
            if save:
                state = Checkpoint(self.model, self.opt, self.sched, cfg, self.fingerprint,
                                   _gather_positions(self.stream.position, self.session.world),
                                   _gather_rngs(self.model, self.session.world))
                self.session.report(metrics, state, step)
            elif validate or step % cfg.run.report_every == 0:  # every rank reports, rank 0 with val_*
                self.session.report(metrics, None, step)

    def step(self) -> tuple[list[dict], float]:
        """Accumulate the micro-batches, clip, step the optimiser and the schedule; their metrics and seconds."""
        t0 = time.perf_counter()
        micro = [next(self.stream) for _ in range(self.cfg.optim.accumulate)]
        self.opt.zero_grad(set_to_none=True)
        parts = accumulate_gradients(self.train_model, micro, self.device, self.autocast)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        return parts, time.perf_counter() - t0

    def metrics(self, step: int, parts: list[dict], seconds: float) -> dict:
        return {"step": step, **_mean_metrics(parts), "lr": self.sched.get_last_lr()[0],
                "sentences_per_s": sum(p["sentences"] for p in parts) / seconds,
                "tokens_per_s": sum(p["tokens"] for p in parts) / seconds, "step_s": seconds,
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "time": time.time()}

    def _due(self, step: int, every: int) -> bool:
        """Every ``every`` steps and at the end (0: only at the end, < 0: never): the same on every rank."""
        return every >= 0 and (step == self.cfg.optim.max_steps or (every > 0 and step % every == 0))

    def log(self, step: int, metrics: dict) -> None:
        """One line of ``metrics.jsonl`` and the TensorBoard scalars (rank 0)."""
        if self.session.rank != 0:
            return
        with open(self.run.work / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        if self.writer is not None:
            for k, v in metrics.items():
                if k != "step" and v is not None:
                    self.writer.add_scalar(f"train/{k}" if not k.startswith("val_") else f"val/{k[4:]}", v, step)
            self.writer.flush()

    # -- clean-up: close the event files, upload what is left
    def cleanup(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.run.push("metrics.jsonl", "tensorboard")


def train_loop(config: dict) -> None:
    """Ray Train's worker function, or the in-process run (``config["resume_from"]``: a checkpoint to continue)."""
    cfg = config_from_dict(config["config"], PretrainConfig, "pretrain config")
    session = _ray_session() or LocalSession(cfg, RunFolder(cfg.run.output_dir), config.get("resume_from"))
    recipe = PretrainRecipe(config, session)
    recipe.setup()
    recipe.train()
    recipe.cleanup()


# ---- the pieces ----------------------------------------------------------------------------------------------------

def _all_ranks(mine, world: int) -> list:
    """Every rank's ``mine``, in rank order (a collective when there are several ranks)."""
    if world == 1:
        return [mine]
    out: list = [None] * world
    dist.all_gather_object(out, mine)
    return out


def _gather_positions(position, world: int) -> list[list[int]]:
    """Every rank's stream position ``[epoch, batches]``, in rank order."""
    return _all_ranks([position.epoch, position.batches], world)


def wrap_ddp(model: torch.nn.Module, prepare_model=None) -> torch.nn.Module:
    """``model`` wrapped for data-parallel training with :data:`DDP_KWARGS`: through Ray Train's
    ``prepare_model`` when given (its device placement), else ``torch.nn.parallel.DistributedDataParallel``
    directly (an initialised ``torch.distributed`` process group; used by the tests)."""
    if prepare_model is not None:
        return prepare_model(model, move_to_device=False, parallel_strategy_kwargs=dict(DDP_KWARGS))

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None, **DDP_KWARGS)


def accumulate_gradients(train_model: torch.nn.Module, micro_batches: list[dict], device: torch.device,
                         autocast=None) -> list[dict]:
    """Forward and backward of each micro-batch, losses scaled by ``1 / len(micro_batches)``, so the gradients
    left in ``.grad`` (added to what is there: zero them first) are the mean over the micro-batches (and, under
    DDP, over the ranks). Under DDP the gradient all-reduce runs only on the last micro-batch (``no_sync`` on
    the others). The memory bank enqueues every micro-batch, so a later micro-batch sees the keys of the
    earlier ones, as consecutive steps would. Returns each micro-batch's metrics (floats and counts)."""
    n = len(micro_batches)
    if n < 1:
        raise MSMError("accumulate_gradients needs at least one micro-batch")
    parts = []
    for i, cpu_batch in enumerate(micro_batches):
        batch = {k: v.to(device) for k, v in cpu_batch.items()}
        skip_sync = i < n - 1 and hasattr(train_model, "no_sync")
        with train_model.no_sync() if skip_sync else contextlib.nullcontext():
            with autocast if autocast is not None else contextlib.nullcontext():
                output = train_model(batch)
            (output.loss / n).backward()
        parts.append({"loss": output.loss.item(), "doc_loss": output.doc_loss.item(),
                      "mlm_loss": output.mlm_loss.item() if output.mlm_loss is not None else None,
                      "acc_same_doc": output.acc_same_doc.item(), "acc_other_doc": output.acc_other_doc.item(),
                      "sentences": int(batch["sentence_mask"].sum()), "tokens": int(batch["attention_mask"].sum())})
    return parts


def _mean_metrics(parts: list[dict]) -> dict:
    """Loss and accuracy metrics averaged over the micro-batches of a step."""
    keys = ("loss", "doc_loss", "mlm_loss", "acc_same_doc", "acc_other_doc")
    return {k: None if parts[0][k] is None else sum(p[k] for p in parts) / len(parts) for k in keys}


def _tensorboard(out: Path, cfg: PretrainConfig):
    if not cfg.run.tensorboard:
        return None

    return SummaryWriter(str(out / "tensorboard"))


def _gather_rngs(model: MSMModel, world: int) -> list[dict]:
    """Every rank's RNG states (torch's, which drives dropout, and the model's masking generator), in rank order:
    a restart on any node, with any placement, continues every rank's random streams exactly."""
    return _all_ranks({"torch_rng": torch.get_rng_state(), "model_rng": model.generator.get_state()}, world)


def save_state(folder: Path, model: MSMModel, opt, sched, step: int, cfg: PretrainConfig, fingerprint: str,
               positions: list[list[int]], rngs: list[dict] | None = None) -> None:
    """Model as safetensors (``MSMModel.save``; includes the memory bank), optimiser/scheduler tensors and every
    rank's RNG states (``rank_rngs``; ``rngs`` from :func:`_gather_rngs`, this process's alone when None) for
    ``torch.load(weights_only=True)``, and ``trainer_state.json`` (step, config, data fingerprint, every rank's
    stream position ``[epoch, batches]``, code version)."""
    model.save(folder / "model")
    rngs = rngs or [{"torch_rng": torch.get_rng_state(), "model_rng": model.generator.get_state()}]
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "torch_rng": rngs[0]["torch_rng"], "model_rng": rngs[0]["model_rng"], "rank_rngs": rngs},
               folder / "optimizer.pt")
    (folder / STATE_FILE).write_text(json.dumps({"step": step, "config": to_dict(cfg), "fingerprint": fingerprint,
                                                 "streams": positions, "code_version": code_version()}, indent=2))


def save_local(run: RunFolder, state: Checkpoint, step: int, keep: int) -> str:
    """Without Ray: ``checkpoints/checkpoint-<step>`` of the run, written in a temp folder and published with its
    ``trainer_state.json`` last (:meth:`RunFolder.put_dir`); keeps the newest ``keep``."""
    tmp = run.scratch(f".checkpoint-{step}-")
    state.save(tmp, step)
    name = f"{CHECKPOINTS}/checkpoint-{step}"
    run.put_dir(tmp, name, STATE_FILE)
    for old in local_checkpoints(run)[:-keep]:
        run.delete(old)
    return name


def load_state(folder: Path, model: MSMModel, opt, sched, fingerprint: str | None = None,
               rank: int = 0) -> tuple[int, list]:
    """Restore everything :func:`save_state` wrote (``rank``'s own RNG states); returns the step to continue from
    and the stream positions. A checkpoint without a state for ``rank`` (an older one, or a run that grew) reseeds
    that rank reproducibly from the seed and the step."""
    state_file = folder / STATE_FILE
    if not state_file.is_file():
        raise MSMError(f"{folder}: not a pretraining checkpoint (no {STATE_FILE}); pass a checkpoint folder "
                       "written by msm pretrain")
    try:
        state = json.loads(state_file.read_text())
        step = int(state["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MSMError(f"{state_file}: corrupt trainer state ({exc}); resume from an earlier checkpoint") from exc
    if fingerprint and state.get("fingerprint") not in (None, fingerprint):
        raise MSMError(f"{folder}: written for other training data (fingerprint {state['fingerprint']}, now "
                       f"{fingerprint}); resume with the same data config or start a new run")
    try:
        positions = [[int(e), int(b)] for e, b in state["streams"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise MSMError(f"{state_file}: no stream positions ({exc}): written by an older msm pretrain; start a new "
                       "run") from exc
    loaded = MSMModel.load(folder / "model")
    model.load_state_dict(loaded.state_dict())
    try:
        extra = torch.load(folder / "optimizer.pt", weights_only=True)
        opt.load_state_dict(extra["optimizer"])
        sched.load_state_dict(extra["scheduler"])
    except Exception as exc:
        raise MSMError(f"{folder / 'optimizer.pt'}: unreadable optimiser state ({exc}); resume from an intact "
                       "checkpoint") from exc
    rngs = extra.get("rank_rngs") or [{"torch_rng": extra["torch_rng"], "model_rng": extra["model_rng"]}]
    if rank < len(rngs):
        torch.set_rng_state(rngs[rank]["torch_rng"])
        model.generator.set_state(rngs[rank]["model_rng"])
    else:
        seed = int(state["config"]["run"]["seed"]) + rank + step
        torch.manual_seed(seed)
        model.generator.manual_seed(seed)
    return step, positions


def local_checkpoints(run: RunFolder) -> list[str]:
    """The complete in-process checkpoints of a run (names inside it), oldest first by step; ``step-NNNNNN`` ones of
    older runs included."""
    found = run.folders(CHECKPOINTS, "checkpoint-", STATE_FILE) + run.folders(CHECKPOINTS, LEGACY_PREFIX, STATE_FILE)
    return sorted(found, key=lambda name: int(name.rsplit("-", 1)[1]))


def latest_checkpoint(run: RunFolder) -> str | None:
    """The newest complete in-process checkpoint of a run (a name inside the run), or None."""
    found = local_checkpoints(run)
    return found[-1] if found else None


def latest_local_checkpoint(out: Path) -> Path | None:
    """The same for a local run folder, as a path."""
    name = latest_checkpoint(RunFolder(out))
    return Path(out) / name if name else None
