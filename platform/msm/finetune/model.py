"""The bi-encoder, its loss and the trainer, all sentence-transformers: our config mapped onto the library.

- model: ``Transformer`` (``query_length`` / ``document_length`` as the max lengths) → ``Pooling`` (mean/cls) →
  ``Normalize``; with ``towers: separate`` the first two are duplicated into a ``Router.for_query_document``
  (query route, document route), the asymmetric DPR setting.
- loss: ``MultipleNegativesRankingLoss`` (in-batch softmax over cosine × ``scale``; extra columns are hard
  negatives; ``gather_across_devices``: negatives from every worker) or its GradCache twin
  ``CachedMultipleNegativesRankingLoss`` for batches that do not fit.
- trainer: ``SentenceTransformerTrainer`` with prompts (the query/passage prefixes) and a Router mapping per column
  (``anchor`` → query, the rest → document), which also selects each column's max length.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from msm.encoders.resolve import read_model_meta, resolve_model
from msm.encoders.st_export import write_sentence_transformers_folder
from msm.errors import MSMError

log = logging.getLogger(__name__)


@dataclass
class Encoding:
    """What the encoder folder and the config decide together."""

    path: str
    pooling: str
    query_prefix: str
    passage_prefix: str


def encoding(cfg) -> Encoding:
    path = resolve_model(cfg.model.encoder)
    if not Path(path).is_dir():
        raise MSMError(f"model.encoder {cfg.model.encoder}: not found locally and hub downloads are off; pass an HF "
                       "model folder, an `msm pretrain` export/, 'e5-small' or 'tiny-random'")
    meta = read_model_meta(path)
    m = cfg.model
    return Encoding(path, m.pooling or meta["pooling"],
                    meta["query_prefix"] if m.query_prefix is None else m.query_prefix,
                    meta["passage_prefix"] if m.passage_prefix is None else m.passage_prefix)


def build_model(cfg, enc: Encoding | None = None, device: str | None = None):
    from sentence_transformers import SentenceTransformer  # lazy: sentence_transformers
    from sentence_transformers.base.modules import Normalize, Router, Transformer  # lazy: sentence_transformers
    from sentence_transformers.sentence_transformer.modules import Pooling  # lazy: sentence_transformers

    enc = enc or encoding(cfg)
    m = cfg.model

    def tower() -> list:
        t = Transformer(enc.path, max_seq_length=max(m.query_max_length, m.passage_max_length),
                        query_length=m.query_max_length, document_length=m.passage_max_length)
        return [t, Pooling(t.get_embedding_dimension(), enc.pooling)]

    if m.towers == "shared":
        modules = [*tower(), Normalize()]
    else:
        modules = [Router.for_query_document(query_modules=tower(), document_modules=tower()), Normalize()]
    prompts = {k: v for k, v in (("query", enc.query_prefix), ("document", enc.passage_prefix)) if v}
    return SentenceTransformer(modules=modules, prompts=prompts or None, similarity_fn_name="cosine", device=device)


def build_loss(cfg, model):
    import torch.distributed as dist  # lazy: torch
    from sentence_transformers.sentence_transformer.losses import (  # lazy: sentence_transformers
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    t = cfg.train
    gather = t.gather_across_devices and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if t.loss == "cached_mnrl":
        return CachedMultipleNegativesRankingLoss(model, scale=t.scale, mini_batch_size=t.mini_batch_size,
                                                  gather_across_devices=gather)
    return MultipleNegativesRankingLoss(model, scale=t.scale, gather_across_devices=gather)


def column_roles(cfg) -> dict[str, str]:
    from msm.finetune.data import columns  # lazy: pyarrow

    return {c: ("query" if c == "anchor" else "document") for c in columns(cfg)}


def training_arguments(cfg, output_dir: str | Path, max_steps: int | None = None, in_process: bool = True):
    """``SentenceTransformerTrainingArguments`` for ``cfg``; ``max_steps`` overrides (a stream has no length)."""
    import torch  # lazy: torch
    from sentence_transformers import SentenceTransformerTrainingArguments  # lazy: sentence_transformers
    from sentence_transformers.base.sampler import BatchSamplers  # lazy: sentence_transformers

    t, enc = cfg.train, encoding(cfg)
    roles = column_roles(cfg)
    prompts = {c: (enc.query_prefix if r == "query" else enc.passage_prefix) for c, r in roles.items()}
    prompts = {c: p for c, p in prompts.items() if p}
    steps = max_steps if max_steps is not None else t.max_steps
    gpu = cfg.run.use_gpu and torch.cuda.is_available()
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=t.batch_size, num_train_epochs=t.epochs,
        # warmup as a ratio: transformers >= 5 (pyproject pins it) reads a float below 1 as one
        max_steps=steps, learning_rate=t.lr, warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm, lr_scheduler_type=t.scheduler, seed=t.seed, data_seed=t.seed,
        bf16=t.bf16 and gpu, use_cpu=not gpu, logging_steps=t.logging_steps, save_strategy="steps",
        save_steps=t.save_steps, save_total_limit=cfg.run.keep_checkpoints, report_to="none", disable_tqdm=True,
        dataloader_drop_last=True,  # equal batches on every worker: gather_across_devices needs them
        batch_sampler=BatchSamplers.NO_DUPLICATES if cfg.data.dedupe and in_process else BatchSamplers.BATCH_SAMPLER,
        prompts=prompts or None, router_mapping=roles, eval_strategy="no",
    )


def build_trainer(cfg, model, args, train_dataset=None, callbacks: list | None = None):
    from sentence_transformers import SentenceTransformerTrainer  # lazy: sentence_transformers

    return SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset,
                                      loss=build_loss(cfg, model), callbacks=callbacks or [])


def save_exports(cfg, model, out) -> None:
    """``export/`` (HF folder + msm_model.json, what ``msm eval`` and ``msm pretrain`` read) and ``export-st/`` of
    the run ``out`` (a :class:`msm.run_folder.RunFolder`, or its local path), each built in a scratch folder and
    published complete (:meth:`~msm.run_folder.RunFolder.put_dir`: a rename locally, marker file last at a URI).

    Shared towers: the HF folder is the fine-tuned encoder and ``export-st/`` is written by
    :func:`msm.encoders.st_export.write_sentence_transformers_folder`, as after pretraining. Separate towers:
    ``export/query`` and ``export/passage`` (one HF folder each) and ``export-st/`` saved by sentence-transformers
    itself (a Router model: ``encode_query`` / ``encode_document``).
    """
    from msm.run_folder import RunFolder  # lazy: pyarrow

    run = out if isinstance(out, RunFolder) else RunFolder(out)
    enc = encoding(cfg)
    tmp = run.scratch(".export-")
    export, st_dir = tmp / "export", tmp / "export-st"
    meta = {"pooling": enc.pooling, "query_prefix": enc.query_prefix, "passage_prefix": enc.passage_prefix,
            "source": f"msm finetune of {cfg.model.encoder}"}

    def write_hf(transformer, folder: Path) -> None:
        transformer.auto_model.save_pretrained(folder, safe_serialization=True)
        transformer.tokenizer.save_pretrained(folder)
        (folder / "msm_model.json").write_text(json.dumps(meta, indent=2) + "\n")

    first = model[0]
    if cfg.model.towers == "shared":
        write_hf(first, export)
        write_sentence_transformers_folder(export, st_dir, overwrite=True)
        hf_marker = "config.json"
    else:
        write_hf(first.sub_modules["query"][0], export / "query")
        write_hf(first.sub_modules["document"][0], export / "passage")
        model.save(str(st_dir), safe_serialization=True)
        hf_marker = "passage/config.json"
    run.put_dir(st_dir, "export-st", "modules.json")
    run.put_dir(export, "export", hf_marker)
    shutil.rmtree(tmp, ignore_errors=True)
