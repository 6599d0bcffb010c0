"""The per-worker training loop. Plain PyTorch; Ray Train's context is used when present.

``train_loop({"config": PretrainConfig as dict, "fingerprint": str, "resume_from": dir | None})`` runs on every
Ray Train worker (batches come from its Ray Data shard), or in-process without Ray (batches tokenised locally,
checkpoints under ``<output_dir>/checkpoints``). Either way a restart continues from the exact step: model,
optimiser, scheduler, memory bank and RNG states are restored, and ``metrics.jsonl`` is cut back to that step.
"""

from __future__ import annotations

import contextlib
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


class FaultDrill(RuntimeError):
    """Raised at ``run.fail_at_step`` to exercise restarts."""


def _ray_context():
    try:
        import ray.train

        return ray.train.get_context()
    except Exception:  # not inside a Ray Train worker
        return None


def train_loop(config: dict) -> None:
    cfg = config_from_dict(config["config"], PretrainConfig, "pretrain config")
    fingerprint = config["fingerprint"]
    ctx = _ray_context()
    rank = ctx.get_world_rank() if ctx else 0
    torch.manual_seed(cfg.run.seed + rank)
    model = MSMModel.from_config(cfg.model)
    model.seed(cfg.run.seed + rank)
    if ctx is not None:
        import ray.train
        import ray.train.torch

        from msm.train.data import collect_shard

        device = ray.train.torch.get_device()
        batches = collect_shard(ray.train.get_dataset_shard("train"))
        checkpoint = ray.train.get_checkpoint()
    else:
        from msm.train.data import local_batches, plan_batches

        device = torch.device("cuda" if cfg.run.use_gpu and torch.cuda.is_available() else "cpu")
        batches = local_batches(cfg, plan_batches(cfg))
        checkpoint = None
    model.to(device).train()  # from_pretrained leaves the HF encoder in eval mode: dropout on, as the reference
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                            weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.optim.warmup_steps, cfg.optim.max_steps, cfg.optim.power))
    start = 0
    run = RunFolder(cfg.run.output_dir)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = load_state(Path(folder), model, opt, sched, fingerprint)
    elif config.get("resume_from"):
        start = load_state(run.fetch_dir(config["resume_from"]), model, opt, sched, fingerprint)
    restored = start > 0
    if restored and rank:  # the checkpoint holds rank 0's RNG streams; other ranks get their own, reproducibly
        torch.manual_seed(cfg.run.seed + rank + start)
        model.generator.manual_seed(cfg.run.seed + rank + start)
    if rank == 0:
        _truncate_metrics(run.pull("metrics.jsonl"), start)
        run.push("metrics.jsonl")
    train_model = model
    if ctx is not None and ctx.get_world_size() > 1:
        train_model = ray.train.torch.prepare_model(  # the HF pooler is unused with mean pooling
            model, move_to_device=False, parallel_strategy_kwargs={"find_unused_parameters": True})
    pairs = None
    if cfg.validation.every_steps >= 0:
        from msm.train.validate import validation_pairs

        pairs = validation_pairs(cfg)
    writer = _tensorboard(run.work, cfg) if rank == 0 else None
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and cfg.run.bf16
                else contextlib.nullcontext())
    for step in range(start, cfg.optim.max_steps):
        if cfg.run.fail_at_step == step + 1 and not restored:
            if ctx is not None:  # fail only once the controller has committed every reported checkpoint
                ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)
            raise FaultDrill(f"fault drill: run.fail_at_step={step + 1} (rank {rank})")
        t0 = time.perf_counter()
        batch = {k: v.to(device) for k, v in batches[step % len(batches)].items()}
        with autocast:
            output = train_model(batch)
        opt.zero_grad(set_to_none=True)
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        sec = time.perf_counter() - t0
        done = step + 1 == cfg.optim.max_steps
        metrics = {"step": step + 1, "loss": output.loss.item(), "doc_loss": output.doc_loss.item(),
                   "mlm_loss": output.mlm_loss.item() if output.mlm_loss is not None else None,
                   "acc_same_doc": output.acc_same_doc.item(), "acc_other_doc": output.acc_other_doc.item(),
                   "lr": sched.get_last_lr()[0], "sentences_per_s": int(batch["sentence_mask"].sum()) / sec,
                   "tokens_per_s": int(batch["attention_mask"].sum()) / sec, "step_s": sec,
                   "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "time": time.time()}
        every = cfg.validation.every_steps
        if pairs is not None and (done or (every > 0 and (step + 1) % every == 0)):
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
        if rank == 0 and (save or "val_score" in metrics or (step + 1) % cfg.run.report_every == 0):
            run.push("metrics.jsonl", "tensorboard")
        if ctx is not None:
            if save:
                with tempfile.TemporaryDirectory() as tmp:
                    if rank == 0:
                        save_state(Path(tmp), model, opt, sched, step + 1, cfg, fingerprint)
                    ray.train.report(metrics,
                                     checkpoint=ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None)
            elif "val_score" in metrics or (step + 1) % cfg.run.report_every == 0:
                ray.train.report(metrics)  # a report waits for the Train controller's poll (2 s by default)
        elif save:
            save_local(run, model, opt, sched, step + 1, cfg, fingerprint)
    if writer is not None:
        writer.close()
        run.push("metrics.jsonl", "tensorboard")


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


def save_state(folder: Path, model: MSMModel, opt, sched, step: int, cfg: PretrainConfig, fingerprint: str) -> None:
    """Model as safetensors (``MSMModel.save``; includes the memory bank), optimiser/scheduler/RNG tensors for
    ``torch.load(weights_only=True)``, and ``trainer_state.json`` (step, config, data fingerprint, code version)."""
    model.save(folder / "model")
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(), "model_rng": model.generator.get_state()},
               folder / "optimizer.pt")
    (folder / STATE_FILE).write_text(json.dumps({"step": step, "config": to_dict(cfg), "fingerprint": fingerprint,
                                                 "code_version": code_version()}, indent=2))


def save_local(run: RunFolder, model, opt, sched, step: int, cfg: PretrainConfig, fingerprint: str) -> str:
    """Without Ray: ``checkpoints/step-NNNNNN`` of the run, written in a temp folder and published with its
    ``trainer_state.json`` last (:meth:`RunFolder.put_dir`); keeps the newest ``run.keep_checkpoints``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:06d}-", dir=run.work if not run.remote else None))
    save_state(tmp, model, opt, sched, step, cfg, fingerprint)
    name = f"checkpoints/step-{step:06d}"
    run.put_dir(tmp, name, STATE_FILE)
    for old in run.folders("checkpoints", "step-", STATE_FILE)[: -cfg.run.keep_checkpoints]:
        run.delete(old)
    return name


def load_state(folder: Path, model: MSMModel, opt, sched, fingerprint: str | None = None) -> int:
    """Restore everything :func:`save_state` wrote; returns the step to continue from."""
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
    return step


def latest_checkpoint(run: RunFolder) -> str | None:
    """The newest complete ``checkpoints/step-*`` of a run without Ray (a name inside the run), or None."""
    found = run.folders("checkpoints", "step-", STATE_FILE)
    return found[-1] if found else None


def latest_local_checkpoint(out: Path) -> Path | None:
    """The same for a local run folder, as a path."""
    name = latest_checkpoint(RunFolder(out))
    return Path(out) / name if name else None
