"""The per-worker training loop. Plain PyTorch; Ray Train's context is used when present.

``train_loop({"config": PretrainConfig as dict, "manifest": the corpus manifest, "resume_from": dir | None})`` runs
on every Ray Train worker (batches stream from its Ray Data shard, :mod:`msm.train.stream`), or in-process without
Ray (the same stream read from the corpus files; checkpoints under ``<output_dir>/checkpoints``). Either way a
restart continues from the exact step: model, optimiser, scheduler, memory bank, RNG states and every worker's
stream position are restored, and ``metrics.jsonl`` is cut back to that step.

With several workers the model is wrapped by :func:`wrap_ddp` (``DDP_KWARGS``: no buffer broadcasting, the memory
bank synchronises itself), each optimiser step accumulates ``optim.accumulate`` micro-batches
(:func:`accumulate_gradients`), and validation runs on rank 0 only; every rank still calls ``ray.train.report``
at the same steps (rank 0's metrics carry the ``val_*`` figures).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from msm import code_version
from msm.config import config_from_dict, to_dict
from msm.errors import MSMError
from msm.model.msm import MSMModel
from msm.train.config import PretrainConfig
from msm.train.run_folder import RunFolder
from msm.train.schedule import lr_factor

STATE_FILE = "trainer_state.json"

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


def _ray_context():
    try:
        import ray.train

        return ray.train.get_context()
    except Exception:  # not inside a Ray Train worker
        return None


def train_loop(config: dict) -> None:
    from msm.train.stream import Position, fingerprint as stream_fingerprint, open_stream

    cfg = config_from_dict(config["config"], PretrainConfig, "pretrain config")
    manifest = config["manifest"]
    ctx = _ray_context()
    rank = ctx.get_world_rank() if ctx else 0
    world = ctx.get_world_size() if ctx else 1
    fingerprint = stream_fingerprint(cfg, manifest, world)
    torch.manual_seed(cfg.run.seed + rank)
    model = MSMModel.from_config(cfg.model)
    model.seed(cfg.run.seed + rank)
    if ctx is not None:
        import ray.train
        import ray.train.torch

        device = ray.train.torch.get_device()
        stream = open_stream(cfg, manifest, rank, world, ray.train.get_dataset_shard("train"))
        checkpoint = ray.train.get_checkpoint()
    else:
        device = torch.device("cuda" if cfg.run.use_gpu and torch.cuda.is_available() else "cpu")
        stream = open_stream(cfg, manifest, rank, world)
        checkpoint = None
    model.to(device).train()  # from_pretrained leaves the HF encoder in eval mode: dropout on, as the reference
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                            weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.optim.warmup_steps, cfg.optim.max_steps, cfg.optim.power))
    start = 0
    run = RunFolder(cfg.run.output_dir)
    positions: list[list[int]] = []
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start, positions = load_state(Path(folder), model, opt, sched, fingerprint)
    elif config.get("resume_from"):
        start, positions = load_state(run.fetch_dir(config["resume_from"]), model, opt, sched, fingerprint)
    restored = start > 0
    if restored:
        stream.seek(Position(*positions[rank]))
    if restored and rank:  # the checkpoint holds rank 0's RNG streams; other ranks get their own, reproducibly
        torch.manual_seed(cfg.run.seed + rank + start)
        model.generator.manual_seed(cfg.run.seed + rank + start)
    if rank == 0:
        _truncate_metrics(run.pull("metrics.jsonl"), start)
        run.push("metrics.jsonl")
    train_model = model
    if ctx is not None and ctx.get_world_size() > 1:
        train_model = wrap_ddp(model, ray.train.torch.prepare_model)
    pairs = None
    if cfg.validation.every_steps >= 0 and rank == 0:  # validation runs on rank 0 only
        from msm.train.validate import validation_pairs

        pairs = validation_pairs(cfg)
    accumulate = cfg.optim.accumulate
    writer = _tensorboard(run.work, cfg) if rank == 0 else None
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and cfg.run.bf16
                else contextlib.nullcontext())
    for step in range(start, cfg.optim.max_steps):
        if cfg.run.fail_at_step == step + 1 and not restored:
            if ctx is not None:  # fail only once the controller has committed every reported checkpoint
                ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)
            raise FaultDrill(f"fault drill: run.fail_at_step={step + 1} (rank {rank})")
        t0 = time.perf_counter()
        micro = [next(stream) for _ in range(accumulate)]
        opt.zero_grad(set_to_none=True)
        parts = accumulate_gradients(train_model, micro, device, autocast)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        sec = time.perf_counter() - t0
        done = step + 1 == cfg.optim.max_steps
        metrics = {"step": step + 1, **_mean_metrics(parts), "lr": sched.get_last_lr()[0],
                   "sentences_per_s": sum(p["sentences"] for p in parts) / sec,
                   "tokens_per_s": sum(p["tokens"] for p in parts) / sec, "step_s": sec,
                   "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "time": time.time()}
        every = cfg.validation.every_steps
        validate = every >= 0 and (done or (every > 0 and (step + 1) % every == 0))  # the same on every rank
        if validate and pairs is not None:
            from msm.train.validate import evaluate

            metrics.update(evaluate(model.sentence_encoder, pairs, cfg.model.max_tokens))
        if rank == 0:
            with open(run.work / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(metrics) + "\n")
            if writer is not None:
                for k, v in metrics.items():
                    if k != "step" and v is not None:
                        writer.add_scalar(f"train/{k}" if not k.startswith("val_") else f"val/{k[4:]}", v, step + 1)
                writer.flush()
        save = done or (step + 1) % cfg.run.checkpoint_every == 0
        if rank == 0 and (save or validate or (step + 1) % cfg.run.report_every == 0):
            run.push("metrics.jsonl", "tensorboard")
        if save:
            positions = _gather_positions(stream.position, world)
        if ctx is not None:
            if save:
                with tempfile.TemporaryDirectory() as tmp:
                    if rank == 0:
                        save_state(Path(tmp), model, opt, sched, step + 1, cfg, fingerprint, positions)
                    ray.train.report(metrics,
                                     checkpoint=ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None)
            elif validate or (step + 1) % cfg.run.report_every == 0:  # every rank reports, rank 0 with val_*
                ray.train.report(metrics)  # a report waits for the Train controller's poll (2 s by default)
        elif save:
            save_local(run, model, opt, sched, step + 1, cfg, fingerprint, positions)
    if writer is not None:
        writer.close()
        run.push("metrics.jsonl", "tensorboard")


def _gather_positions(position, world: int) -> list[list[int]]:
    """Every rank's stream position, in rank order (a collective when there are several ranks)."""
    mine = [position.epoch, position.batches]
    if world == 1:
        return [mine]
    import torch.distributed as dist

    out: list = [None] * world
    dist.all_gather_object(out, mine)
    return out


def wrap_ddp(model: torch.nn.Module, prepare_model=None) -> torch.nn.Module:
    """``model`` wrapped for data-parallel training with :data:`DDP_KWARGS`: through Ray Train's
    ``prepare_model`` when given (its device placement), else ``torch.nn.parallel.DistributedDataParallel``
    directly (an initialised ``torch.distributed`` process group; used by the tests)."""
    if prepare_model is not None:
        return prepare_model(model, move_to_device=False, parallel_strategy_kwargs=dict(DDP_KWARGS))
    from torch.nn.parallel import DistributedDataParallel

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
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"))


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows of steps ≤ ``step`` (a restart rewrites the later ones); a torn last line is dropped."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)


def save_state(folder: Path, model: MSMModel, opt, sched, step: int, cfg: PretrainConfig, fingerprint: str,
               positions: list[list[int]]) -> None:
    """Model as safetensors (``MSMModel.save``; includes the memory bank), optimiser/scheduler/RNG tensors for
    ``torch.load(weights_only=True)``, and ``trainer_state.json`` (step, config, data fingerprint, every rank's
    stream position ``[epoch, batches]``, code version)."""
    model.save(folder / "model")
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(), "model_rng": model.generator.get_state()},
               folder / "optimizer.pt")
    (folder / STATE_FILE).write_text(json.dumps({"step": step, "config": to_dict(cfg), "fingerprint": fingerprint,
                                                 "streams": positions, "code_version": code_version()}, indent=2))


def save_local(run: RunFolder, model, opt, sched, step: int, cfg: PretrainConfig, fingerprint: str,
               positions: list[list[int]]) -> str:
    """Without Ray: ``checkpoints/step-NNNNNN`` of the run, written in a temp folder and published with its
    ``trainer_state.json`` last (:meth:`RunFolder.put_dir`); keeps the newest ``run.keep_checkpoints``."""
    tmp = run.scratch(f".step-{step:06d}-")
    save_state(tmp, model, opt, sched, step, cfg, fingerprint, positions)
    name = f"checkpoints/step-{step:06d}"
    run.put_dir(tmp, name, STATE_FILE)
    for old in run.folders("checkpoints", "step-", STATE_FILE)[: -cfg.run.keep_checkpoints]:
        run.delete(old)
    return name


def load_state(folder: Path, model: MSMModel, opt, sched, fingerprint: str | None = None) -> tuple[int, list]:
    """Restore everything :func:`save_state` wrote; returns the step to continue from and the stream positions."""
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
    torch.set_rng_state(extra["torch_rng"])
    model.generator.set_state(extra["model_rng"])
    return step, positions


def latest_checkpoint(run: RunFolder) -> str | None:
    """The newest complete ``checkpoints/step-*`` of a run without Ray (a name inside the run), or None."""
    found = run.folders("checkpoints", "step-", STATE_FILE)
    return found[-1] if found else None


def latest_local_checkpoint(out: Path) -> Path | None:
    """The same for a local run folder, as a path."""
    name = latest_checkpoint(RunFolder(out))
    return Path(out) / name if name else None
