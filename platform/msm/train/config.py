"""Typed pretraining config (YAML in ``configs/pretrain/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from msm.model.config import MSMModelConfig
from msm.run_settings import RunSettings


@dataclass
class PretrainData:
    """Where the training documents come from and how they are batched (``msm.train.corpus``, ``msm.train.stream``).

    Sources: ``text`` (one sentence per line, a blank line between documents, one language per file: CC-100's
    ``xx.txt``), ``jsonl`` / ``parquet`` (``id``, ``text`` [, ``lang``]; split into sentences by the mining
    segmenter), ``mined`` (an ``msm mine`` output), ``ntrex`` / ``bible`` (small real corpora for tests and demos).
    ``path`` is a file, a folder or a URI (``s3://``, ``gs://``, ``file://``)."""

    source: Literal["text", "jsonl", "parquet", "mined", "ntrex", "bible"] = "ntrex"
    data_dir: str | None = None  # folder holding ntrex/ (default: $MSM_DATA_DIR or ../shared/data)
    path: str | None = None  # text / jsonl / parquet: the corpus; mined: the output_dir of `msm mine`
    lang: str | None = None  # text / jsonl / parquet: every document's language (default: the record's `lang`,
    #                          for text the file's stem, else language ID)
    langid: bool = True  # text / jsonl / parquet: fastText language ID (fills missing languages; a document whose
    #                      declared language disagrees is quarantined, as in mining)
    languages: list[str] = field(default_factory=list)  # keep only these (NTREX tags / Bible codes / ISO codes)
    max_docs_per_lang: int | None = None  # the first N documents of each language (null: all)
    docs_per_batch: int = 4
    single_language_batches: bool = True  # as the reference; False mixes languages in a batch
    shuffle_buffer: int = 1024  # blocks in each worker's seeded shuffle buffer (reshuffled every epoch)
    corpus_dir: str | None = None  # where the tokenised corpus goes (default <run.output_dir>/corpus; a sweep's
    #                                trials share one)
    cross_lingual: float = 0.0  # our variant (source "mined"): add code-switched copies, P(switch a sentence)

    def __post_init__(self) -> None:
        if self.docs_per_batch < 1 or (self.max_docs_per_lang is not None and self.max_docs_per_lang < 1):
            raise ValueError("need docs_per_batch >= 1 and max_docs_per_lang >= 1 (or null)")
        if self.shuffle_buffer < 1:
            raise ValueError("shuffle_buffer must be >= 1 (1: no shuffling)")
        if not 0.0 <= self.cross_lingual <= 1.0:
            raise ValueError("cross_lingual must be in [0, 1]")
        if self.cross_lingual > 0 and self.source != "mined":
            raise ValueError("cross_lingual needs source: mined (it code-switches through the mined alignments)")


@dataclass
class ValidationConfig:
    """Held-out cross-lingual sentence retrieval (``msm.train.validate``), reported as ``val_score``."""

    every_steps: int = 0  # 0 = only at the end; < 0 = never
    source: Literal["ntrex", "bible"] = "ntrex"  # NTREX documents from the end / Old Testament chapters
    languages: list[str] = field(default_factory=lambda: ["deu", "rus", "zho-CN"])  # bible: codes, e.g. [s, r, c]
    docs: int = 8  # NTREX documents from the end of the file
    max_sentences: int = 128  # per language


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
    accumulate: int = 1  # micro-batches per optimiser step (the reference's --update-freq): step s uses batches
    #                      s·accumulate … s·accumulate + accumulate − 1; the bank enqueues every micro-batch

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.warmup_steps < 0 or self.lr <= 0:
            raise ValueError("need max_steps >= 1, warmup_steps >= 0, lr > 0")
        if self.accumulate < 1:
            raise ValueError("optim.accumulate must be >= 1 (micro-batches per optimiser step)")


@dataclass
class PretrainRun(RunSettings):
    """The shared run settings (:class:`msm.run_settings.RunSettings`) plus pretraining's own."""

    output_dir: str = "outputs/pretrain"
    name: str = "msm"
    checkpoint_every: int = 50
    report_every: int = 10  # ray.train.report cadence besides checkpoint and validation steps (each report waits
    #                         for the Train controller's poll; metrics.jsonl still gets every step)
    seed: int = 0
    bf16: bool = True  # autocast on GPU (ignored on CPU)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.checkpoint_every < 1 or self.report_every < 1:
            raise ValueError("need checkpoint_every >= 1 and report_every >= 1")


@dataclass
class PretrainConfig:
    model: MSMModelConfig = field(default_factory=MSMModelConfig)
    data: PretrainData = field(default_factory=PretrainData)
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    run: PretrainRun = field(default_factory=PretrainRun)
