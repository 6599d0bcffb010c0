"""Typed configuration of the MSM model and its loss (every knob a Ray Tune sweep may search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class MSMModelConfig:
    """MSM model + hierarchical contrastive loss. The shape and loss defaults are the paper's (32 sentences × 64
    tokens, a 2-layer document encoder, temperature 0.1, memory bank 4096, balance bias 0.5: configs/pretrain/
    xlmr-base-8gpu.yaml); the encoder default is the offline e5-small, not the paper's XLM-R base."""

    encoder: str = "e5-small"  # alias, local HF folder or hub id
    pooling: Literal["mean", "cls"] = "mean"
    doc_encoder: bool = True  # False: ablation predicting a sentence from the mean of its neighbours
    doc_layers: int = 2
    doc_heads: int | None = None  # default: hidden / 64
    doc_ffn: int | None = None  # default: 4 × hidden
    dropout: float = 0.1
    max_sentences: int = 32  # S: sentences per document block
    max_tokens: int = 64  # T: tokens per sentence
    proj_dim: int | None = None  # default: hidden size
    temperature: float = 0.1
    memory_bank_size: int = 4096  # 0 disables the memory bank
    balance_bias: float = 0.5  # 0 disables the in-doc/cross-doc balance correction
    num_cross_doc_negatives: int | None = None  # None: all other-document sentences of the batch
    mask_ratio: float = 1.0  # fraction of each document's sentences predicted per step (1.0: every one once)
    mlm_weight: float = 0.0  # joint MLM loss weight (0: off)
    doc_weight: float = 1.0  # weight of the masked-sentence loss (0 with mlm_weight > 0: the "MLM only" ablation)
    mlm_probability: float = 0.15
    gradient_checkpointing: bool = False
    length_buckets: int = 6  # sentences encoded in <= this many length groups, each padded to its longest; 0: to T
    #                          (6: 1.64x and 1.75x faster than padding at 4x16x64 and 8x32x64 on CPU, docs/model.md)

    def __post_init__(self) -> None:
        checks = [
            (self.temperature > 0, "temperature must be > 0"),
            (0 < self.mask_ratio <= 1, "mask_ratio must be in (0, 1]"),
            (self.memory_bank_size >= 0, "memory_bank_size must be >= 0"),
            (self.doc_layers >= 1 or not self.doc_encoder, "doc_layers must be >= 1 (or set doc_encoder: false)"),
            (self.max_sentences >= 2, "max_sentences must be >= 2 (a sentence needs neighbours)"),
            (self.max_tokens >= 4, "max_tokens must be >= 4"),
            (self.num_cross_doc_negatives is None or self.num_cross_doc_negatives >= 0,
             "num_cross_doc_negatives must be >= 0 or null"),
            (0 <= self.mlm_probability < 1, "mlm_probability must be in [0, 1)"),
            (self.mlm_weight >= 0, "mlm_weight must be >= 0"),
            (self.doc_weight >= 0 and self.doc_weight + self.mlm_weight > 0,
             "doc_weight must be >= 0, and doc_weight + mlm_weight > 0 (something must be trained)"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.length_buckets >= 0, "length_buckets must be >= 0 (0: pad every sentence to max_tokens)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
