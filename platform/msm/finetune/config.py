"""Typed fine-tuning config (YAML in ``configs/finetune/``), mapped onto sentence-transformers' training arguments.

Only what is ours is here: which encoder and towers, which reader, and the Ray Train run. Everything else is a
field of ``SentenceTransformerTrainingArguments`` (:func:`msm.finetune.model.training_arguments` maps it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from msm.run_settings import RunSettings

FORMATS = ("squad", "tevatron", "pairs", "mewsli_x")


@dataclass
class FinetuneModel:
    encoder: str = "e5-small"  # HF folder / hub id, 'e5-small', 'tiny-random', or an `msm pretrain` run's export/
    towers: Literal["shared", "separate"] = "shared"  # separate: a query and a passage copy (ST Router)
    pooling: Literal["mean", "cls"] | None = None  # None: the encoder's msm_model.json, else mean
    query_prefix: str | None = None  # None: the encoder's msm_model.json (e5: "query: ")
    passage_prefix: str | None = None  # None: the encoder's msm_model.json (e5: "passage: ")
    query_max_length: int = 64  # tokens, prefix included
    passage_max_length: int = 256  # tokens; a (sentence, context) pair is truncated longest-first

    def __post_init__(self) -> None:
        if self.query_max_length < 4 or self.passage_max_length < 4:
            raise ValueError("query_max_length and passage_max_length must be >= 4 tokens")


@dataclass
class FinetuneData:
    format: Literal["squad", "tevatron", "pairs", "mewsli_x"] = "pairs"
    path: str = ""  # a file, a folder of them, or a URI (s3://, gs://, file://)
    with_context: bool = True  # squad: the positive is (answer sentence, paragraph), as LAReQA; False: the sentence
    hard_negatives: int = 0  # tevatron / pairs: negatives per example, as extra columns (0: in-batch only)
    language: str = "en"  # squad: sentence splitting for paragraphs without sentence_breaks
    max_examples: int | None = None  # first N examples (quick runs)
    dedupe: bool = True  # drop an example whose query or positive already occurs in its batch (false negatives)
    shuffle_buffer: int = 10000  # under Ray: rows in each worker's seeded local shuffle (in process: a full shuffle)

    def __post_init__(self) -> None:
        if self.hard_negatives < 0:
            raise ValueError("hard_negatives must be >= 0")
        if self.shuffle_buffer < 0:
            raise ValueError("shuffle_buffer must be >= 0 (0: file order)")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError("max_examples must be >= 1 or null")


@dataclass
class FinetuneTrain:
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"  # cached: GradCache, for batches larger than memory
    scale: float = 20.0  # logits = cos * scale (scale = 1 / temperature)
    gather_across_devices: bool = True  # in-batch negatives from every worker (DDP)
    mini_batch_size: int = 32  # cached_mnrl: the chunk size of its forward passes
    batch_size: int = 32  # per worker
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs (under Ray Data a stream has no length: derived from the row count)
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    scheduler: str = "linear"
    seed: int = 0
    bf16: bool = True  # on GPU only
    logging_steps: int = 10
    save_steps: int = 500

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (in-batch negatives need a second example)")
        if self.lr <= 0 or self.scale <= 0 or self.epochs <= 0:
            raise ValueError("need lr > 0, scale > 0 and epochs > 0")
        if self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("save_steps and logging_steps must be >= 1")


@dataclass
class FinetuneRun(RunSettings):
    """The shared run settings (:class:`msm.run_settings.RunSettings`); ``fail_at_step`` is the fault drill (it was
    ``train.fail_at_step``)."""

    output_dir: str = "outputs/finetune"
    name: str = "finetune"


@dataclass
class FinetuneConfig:
    MOVED: ClassVar[dict[str, str]] = {"train.fail_at_step": "run.fail_at_step"}  # a key that moved names its place
    model: FinetuneModel = field(default_factory=FinetuneModel)
    data: FinetuneData = field(default_factory=FinetuneData)
    train: FinetuneTrain = field(default_factory=FinetuneTrain)
    run: FinetuneRun = field(default_factory=FinetuneRun)
