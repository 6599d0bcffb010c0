"""``MSMModel``: Masked Sentence Model (Zhu et al., ICLR 2023). The module owns its loss.

Per step: every real sentence of every document block is encoded once by the sentence encoder; then for each
predicted position the document encoder sees the block with that sentence replaced by a mask embedding, and
its output there (projected) must pick out the sentence's own (projected) vector against same-document,
other-document and memory-bank negatives (``losses/hierarchical_contrastive.py``). MLM may run jointly.

**Data-parallel training (DDP).** What each rank sees, as the reference's pretraining run (``run_msm.sh``: no
``--enable-cross-gpu``, ``--ddp-backend=no_c10d``):

* *Memory bank: global.* The bank's ``enqueue`` all-gathers the targets and languages of every rank and writes
  them in rank order (``losses/memory_bank.py``), so every rank's bank is identical and holds the keys of the
  whole global batch of earlier steps, the reference's ``MultiTaskGather`` → ``EmbeddingQueue``.
* *In-batch (same- and other-document) negatives: per rank.* A query scores its own rank's targets only. Adding
  other ranks' current targets would cost one more all-gather in the middle of every forward (before the loss)
  and a [Q, world·K] logit matrix, and would still not equal a single
  process over the concatenated batch: the gathered keys carry no gradient (``all_gather`` is not
  differentiable), the balance correction's other-document mean would change with the world size, and the
  projection heads' BatchNorm normalises with per-rank batch statistics anyway. Those keys reach every rank's
  bank one step later, where they count as same-language negatives — what the reference does by default.
* *BatchNorm (projection heads): per rank,* batch statistics of the rank's own batch in training, as the
  reference (plain ``BatchNorm1d``, no SyncBatchNorm). Their running statistics are only used in eval mode, which
  neither the loss, validation (sentence encoder only) nor the export (sentence encoder only) uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from msm.config import config_from_dict, to_dict
from msm.encoders.resolve import read_model_meta, resolve_model
from msm.errors import MSMError
from msm.io import atomic_dir
from msm.losses.hierarchical_contrastive import hierarchical_contrastive_loss
from msm.losses.memory_bank import LanguageMemoryBank
from msm.losses.mlm import mask_tokens, mlm_loss
from msm.model.config import MSMModelConfig
from msm.model.document_encoder import DocumentEncoder
from msm.model.heads import ProjectionHead
from msm.model.sentence_encoder import SentenceEncoder

WEIGHTS_FILE = "msm_state.safetensors"  # the model's tensors (a checkpoint's trainer state is msm.train.loop.STATE_FILE)
CONFIG_FILE = "msm_config.json"


@dataclass
class MSMOutput:
    loss: torch.Tensor
    doc_loss: torch.Tensor
    mlm_loss: torch.Tensor | None
    acc_same_doc: torch.Tensor
    acc_other_doc: torch.Tensor
    num_predictions: int
    predictions: torch.Tensor  # [Q, D] projected, normalised
    targets: torch.Tensor  # [K, D] projected, normalised keys of all real sentences
    positions: torch.Tensor  # [Q, 2] (document, sentence) of each prediction


class MSMModel(nn.Module):
    def __init__(self, cfg: MSMModelConfig, encoder_path: str | Path) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder_path = Path(encoder_path)
        self.sentence_encoder = SentenceEncoder(encoder_path, cfg.pooling, with_mlm_head=cfg.mlm_weight > 0)
        if cfg.gradient_checkpointing:
            self.sentence_encoder.model.gradient_checkpointing_enable()
        hidden = self.sentence_encoder.hidden_size
        proj = cfg.proj_dim or hidden
        self.document_encoder = (
            DocumentEncoder(hidden, cfg.doc_layers, cfg.doc_heads, cfg.doc_ffn, cfg.max_sentences, cfg.dropout)
            if cfg.doc_encoder else None
        )
        self.prediction_head = ProjectionHead(hidden, proj)
        self.target_head = ProjectionHead(hidden, proj)
        self.memory_bank = LanguageMemoryBank(cfg.memory_bank_size, proj)
        tok = self.sentence_encoder.tokenizer
        self.mask_token_id = tok.mask_token_id
        self.special_ids = torch.tensor(sorted(set(tok.all_special_ids)), dtype=torch.long)
        self.generator = torch.Generator().manual_seed(0)

    @classmethod
    def from_config(cls, cfg: MSMModelConfig, resolver: Callable[[str], str] | None = None) -> MSMModel:
        return cls(cfg, (resolver or resolve_model)(cfg.encoder))

    def seed(self, seed: int) -> None:
        """Seed the sampling of masked positions, cross-doc negatives and MLM tokens."""
        self.generator.manual_seed(seed)

    # ---- forward -------------------------------------------------------------------------------------------
    def _choose_positions(self, sentence_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts = sentence_mask.sum(1)
        if (counts == 0).any():
            row = int((counts == 0).nonzero()[0])
            raise MSMError(
                f"batch document {row} has zero sentences (sentence_mask all False); drop empty documents "
                "before batching (the data pipeline quarantines them)"
            )
        if self.cfg.mask_ratio >= 1.0:
            return sentence_mask.nonzero(as_tuple=True)
        docs, pos = [], []
        for b, n in enumerate(counts.tolist()):
            k = max(1, round(self.cfg.mask_ratio * n))
            valid = sentence_mask[b].nonzero(as_tuple=True)[0]
            pick = valid[torch.randperm(n, generator=self.generator)[:k].to(valid.device)]
            docs.append(torch.full_like(pick, b))
            pos.append(pick.sort().values)
        return torch.cat(docs), torch.cat(pos)

    def forward(self, batch: dict[str, torch.Tensor], update_memory: bool | None = None) -> MSMOutput:
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        sentence_mask, lang = batch["sentence_mask"].bool(), batch["lang"]
        bsz, n_sent, _ = input_ids.shape
        if n_sent > self.cfg.max_sentences:
            raise MSMError(f"batch has {n_sent} sentences per document, model max_sentences is "
                           f"{self.cfg.max_sentences}; cut blocks to max_sentences")
        doc_index, position = self._choose_positions(sentence_mask)

        flat_ids, flat_mask = input_ids[sentence_mask], attention_mask[sentence_mask]  # [K, T]
        labels = None
        if self.cfg.mlm_weight > 0 and self.training:
            special = torch.isin(flat_ids, self.special_ids.to(flat_ids.device))
            flat_ids, labels = mask_tokens(flat_ids, flat_mask, special, self.mask_token_id,
                                           self.sentence_encoder.model.config.vocab_size,
                                           self.cfg.mlm_probability, self.generator)
        masked = labels != -100 if labels is not None else None
        vectors, mlm_logits = self.sentence_encoder(flat_ids, flat_mask, masked,  # [K, H], [M, V] at masked
                                                    self.cfg.length_buckets)
        sentences = vectors.new_zeros(bsz, n_sent, vectors.shape[-1])
        sentences[sentence_mask] = vectors

        if self.document_encoder is not None:
            context = self.document_encoder(sentences, sentence_mask, doc_index, position)
        else:  # ablation: mean of the other sentences of the document, no sequence model
            total = sentences.sum(1)[doc_index] - sentences[doc_index, position]
            context = total / (sentence_mask.sum(1)[doc_index] - 1).clamp(min=1).unsqueeze(-1)

        predictions = self.prediction_head(context)
        targets = self.target_head(vectors)
        key_doc = sentence_mask.nonzero(as_tuple=True)[0]
        # index of each (doc, position) among the flattened real sentences
        flat_index = torch.cumsum(sentence_mask.flatten().long(), 0) - 1
        positive = flat_index[doc_index * n_sent + position]
        keep = None
        k_neg = self.cfg.num_cross_doc_negatives
        if k_neg is not None:
            other = doc_index[:, None] != key_doc[None, :]
            score = torch.rand(other.shape, generator=self.generator).to(other.device).masked_fill(~other, -1.0)
            top = score.topk(min(k_neg, score.shape[1]), dim=1).indices
            keep = torch.zeros_like(other).scatter_(1, top, True) & other
        bank_keys, bank_langs = self.memory_bank.ordered() if self.cfg.memory_bank_size else (None, None)
        result = hierarchical_contrastive_loss(
            predictions, targets, positive, doc_index, key_doc,
            temperature=self.cfg.temperature, balance_bias=self.cfg.balance_bias,
            query_lang=lang[doc_index], bank_keys=bank_keys, bank_langs=bank_langs, cross_doc_keep=keep,
        )
        mlm = mlm_loss(mlm_logits, labels[masked]) if labels is not None else None
        loss = self.cfg.doc_weight * result.loss + (self.cfg.mlm_weight * mlm if mlm is not None else 0.0)
        if (self.training if update_memory is None else update_memory) and self.cfg.memory_bank_size:
            self.memory_bank.enqueue(targets.detach(), lang[key_doc])
        return MSMOutput(loss=loss, doc_loss=result.loss, mlm_loss=mlm, acc_same_doc=result.acc_same_doc,
                         acc_other_doc=result.acc_other_doc, num_predictions=int(doc_index.shape[0]),
                         predictions=predictions, targets=targets, positions=torch.stack([doc_index, position], 1))

    # ---- persistence ---------------------------------------------------------------------------------------
    def msm_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the sentence encoder (which saves as a plain HF folder)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("sentence_encoder.")}

    def export_encoder(self, out_dir: str | Path) -> Path:
        """The sentence encoder as a plain HF folder (+ ``msm_model.json`` with its pooling)."""
        out_dir = Path(out_dir)
        with atomic_dir(out_dir, overwrite=True) as tmp:
            self._write_encoder(tmp)
        return out_dir

    def _write_encoder(self, folder: Path) -> None:
        self.sentence_encoder.save(folder)
        meta = read_model_meta(self.encoder_path) if self.encoder_path.is_dir() else {}
        meta.update(pooling=self.cfg.pooling)
        (folder / "msm_model.json").write_text(json.dumps(meta, indent=2))

    def save(self, out_dir: str | Path) -> Path:
        """``encoder/`` (HF folder), ``msm_state.safetensors`` (document encoder, heads, memory bank), config JSON."""
        from safetensors.torch import save_file  # lazy: safetensors

        out_dir = Path(out_dir)
        with atomic_dir(out_dir, overwrite=True) as tmp:
            self._write_encoder(tmp / "encoder")
            state = {k: v.detach().cpu().contiguous() for k, v in self.msm_state_dict().items()}
            save_file(state, str(tmp / WEIGHTS_FILE))
            (tmp / CONFIG_FILE).write_text(json.dumps(to_dict(self.cfg), indent=2))
        return out_dir

    @classmethod
    def load(cls, path: str | Path) -> MSMModel:
        """Load a directory written by :meth:`save` (safetensors + JSON only; nothing is unpickled)."""
        from safetensors import SafetensorError  # lazy: safetensors
        from safetensors.torch import load_file  # lazy: safetensors

        path = Path(path)
        cfg_file, state_file = path / CONFIG_FILE, path / WEIGHTS_FILE
        for f in (cfg_file, state_file, path / "encoder" / "config.json"):
            if not f.is_file():
                raise MSMError(f"{f}: missing from MSM checkpoint {path}; pass a directory written by MSMModel.save")
        try:
            cfg = config_from_dict(json.loads(cfg_file.read_text()), MSMModelConfig, str(cfg_file))
        except json.JSONDecodeError as exc:
            raise MSMError(f"{cfg_file}: corrupt JSON ({exc}); re-save the checkpoint") from exc
        try:
            state = load_file(str(state_file))
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise MSMError(f"{state_file}: corrupt safetensors file ({exc}); use an intact checkpoint") from exc
        model = cls(cfg, path / "encoder")
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("sentence_encoder.")]
        if missing or unexpected:
            raise MSMError(f"{state_file}: does not match the model (missing {missing[:3]}, unexpected "
                           f"{unexpected[:3]}); was it saved with another msm_config.json?")
        return model
