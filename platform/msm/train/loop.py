"""The per-worker training loop. Plain PyTorch; Ray Train's context is used only when present."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch

from msm.config import config_from_dict
from msm.errors import MSMError
from msm.model.batching import blocks, collate
from msm.model.msm import MSMModel
from msm.model.smoke import default_data_dir, load_documents
from msm.train.config import PretrainConfig
from msm.train.schedule import lr_factor


def build_batches(cfg: PretrainConfig, tokenizer) -> list[dict[str, torch.Tensor]]:
    """Real documents → sentence blocks → batches (single-language or mixed)."""
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else default_data_dir()
    if cfg.data.source == "bible":
        data_dir = None
    docs, langs, _ = load_documents(data_dir, cfg.data.max_docs_per_lang)
    m = cfg.model
    items = [(blk, lang) for doc, lang in zip(docs, langs) for blk in blocks(doc, m.max_sentences)]
    if not items:
        raise MSMError("empty dataset: no document had 2 or more sentences; check data.source / data.data_dir")
    lang_ids = {lang: i for i, lang in enumerate(sorted({lang for _, lang in items}))}
    groups = ([[it for it in items if it[1] == lang] for lang in sorted(lang_ids)]
              if cfg.data.single_language_batches else [items])
    n = cfg.data.docs_per_batch
    batches = [collate([b for b, _ in g[i:i + n]], [lang_ids[lang] for _, lang in g[i:i + n]], tokenizer,
                       m.max_sentences, m.max_tokens)
               for g in groups for i in range(0, len(g) - n + 1, n)]
    if not batches:
        raise MSMError(f"empty dataset: fewer than docs_per_batch={n} blocks per batch group")
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(cfg.run.seed))
    return [batches[i] for i in order.tolist()]


def _ray_context():
    try:
        import ray.train

        return ray.train.get_context()
    except Exception:  # not inside a Ray Train worker
        return None


def train_loop(config: dict) -> None:
    """Train MSM. ``config`` is a PretrainConfig as a dict (Ray passes it to every worker)."""
    cfg = config_from_dict(config, PretrainConfig, "pretrain config")
    ctx = _ray_context()
    rank = ctx.get_world_rank() if ctx else 0
    torch.manual_seed(cfg.run.seed + rank)
    model = MSMModel.from_config(cfg.model)
    model.seed(cfg.run.seed + rank)
    batches = build_batches(cfg, model.sentence_encoder.tokenizer)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                            weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.optim.warmup_steps, cfg.optim.max_steps, cfg.optim.power))
    start = 0
    checkpoint = None
    if ctx is not None:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = load_state(Path(folder), model, opt, sched)
    if ctx is not None and ctx.get_world_size() > 1:
        import ray.train.torch

        train_model = ray.train.torch.prepare_model(model, move_to_device=False)
    else:
        train_model = model
    out = Path(cfg.run.output_dir)
    for step in range(start, cfg.optim.max_steps):
        t0 = time.perf_counter()
        batch = batches[step % len(batches)]
        output = train_model(batch)
        opt.zero_grad(set_to_none=True)
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        sec = time.perf_counter() - t0
        n_sent = int(batch["sentence_mask"].sum())
        metrics = {"step": step + 1, "loss": output.loss.item(), "doc_loss": output.doc_loss.item(),
                   "mlm_loss": output.mlm_loss.item() if output.mlm_loss is not None else None,
                   "acc_same_doc": output.acc_same_doc.item(), "acc_other_doc": output.acc_other_doc.item(),
                   "lr": sched.get_last_lr()[0], "sentences_per_s": n_sent / sec,
                   "tokens_per_s": int(batch["attention_mask"].sum()) / sec}
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(metrics) + "\n")
        done = step + 1 == cfg.optim.max_steps
        if ctx is None:
            continue
        import ray.train

        if done or (step + 1) % cfg.run.checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as tmp:
                if rank == 0:
                    save_state(Path(tmp), model, opt, sched, step + 1, cfg)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None)
        else:
            ray.train.report(metrics)
    if ctx is None:
        save_state(out / "final", model, opt, sched, cfg.optim.max_steps, cfg)


def save_state(folder: Path, model: MSMModel, opt, sched, step: int, cfg: PretrainConfig) -> None:
    """Model as safetensors (``MSMModel.save``) + optimiser/scheduler tensors for ``torch.load(weights_only=True)``."""
    from msm.config import to_dict

    model.save(folder / "model")
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, folder / "optimizer.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"step": step, "config": to_dict(cfg),
                                                            "pid": os.getpid()}, indent=2))


def load_state(folder: Path, model: MSMModel, opt, sched) -> int:
    state_file = folder / "trainer_state.json"
    if not state_file.is_file():
        raise MSMError(f"{folder}: not a pretraining checkpoint (no trainer_state.json)")
    loaded = MSMModel.load(folder / "model")
    model.load_state_dict(loaded.state_dict())
    try:
        opt_state = torch.load(folder / "optimizer.pt", weights_only=True)
    except Exception as exc:
        raise MSMError(f"{folder / 'optimizer.pt'}: unreadable optimiser state ({exc}); use an intact checkpoint") from exc
    opt.load_state_dict(opt_state["optimizer"])
    sched.load_state_dict(opt_state["scheduler"])
    return int(json.loads(state_file.read_text())["step"])
