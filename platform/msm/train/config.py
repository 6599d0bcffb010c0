"""Typed pretraining config (YAML in ``configs/pretrain/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from msm.model.config import MSMModelConfig


@dataclass
class DataConfig:
    source: Literal["ntrex", "bible"] = "ntrex"  # real multilingual documents
    data_dir: str | None = None  # folder holding ntrex/ (default: $MSM_DATA_DIR or ../shared/data)
    max_docs_per_lang: int = 8
    docs_per_batch: int = 4
    single_language_batches: bool = True  # as the reference; False mixes languages in a batch


@dataclass
class OptimConfig:
    lr: float = 4e-5
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_steps: int = 10
    max_steps: int = 100
    power: float = 1.0  # polynomial decay power (1 = linear)
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.warmup_steps < 0 or self.lr <= 0:
            raise ValueError("need max_steps >= 1, warmup_steps >= 0, lr > 0")


@dataclass
class RunConfig:
    output_dir: str = "outputs/pretrain"
    name: str = "msm"
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    max_failures: int = 0
    seed: int = 0


@dataclass
class PretrainConfig:
    model: MSMModelConfig = field(default_factory=MSMModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
