"""Stage 2 of pretraining: each worker's endless stream of MSM batches from the tokenised corpus (plain Python).

    share      which blocks a worker reads: its own files (``files[rank::world]`` of a seeded file order), or,
               with fewer files than workers, every ``world``-th block of all of them
    shuffle    a seeded shuffle buffer of ``data.shuffle_buffer`` blocks, a new seed every epoch
    batch      bounded per-language buffers (``single_language_batches``, as the reference) or one mixed buffer:
               ``docs_per_batch`` blocks make a batch; an epoch's incomplete buffers are dropped
    pad        ``input_ids / attention_mask [B,S,T]``, ``sentence_mask [B,S]``, ``lang [B]`` tensors

The rows come from the worker's Ray Data shard (``ray.train.get_dataset_shard("train")``, read in file order) or,
without Ray, straight from the Parquet files: the same order either way. Memory is bounded by the shuffle buffer,
the per-language buffers and a share small enough to keep (:class:`Cached`: at most ``CACHE_BYTES`` of Arrow data,
so a demo-sized share is read once instead of once per epoch), not by the corpus.

**Exact resume.** A worker's stream is a function of (corpus, seed, rank, world size, epoch): :attr:`position`
(epoch, batches taken in it) is saved in every checkpoint for every rank, and :meth:`seek` replays that epoch's
prefix without padding it, so a restarted run trains on exactly the batches the uninterrupted run would have.
Hand-written because Ray Data's splits (``streaming_split``) hand blocks to whichever worker asks first, which no
checkpoint can replay.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from msm.errors import MSMError


@dataclass(frozen=True)
class Position:
    epoch: int = 0
    batches: int = 0  # taken in this epoch


def file_order(files: list[str], seed: int) -> list[str]:
    """The corpus files in the seeded order every worker agrees on."""
    order = sorted(files)
    random.Random(seed).shuffle(order)
    return order


def share(files: list[str], rank: int, world: int, seed: int) -> tuple[list[str], int]:
    """(files this worker reads, stride): its own files when there are at least ``world``, else all files and a
    stride of ``world`` (it keeps blocks ``rank, rank + world, ...``)."""
    order = file_order(files, seed)
    if len(order) >= world:
        return order[rank::world], 1
    return order, world


CACHE_BYTES = 256 << 20


class Cached:
    """Arrow tables of ``read()``, kept after the first full pass if they total at most ``limit`` bytes (each
    later epoch of a small share then skips the Ray Data execution: seconds per epoch on a small cluster)."""

    def __init__(self, read: Callable[[], Iterable], limit: int = CACHE_BYTES) -> None:
        self.read, self.limit, self.tables = read, limit, None

    def __call__(self) -> Iterator[dict]:
        if self.tables is not None:
            for t in self.tables:
                yield from t.to_pylist()
            return
        kept: list | None = []
        size = 0
        for t in self.read():
            size += t.nbytes
            if kept is not None and size <= self.limit:
                kept.append(t)
            else:
                kept = None
            yield from t.to_pylist()
        self.tables = kept


def strided(rows: Iterable[dict], rank: int, stride: int) -> Iterator[dict]:
    for i, row in enumerate(rows):
        if stride == 1 or i % stride == rank:
            yield row


def shuffled(rows: Iterable[dict], size: int, rng: random.Random) -> Iterator[dict]:
    """A shuffle buffer: fill ``size`` rows, then emit a random one for each row that comes in; drain at the end."""
    buf: list[dict] = []
    for row in rows:
        if len(buf) < size:
            buf.append(row)
            continue
        j = rng.randrange(size)
        yield buf[j]
        buf[j] = row
    rng.shuffle(buf)
    yield from buf


def batched(rows: Iterable[dict], n: int, single_language: bool) -> Iterator[list[dict]]:
    """Groups of ``n`` rows, one language per group (a buffer per language) or mixed; leftovers are dropped."""
    bufs: dict[str, list[dict]] = {}
    for row in rows:
        buf = bufs.setdefault(row["lang"] if single_language else "", [])
        buf.append(row)
        if len(buf) == n:
            yield buf
            bufs[row["lang"] if single_language else ""] = []


def pad(group: list[dict], lang_ids: dict[str, int], pad_id: int, max_sentences: int,
        max_tokens: int) -> dict[str, torch.Tensor]:
    """Blocks of token ids → one padded MSM batch (as :func:`msm.model.batching.collate` makes from text)."""
    b = len(group)
    ids = torch.full((b, max_sentences, max_tokens), pad_id, dtype=torch.long)
    mask = torch.zeros((b, max_sentences, max_tokens), dtype=torch.long)
    smask = torch.zeros((b, max_sentences), dtype=torch.bool)
    for i, row in enumerate(group):
        for j, sent in enumerate(row["input_ids"][:max_sentences]):
            sent = sent[:max_tokens]
            ids[i, j, : len(sent)] = torch.tensor(sent, dtype=torch.long)
            mask[i, j, : len(sent)] = 1
            smask[i, j] = True
    return {"input_ids": ids, "attention_mask": mask, "sentence_mask": smask,
            "lang": torch.tensor([lang_ids[r["lang"]] for r in group], dtype=torch.long)}


class BatchStream:
    """Endless MSM batches of one worker: epochs of ``rows(epoch)`` (its share, in file order) shuffled, batched
    and padded; :attr:`position` and :meth:`seek` for checkpoints."""

    def __init__(self, rows: Callable[[], Iterable[dict]], *, manifest: dict, rank: int, stride: int, seed: int,
                 docs_per_batch: int, single_language: bool, shuffle_buffer: int, max_sentences: int,
                 max_tokens: int) -> None:
        self.rows, self.rank, self.stride, self.seed = rows, rank, stride, seed
        self.n, self.single, self.buffer = docs_per_batch, single_language, shuffle_buffer
        self.shape = (max_sentences, max_tokens)
        self.lang_ids = {lang: i for i, lang in enumerate(sorted(manifest["languages"]))}
        self.pad_id = manifest["pad_token_id"]
        self.position = Position()
        self._groups: Iterator[list[dict]] | None = None

    def _epoch(self, epoch: int) -> Iterator[list[dict]]:
        rng = random.Random((self.seed * 1_000_003 + self.rank) * 1_000_003 + epoch)
        rows = strided(self.rows(), self.rank, self.stride)
        return batched(shuffled(rows, self.buffer, rng), self.n, self.single)

    def _next_group(self) -> list[dict]:
        for _ in range(2):
            if self._groups is None:
                self._groups = self._epoch(self.position.epoch)
            group = next(self._groups, None)
            if group is not None:
                self.position = Position(self.position.epoch, self.position.batches + 1)
                return group
            if self.position.batches == 0:
                raise MSMError(f"worker {self.rank}: its share of the corpus makes no batch of data.docs_per_batch="
                               f"{self.n} blocks{' of one language' if self.single else ''}; lower docs_per_batch "
                               "or run.num_workers, or add documents")
            self.position, self._groups = Position(self.position.epoch + 1, 0), None
        raise AssertionError("unreachable")

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return pad(self._next_group(), self.lang_ids, self.pad_id, *self.shape)

    def seek(self, position: Position) -> None:
        """Continue after ``position``: the epoch's first ``position.batches`` groups are formed and skipped."""
        self.position, self._groups = Position(position.epoch, 0), None
        for _ in range(position.batches):
            self._next_group()


def parquet_tables(root, files: list[str]) -> Iterator:
    """``lang`` and ``input_ids`` of the blocks in ``files`` (inside the corpus :class:`~msm.uri.Location`), in
    order, as Arrow record batches."""
    import pyarrow.parquet as pq  # lazy: pyarrow

    for f in files:
        with root.fs.open_input_file(root.join(f).path) as fh:
            yield from pq.ParquetFile(fh).iter_batches(batch_size=256, columns=["lang", "input_ids"])


def shard_tables(shard) -> Iterator:
    """The same from a Ray Data shard (a ``DataIterator`` over this worker's files, order preserved)."""
    for batch in shard.iter_batches(batch_size=256, batch_format="pyarrow", prefetch_batches=2):
        yield batch.select(["lang", "input_ids"])


def open_stream(cfg, manifest: dict, rank: int, world: int, shard=None) -> BatchStream:
    """This worker's :class:`BatchStream` over the committed corpus (``shard``: its Ray Data iterator, or None to
    read the files directly)."""
    from msm.train.corpus import location  # lazy: pyarrow

    files, stride = share([f["path"] for f in manifest["files"]], rank, world, cfg.run.seed)
    root = location(cfg)
    rows = Cached((lambda: shard_tables(shard)) if shard is not None else (lambda: parquet_tables(root, files)))
    d, m = cfg.data, cfg.model
    return BatchStream(rows, manifest=manifest, rank=rank, stride=stride, seed=cfg.run.seed,
                       docs_per_batch=d.docs_per_batch, single_language=d.single_language_batches,
                       shuffle_buffer=d.shuffle_buffer, max_sentences=m.max_sentences, max_tokens=m.max_tokens)


def fingerprint(cfg, manifest: dict, world: int) -> str:
    """The corpus and every setting of the streams (stored in checkpoints: resuming on other data is refused)."""

    d = cfg.data
    key = [manifest["fingerprint"], d.docs_per_batch, d.single_language_batches, d.shuffle_buffer, cfg.run.seed, world]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
