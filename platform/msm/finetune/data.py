"""Examples → the sentence-transformers columns, in process (a ``datasets.Dataset``) or streamed (Ray Data).

Columns in anchor-first order, as ``MultipleNegativesRankingLoss`` reads them: ``anchor`` (the query),
``positive`` (a text, or a [sentence, context] pair), ``negative_1`` … ``negative_n`` (hard negatives).

Under Ray the graph is one chain, and the driver never holds the data::

    read (FinetuneFiles: one task per file, the readers' parsers, path:line errors)
      → limit (max_examples) → randomize_block_order (seeded; one copy per pass, unioned) → one shard per worker
      → iter_torch_batches(local_shuffle_buffer_size, local_shuffle_seed, collate_fn=RayBatches):
        seeded local shuffle, drop in-batch duplicates, ST's own collator tokenises

The sentence-transformers trainer's batch sampler and collator are bypassed by
``ray.train.huggingface.transformers.prepare_trainer``; :class:`RayBatches` calls the trainer's collator itself,
so prompts, the Router mapping and the max lengths apply exactly as in process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pyarrow as pa

from msm.errors import MSMError
from msm.finetune.readers import data_files, file_examples
from msm.runtime import DATA_CPUS
from msm.uri import resolve

log = logging.getLogger(__name__)
EXAMPLE = pa.schema([("query", pa.string()), ("positive", pa.string()), ("context", pa.string()),
                     ("negatives", pa.list_(pa.string()))])
BLOCK_ROWS = 2048


def columns(cfg) -> list[str]:
    """The training columns for ``cfg.data`` (``anchor``, ``positive``, ``negative_1..n``)."""
    return ["anchor", "positive"] + [f"negative_{i + 1}" for i in range(cfg.data.hard_negatives)]


def to_row(ex: dict, with_context: bool, hard_negatives: int) -> dict | None:
    """One example as a training row; None when it has fewer than ``hard_negatives`` negatives."""
    if len(ex["negatives"]) < hard_negatives:
        return None
    row = {"anchor": ex["query"], "positive": [ex["positive"], ex["context"]] if with_context else ex["positive"]}
    for i in range(hard_negatives):
        row[f"negative_{i + 1}"] = ex["negatives"][i]
    return row


def uses_context(cfg) -> bool:
    return cfg.data.format == "squad" and cfg.data.with_context


def rows_from_examples(examples: list[dict], cfg) -> list[dict]:
    rows = [r for r in (to_row(ex, uses_context(cfg), cfg.data.hard_negatives) for ex in examples) if r is not None]
    if len(rows) < len(examples):
        log.warning("dropped %d of %d examples with fewer than %d hard negatives", len(examples) - len(rows),
                    len(examples), cfg.data.hard_negatives)
    if len(rows) < 2:
        raise MSMError(f"{cfg.data.path}: {len(rows)} usable example(s); in-batch negatives need at least 2")
    return rows


def hf_dataset(rows: list[dict]):
    """A ``datasets.Dataset`` of training rows (in-process training)."""
    from datasets import Dataset  # lazy: datasets

    return Dataset.from_list(rows)


def dedupe(rows: list[dict]) -> list[dict]:
    """Keep the first row of each set of rows sharing a text (as ST's NO_DUPLICATES batch sampler decides)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        values = {"\x1f".join(v) if isinstance(v, list) else v for v in row.values()}
        if values.isdisjoint(seen):
            out.append(row)
            seen |= values
    return out


# ---- Ray Data --------------------------------------------------------------------------------------------------

def _datasource_cls():
    from ray.data.datasource import FileBasedDatasource  # lazy: ray

    class FinetuneFiles(FileBasedDatasource):
        """One read task per file; each streams its examples into blocks of :data:`EXAMPLE` rows."""

        def __init__(self, paths, *, data_cfg, filesystem) -> None:
            super().__init__(paths, filesystem=filesystem)
            self.data_cfg = data_cfg

        def _open_input_source(self, filesystem, path: str, **open_args):
            return _FsFile(filesystem, path)  # the readers open the file themselves (Parquet needs random access)

        def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
            rows: list[dict] = []
            for ex in file_examples(f.fs, path, self.data_cfg):
                rows.append(ex)
                if len(rows) >= BLOCK_ROWS:
                    yield pa.Table.from_pylist(rows, schema=EXAMPLE)
                    rows = []
            if rows:
                yield pa.Table.from_pylist(rows, schema=EXAMPLE)

    return FinetuneFiles


class _FsFile:
    def __init__(self, fs, path: str) -> None:
        self.fs, self.path = fs, path

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def close(self) -> None:
        return None


def ray_dataset(cfg):
    """The examples of ``cfg.data`` as a (lazy) Ray Dataset of :data:`EXAMPLE` rows, order fixed by ``train.seed``."""
    import ray.data  # lazy: ray


    loc = resolve(cfg.data.path)
    files = data_files(cfg.data.path, cfg.data.format)  # fails here, on the driver, when there is nothing to read
    ds = ray.data.read_datasource(_datasource_cls()(files, data_cfg=cfg.data, filesystem=loc.fs),
                                  num_cpus=DATA_CPUS)  # light tasks that fit beside the training workers
    if cfg.data.max_examples is not None:
        ds = ds.limit(cfg.data.max_examples)
    return ds.randomize_block_order(seed=cfg.train.seed)


class RayBatches:
    """``collate_fn`` for ``iter_torch_batches``: a Ray batch of examples → the ST collator's features.

    Stateless (Ray formats batches in a thread pool): each Ray batch holds ``batch_size + slack`` examples; rows
    sharing a text with an earlier row are dropped (what ST's NO_DUPLICATES sampler avoids in process) and the
    batch is cut to exactly ``batch_size``, refilled from the dropped rows if too few remain, so every worker
    contributes equal batches to ``gather_across_devices``.
    """

    def __init__(self, collator, cfg) -> None:
        self.collator, self.size = collator, cfg.train.batch_size
        self.with_context, self.hard_negatives, self.dedupe = uses_context(cfg), cfg.data.hard_negatives, cfg.data.dedupe

    def __call__(self, batch: dict) -> dict:
        n = len(batch["query"])
        examples = [{"query": str(batch["query"][i]), "positive": str(batch["positive"][i]),
                     "context": str(batch["context"][i]), "negatives": [str(x) for x in batch["negatives"][i]]}
                    for i in range(n)]
        rows = [r for r in (to_row(ex, self.with_context, self.hard_negatives) for ex in examples) if r is not None]
        keep = dedupe(rows) if self.dedupe else rows
        if len(keep) < self.size:
            kept = {id(r) for r in keep}
            keep = keep + [r for r in rows if id(r) not in kept][: self.size - len(keep)]
        return self.collator(keep[: self.size])


class RankRows:
    """``collate_fn`` over the whole ordered stream: a Ray batch of ``world`` × the worker's batch, of which worker
    ``rank`` keeps rows ``rank::world`` (then :class:`RayBatches`). Every worker reads every row and keeps a fixed,
    disjoint, equal share of each step: the split is a function of the data, the seed and the world size only (Ray
    Data's ``streaming_split`` hands blocks to whichever worker asks first, which changes with the cluster)."""

    def __init__(self, inner: RayBatches, rank: int, world: int) -> None:
        self.inner, self.rank, self.world = inner, rank, world

    def __call__(self, batch: dict) -> dict:
        return self.inner({k: v[self.rank::self.world] for k, v in batch.items()})


def ray_batch_size(cfg) -> int:
    """Examples read per step and worker (the slack covers rows :class:`RayBatches` drops as duplicates)."""
    return cfg.train.batch_size + (max(1, cfg.train.batch_size // 4) if cfg.data.dedupe else 0)
