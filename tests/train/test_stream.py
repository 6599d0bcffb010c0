"""The per-worker batch stream (msm.train.stream): shares, shuffle buffer, per-language batching, padding, replay."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import event, given, settings, strategies as st

from msm.config import load_config, parse_overrides
from msm.errors import MSMError
from msm.train.config import PretrainConfig
from msm.train.stream import (BatchStream, Cached, Position, batched, file_order, fingerprint, open_stream, pad,
                              parquet_tables, shard_tables, share, shuffled, strided)

from factories import TINY_PRETRAIN as TINY



@pytest.fixture(scope="module")
def tiny_tokenizer():
    from msm.encoders.resolve import resolve_model
    from msm.encoders.tokenizer import load_tokenizer

    return load_tokenizer(resolve_model("tiny-random"))


def test_shares_split_the_files_or_the_blocks_between_workers():
    files = [f"part-{i:05d}.parquet" for i in range(7)]
    got = [share(files, r, 3, seed=5) for r in range(3)]
    assert all(stride == 1 for _, stride in got)
    assert sorted(f for fs, _ in got for f in fs) == files  # disjoint, complete
    assert [len(fs) for fs, _ in got] == [3, 2, 2]
    assert got == [share(files, r, 3, seed=5) for r in range(3)] != [share(files, r, 3, seed=6) for r in range(3)]
    few = [share(files[:2], r, 4, seed=0) for r in range(4)]  # fewer files than workers: stride over blocks
    assert all(fs == few[0][0] and stride == 4 for fs, stride in few)
    rows = list(range(10))
    assert sorted(x for r in range(4) for x in strided(rows, r, 4)) == rows
    assert list(strided(rows, 1, 4)) == [1, 5, 9]


def test_shuffle_buffer_is_a_seeded_permutation_that_mixes_beyond_its_window():
    rows = list(range(200))
    a = list(shuffled(rows, 16, random.Random(1)))
    assert sorted(a) == rows and a == list(shuffled(rows, 16, random.Random(1)))
    assert a != list(shuffled(rows, 16, random.Random(2))) and a != rows
    assert list(shuffled(rows, 1, random.Random(1))) == rows  # a buffer of one: no shuffling
    # a row can only leave the buffer after it entered: row i is never emitted before position i - 16
    assert all(pos >= row - 16 for pos, row in enumerate(a))


def test_batches_hold_one_language_and_buffers_stay_bounded():
    rows = [{"lang": lang, "i": i} for i, lang in enumerate("aabcbbacaaab")]
    groups = list(batched(rows, 3, single_language=True))
    assert [[r["i"] for r in g] for g in groups] == [[2, 4, 5], [0, 1, 6], [8, 9, 10]]  # in order of completion
    assert all(len({r["lang"] for r in g}) == 1 for g in groups)
    mixed = list(batched(rows, 5, single_language=False))
    assert [[r["i"] for r in g] for g in mixed] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]  # leftovers dropped


def test_padding_equals_collate_of_the_text(tiny_tokenizer):
    """Token ids stored unpadded, padded by the stream, against ``collate`` tokenising the text itself."""
    from msm.model.batching import collate

    blocks = [["Ein kurzer Satz.", "Noch einer, etwas länger als der erste Satz hier."], ["Hi.", "Two.", "Three."]]
    stored = [{"lang": lang, "input_ids": tiny_tokenizer(b, truncation=True, max_length=8)["input_ids"]}
              for b, lang in zip(blocks, ["de", "en"])]
    got = pad(stored, {"de": 0, "en": 1}, tiny_tokenizer.pad_token_id, max_sentences=4, max_tokens=8)
    want = collate(blocks, [0, 1], tiny_tokenizer, 4, 8)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def _stream(rows, **kw):
    args = dict(manifest={"languages": {"a": 1, "b": 1}, "pad_token_id": 0}, rank=0, stride=1, seed=3,
                docs_per_batch=2, single_language=True, shuffle_buffer=4, max_sentences=2, max_tokens=2)
    return BatchStream(lambda: iter(rows), **{**args, **kw})


def _rows(n: int) -> list[dict]:
    return [{"lang": "ab"[i % 2], "input_ids": [[i + 1], [i + 2]]} for i in range(n)]


def test_epochs_reshuffle_and_seek_replays_the_stream_exactly():
    rows = _rows(12)
    stream = _stream(rows)
    ref = [next(stream)["input_ids"][:, 0, 0].tolist() for _ in range(18)]  # 6 batches per epoch: 3 epochs
    epochs = [sorted(x for b in ref[i:i + 6] for x in b) for i in (0, 6, 12)]
    assert epochs[0] == epochs[1] == epochs[2] == [i + 1 for i in range(12)]  # every block once per epoch
    assert ref[0:6] != ref[6:12]  # a new order every epoch
    for stop in (1, 6, 7, 14):
        first = _stream(rows)
        for _ in range(stop):
            next(first)
        again = _stream(rows)
        again.seek(first.position)
        assert again.position == first.position
        assert [next(again)["input_ids"][:, 0, 0].tolist() for _ in range(18 - stop)] == ref[stop:]
    assert first.position == Position(epoch=2, batches=2)


def test_a_share_too_small_for_a_batch_names_the_fix():
    from msm.errors import MSMError

    with pytest.raises(MSMError, match="makes no batch of data.docs_per_batch=4 blocks of one language"):
        next(_stream(_rows(6), docs_per_batch=4))


def test_small_shares_are_read_once_and_large_ones_every_epoch():
    import pyarrow as pa

    reads = Counter()
    table = pa.table({"lang": ["a"] * 4, "input_ids": [[[1]]] * 4})

    def read():
        reads["n"] += 1
        yield table

    small, large = Cached(read, limit=10 * table.nbytes), Cached(read, limit=table.nbytes // 2)
    for cached in (small, large):
        for _ in range(3):
            assert len(list(cached())) == 4
    assert reads["n"] == 1 + 3


def test_the_corpus_stream_covers_every_block_of_the_documents(tmp_path, shared_data):
    """Local corpus of real NTREX documents: an epoch's batches hold every block of the text the reader gives
    (tokenised here independently), each once, one language per batch."""
    from msm.data.readers import read_ntrex
    from msm.model.batching import blocks
    from msm.encoders.resolve import resolve_model
    from msm.encoders.tokenizer import load_tokenizer
    from msm.train.corpus import build_local
    from msm.train.stream import open_stream

    cfg = load_config(TINY, PretrainConfig, parse_overrides([
        f"run.output_dir={tmp_path}", f"data.data_dir={shared_data}", "data.languages=[deu,fra]",
        "data.max_docs_per_lang=3", "data.docs_per_batch=1", "data.shuffle_buffer=8"]))
    manifest = build_local(cfg)
    tok = load_tokenizer(resolve_model(cfg.model.encoder))
    want = Counter()
    for rec in read_ntrex(shared_data / "ntrex", "x", ["deu", "fra"], 3):
        for b in blocks(rec["sentences"], cfg.model.max_sentences):
            want[(rec["lang"], tuple(map(tuple, tok(b, truncation=True, max_length=16)["input_ids"])))] += 1
    assert manifest["blocks"] == sum(want.values()) and manifest["documents"] == {"read": 6, "kept": 6,
                                                                                  "quarantined": {}}
    stream = open_stream(cfg, manifest, rank=0, world=1)
    langs = {i: lang for lang, i in stream.lang_ids.items()}
    got = Counter()
    for batch in itertools.islice(stream, manifest["blocks"]):
        ids, mask = batch["input_ids"][0], batch["attention_mask"][0]
        sents = [tuple(ids[j][mask[j].bool()].tolist()) for j in range(len(ids)) if batch["sentence_mask"][0, j]]
        got[(langs[int(batch["lang"][0])], tuple(sents))] += 1
    assert got == want and stream.position == Position(0, manifest["blocks"])


# ---- the stream against a second implementation written from the module docstring (issue 34) -------------------


SEED_MUL = 1_000_003  # an epoch's shuffle seed is ((seed * M + rank) * M + epoch): a saved position replays it, so
#                       another derivation would resume existing checkpoints on other batches


def ref_shuffle(rows: list, size: int, rng: random.Random) -> list:
    """The shuffle buffer over a list: the first ``size`` rows fill it; each later row takes the slot of the row
    drawn out (``rng.randrange(size)``); the rest leave in ``rng.shuffle``'s order."""
    buf, out = list(rows[:size]), []
    for row in rows[size:]:
        j = rng.randrange(size)
        out.append(buf[j])
        buf[j] = row
    rng.shuffle(buf)
    return out + buf


def ref_batches(rows: list, n: int, single: bool) -> list[list]:
    """Per key (language, or one key), its rows in arrival order cut into runs of ``n`` (a short tail dropped); the
    runs in the order their last row arrived."""
    by_key = defaultdict(list)
    for pos, row in enumerate(rows):
        by_key[row["lang"] if single else None].append((pos, row))
    runs = [(rs[i + n - 1][0], [r for _, r in rs[i:i + n]]) for rs in by_key.values()
            for i in range(0, len(rs) - n + 1, n)]
    return [g for _, g in sorted(runs, key=lambda x: x[0])]


def ref_epoch(share_rows: list, rank: int, stride: int, seed: int, epoch: int, buffer: int, n: int,
              single: bool) -> list[list]:
    mine = share_rows[rank::stride] if stride > 1 else list(share_rows)
    rng = random.Random((seed * SEED_MUL + rank) * SEED_MUL + epoch)
    return ref_batches(ref_shuffle(mine, buffer, rng), n, single)


def ids_of(batch) -> list[int]:
    """Row ids of a padded batch (each test row's first token is its id)."""
    return batch["input_ids"][:, 0, 0].tolist()


def id_rows(n: int, langs: str = "ab") -> list[dict]:
    return [{"lang": langs[i % len(langs)], "input_ids": [[100 + i, 7], [3]]} for i in range(n)]


def test_file_order_is_the_seeded_shuffle_of_the_sorted_names():
    files = [f"part-{i:05d}.parquet" for i in range(9)]
    for seed in (0, 1, 7):
        want = sorted(files)
        random.Random(seed).shuffle(want)
        assert file_order(files[::-1], seed) == file_order(files, seed) == want  # the listing order does not matter
    assert file_order(files, 0) != file_order(files, 1)


@pytest.mark.parametrize("n_files, world", [(3, 3), (4, 3), (2, 3), (1, 2), (5, 1)])
def test_share_at_the_boundary_of_as_many_files_as_workers(n_files, world):
    files = [f"f{i}" for i in range(n_files)]
    order = file_order(files, 4)
    for rank in range(world):
        got = share(files, rank, world, 4)
        assert got == ((order[rank::world], 1) if n_files >= world else (order, world))


def test_strided_keeps_every_stride_th_row_from_rank():
    rows = list(range(11))
    for stride in (1, 2, 3, 5):
        for rank in range(stride):
            assert list(strided(iter(rows), rank, stride)) == rows[rank::stride]
    assert list(strided(rows, 2, 1)) == rows  # stride 1: every row, whatever the rank


def test_shuffle_buffer_holds_exactly_size_rows():
    """When the k-th row leaves (before the drain), exactly ``size + k + 1`` rows have come in: the buffer holds
    ``size`` rows, not one more or less; smaller, equal and larger buffers than the data."""
    for n, size in ((10, 1), (10, 3), (10, 9), (10, 10), (10, 11), (10, 40), (0, 3), (1, 1)):
        pulled = []

        def rows():
            for i in range(n):
                pulled.append(i)
                yield i

        out, seen = [], []
        for x in shuffled(rows(), size, random.Random(5)):
            out.append(x)
            seen.append(len(pulled))
        assert sorted(out) == list(range(n))
        streaming = max(0, n - size)  # rows that leave before the input ends
        assert seen[:streaming] == [size + k + 1 for k in range(streaming)], (n, size)
        assert all(s == n for s in seen[streaming:])
        assert out == ref_shuffle(list(range(n)), size, random.Random(5))
        if size >= n:  # the whole data in the buffer: one seeded shuffle of it
            want = list(range(n))
            random.Random(5).shuffle(want)
            assert out == want


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=40), st.integers(1, 5), st.booleans())
def test_batched_against_a_reference(langs, n, single):
    rows = [{"lang": lang, "i": i} for i, lang in enumerate(langs)]
    got = list(batched(iter(rows), n, single))
    assert got == ref_batches(rows, n, single)
    assert all(len(g) == n for g in got) and (not single or all(len({r["lang"] for r in g}) == 1 for g in got))


def test_pad_truncates_sentences_and_tokens_and_pads_with_the_pad_id():
    group = [{"lang": "b", "input_ids": [[5, 6, 7, 8], [9], [10, 11]]},  # 3 sentences > max 2, 4 tokens > max 3
             {"lang": "a", "input_ids": [[12, 13]]}]
    got = pad(group, {"a": 0, "b": 1}, pad_id=4, max_sentences=2, max_tokens=3)
    assert got["input_ids"].tolist() == [[[5, 6, 7], [9, 4, 4]], [[12, 13, 4], [4, 4, 4]]]
    assert got["attention_mask"].tolist() == [[[1, 1, 1], [1, 0, 0]], [[1, 1, 0], [0, 0, 0]]]
    assert got["sentence_mask"].tolist() == [[True, True], [True, False]]
    assert got["lang"].tolist() == [1, 0]
    assert [got[k].dtype for k in ("input_ids", "attention_mask", "sentence_mask", "lang")] == [
        torch.long, torch.long, torch.bool, torch.long]
    empty = pad([], {"a": 0}, pad_id=4, max_sentences=2, max_tokens=3)  # no block: empty tensors of the same kinds
    assert {k: (tuple(v.shape), v.dtype) for k, v in empty.items()} == {
        "input_ids": ((0, 2, 3), torch.long), "attention_mask": ((0, 2, 3), torch.long),
        "sentence_mask": ((0, 2), torch.bool), "lang": ((0,), torch.long)}


def test_the_stream_uses_the_manifests_sorted_languages_and_pad_id():
    rows = [{"lang": "zz", "input_ids": [[1]]}, {"lang": "aa", "input_ids": [[2, 3]]}]
    stream = BatchStream(lambda: iter(rows), manifest={"languages": {"zz": 1, "mm": 5, "aa": 1}, "pad_token_id": 9},
                         rank=0, stride=1, seed=0, docs_per_batch=2, single_language=False, shuffle_buffer=1,
                         max_sentences=2, max_tokens=3)
    assert stream.lang_ids == {"aa": 0, "mm": 1, "zz": 2} and stream.position == Position(0, 0) == Position()
    batch = next(stream)
    assert batch["lang"].tolist() == [2, 0]  # buffer 1: file order
    assert batch["input_ids"].tolist() == [[[1, 9, 9], [9, 9, 9]], [[2, 3, 9], [9, 9, 9]]]


@settings(max_examples=50, deadline=None)
@given(n_rows=st.integers(0, 30), n_files=st.integers(1, 5), world=st.integers(1, 4), rank_pick=st.integers(0, 3),
       seed=st.integers(0, 3), buffer=st.integers(1, 35), n=st.integers(1, 3), single=st.booleans(),
       langs=st.sampled_from(["a", "ab", "abc"]), stop=st.integers(0, 12), data=st.data())
def test_exact_resume_from_any_position(n_rows, n_files, world, rank_pick, seed, buffer, n, single, langs, stop,
                                        data):
    """A worker's stream equals the reference (share, stride, seeded shuffle, batching, epoch after epoch), its
    position counts the batches of the current epoch, and a new stream seeking a saved position yields exactly the
    rest of the uninterrupted stream, wherever it was interrupted (inside an epoch, at its last batch, at 0)."""
    rank = rank_pick % world
    rows = id_rows(n_rows, langs)
    names = [f"part-{i:05d}.parquet" for i in range(n_files)]
    content = {f: rows[i::n_files] for i, f in enumerate(names)}  # files of different sizes
    files, stride = share(names, rank, world, seed)
    reads = Counter()

    def read():
        reads["n"] += 1
        return (r for f in files for r in content[f])

    def make():
        return BatchStream(read, manifest={"languages": dict.fromkeys(langs, 1), "pad_token_id": 0}, rank=rank,
                           stride=stride, seed=seed, docs_per_batch=n, single_language=single,
                           shuffle_buffer=buffer, max_sentences=2, max_tokens=2)

    share_rows = [r for f in files for r in content[f]]
    epochs = [ref_epoch(share_rows, rank, stride, seed, e, buffer, n, single) for e in range(12)]
    if not epochs[0]:
        with pytest.raises(MSMError, match=f"worker {rank}: its share .*docs_per_batch={n} blocks"):
            next(make())
        return
    per_epoch = len(epochs[0])
    event(f"batches per epoch: {min(per_epoch, 3)}+")
    assert all(len(e) == per_epoch for e in epochs)  # the same number of batches every epoch
    total = min(stop + data.draw(st.integers(1, 10)), 12 * per_epoch)
    stop = min(stop, total)
    want = [[r["input_ids"][0][0] for r in g] for e in epochs for g in e][:total]
    whole = make()
    got = []
    for k in range(total):
        batch = next(whole)
        got.append(ids_of(batch))
        assert batch["lang"].tolist() == [sorted(langs).index(r["lang"]) for r in epochs[k // per_epoch][k % per_epoch]]
        assert whole.position == Position(k // per_epoch, k % per_epoch + 1)
    assert got == want
    assert reads["n"] == (total - 1) // per_epoch + 1  # one pass over the share per epoch

    first = make()
    for _ in range(stop):
        next(first)
    again = make()
    again.seek(first.position)
    assert again.position == first.position
    assert [ids_of(next(again)) for _ in range(total - stop)] == want[stop:]


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_the_ranks_of_an_epoch_share_every_block_once(world):
    """With one block per batch, an epoch of all ranks together holds every block exactly once, whether the
    workers split the files (3 files >= world) or stride over the blocks of all of them."""
    rows = id_rows(23)
    names = ["f0", "f1", "f2"]
    content = {f: rows[i * 8:(i + 1) * 8] for i, f in enumerate(names)}
    seen = Counter()
    for rank in range(world):
        files, stride = share(names, rank, world, seed=2)
        stream = BatchStream(lambda files=files: (r for f in files for r in content[f]),
                             manifest={"languages": {"a": 1, "b": 1}, "pad_token_id": 0}, rank=rank, stride=stride,
                             seed=2, docs_per_batch=1, single_language=True, shuffle_buffer=4, max_sentences=2,
                             max_tokens=2)
        n_blocks = (sum(len(content[f]) for f in files) if stride == 1
                    else len(range(rank, 23, stride)))
        for _ in range(n_blocks):
            seen.update(ids_of(next(stream)))
        assert stream.position == Position(0, n_blocks)
        next(stream)
        assert stream.position == Position(1, 1)  # the epoch ended exactly there
    assert seen == Counter(100 + i for i in range(23))


def test_a_share_too_small_for_a_batch_mixed_languages_names_the_fix():
    with pytest.raises(MSMError) as err:
        next(_stream(_rows(3), docs_per_batch=4, single_language=False, rank=2))
    assert str(err.value) == ("worker 2: its share of the corpus makes no batch of data.docs_per_batch=4 blocks; lower "
                              "docs_per_batch or run.num_workers, or add documents")


def test_the_cache_boundary_is_the_total_size_of_the_share():
    """Kept when the tables total exactly ``limit`` bytes; not when they total more, even if each one fits; what
    comes from the cache is what the first pass read."""
    t1 = pa.table({"lang": ["a", "b"], "input_ids": [[[1]], [[2, 3]]]})
    t2 = pa.table({"lang": ["c"], "input_ids": [[[4]]]})
    for limit, cached in ((t1.nbytes + t2.nbytes, True), (t1.nbytes + t2.nbytes - 1, False),
                          (max(t1.nbytes, t2.nbytes), False)):
        reads = Counter()

        def read():
            reads["n"] += 1
            yield from (t1, t2)

        c = Cached(read, limit=limit)
        passes = [list(c()) for _ in range(3)]
        assert passes == [t1.to_pylist() + t2.to_pylist()] * 3
        assert reads["n"] == (1 if cached else 3), limit
    empty = Cached(lambda: iter(()), limit=0)
    assert list(empty()) == [] and list(empty()) == [] and empty.tables == []


def _write_blocks(path, rows):
    pq.write_table(pa.Table.from_pylist(
        [{"doc_id": f"d{i}", "block": 0, **r} for i, r in enumerate(rows)],
        schema=pa.schema([("doc_id", pa.string()), ("block", pa.int32()), ("lang", pa.string()),
                          ("input_ids", pa.list_(pa.list_(pa.int32())))])), path)


def test_parquet_tables_reads_lang_and_ids_in_file_order_in_batches_of_256(tmp_path):
    from msm.uri import resolve

    big, small = id_rows(300), id_rows(3, "c")
    _write_blocks(tmp_path / "b.parquet", big)
    _write_blocks(tmp_path / "a.parquet", small)
    tables = list(parquet_tables(resolve(tmp_path), ["b.parquet", "a.parquet"]))
    assert [t.num_rows for t in tables] == [256, 44, 3]  # a second Arrow batch of the first file, then the next file
    assert all(t.schema.names == ["lang", "input_ids"] for t in tables)
    assert [r for t in tables for r in t.to_pylist()] == big + small


def test_shard_tables_reads_the_shard_in_batches_of_256_and_keeps_two_columns():
    tables = [pa.table({"doc_id": ["x", "y"], "lang": ["a", "b"], "input_ids": [[[1]], [[2]]]}),
              pa.table({"doc_id": ["z"], "lang": ["c"], "input_ids": [[[3]]]})]
    calls = []

    class Shard:  # Ray Data's DataIterator, as far as shard_tables uses it
        def iter_batches(self, **kwargs):
            calls.append(kwargs)
            return iter(tables)

    got = list(shard_tables(Shard()))
    assert calls == [{"batch_size": 256, "batch_format": "pyarrow", "prefetch_batches": 2}]
    assert [t.to_pylist() for t in got] == [t.select(["lang", "input_ids"]).to_pylist() for t in tables]
    assert all(t.schema.names == ["lang", "input_ids"] for t in got)


def _corpus_cfg(tmp_path, *overrides):
    return load_config(TINY, PretrainConfig, parse_overrides([f"run.output_dir={tmp_path / 'run'}", *overrides]))


@pytest.mark.parametrize("world", [1, 2, 4])
def test_open_stream_reads_its_share_of_the_corpus_files_with_the_configs_settings(tmp_path, world):
    """A corpus folder written here (3 files of 7, 2 and 300 blocks: a second Arrow batch) and its manifest; each
    rank's stream equals the reference over the files of its share read with pyarrow, and the same stream comes
    from a Ray Data shard (a stand-in iterator over the same tables)."""
    cfg = _corpus_cfg(tmp_path, "data.docs_per_batch=3", "data.single_language_batches=false",
                      "data.shuffle_buffer=5", "run.seed=11", "model.max_sentences=2", "model.max_tokens=4")
    root = tmp_path / "run" / "corpus"
    (root / "part=blocks").mkdir(parents=True)
    rows = id_rows(309, "abc")
    sizes = {"part=blocks/part-00000.parquet": rows[:7], "part=blocks/part-00001.parquet": rows[7:9],
             "part=blocks/part-00002.parquet": rows[9:]}
    for f, rs in sizes.items():
        _write_blocks(root / f, rs)
    manifest = {"files": [{"path": f, "rows": len(rs)} for f, rs in sizes.items()],
                "languages": {"c": 1, "a": 1, "b": 1}, "pad_token_id": 1}
    for rank in range(world):
        files, stride = share(list(sizes), rank, world, 11)
        share_rows = [r for f in files for r in pq.read_table(root / f, columns=["lang", "input_ids"]).to_pylist()]
        want = [[r["input_ids"][0][0] for r in g]
                for e in range(2) for g in ref_epoch(share_rows, rank, stride, 11, e, 5, 3, False)]
        stream = open_stream(cfg, manifest, rank=rank, world=world)
        assert (stream.n, stream.single, stream.buffer, stream.shape) == (3, False, 5, (2, 4))
        assert [ids_of(next(stream)) for _ in want] == want

        class Shard:
            def iter_batches(self, **kwargs):
                return iter([pa.Table.from_pylist(share_rows)])

        elsewhere = {**manifest, "files": [{"path": f"missing-{i}", "rows": 1} for i in range(3)]}  # read no file
        from_shard = open_stream(cfg, elsewhere, rank=rank, world=world, shard=Shard())
        assert from_shard.stride == stride
        assert [ids_of(next(from_shard)) for _ in want] == want


def test_the_stream_fingerprint_covers_the_corpus_and_every_batching_setting(tmp_path):
    import hashlib
    import json

    cfg = _corpus_cfg(tmp_path, "data.docs_per_batch=3", "data.shuffle_buffer=5", "run.seed=2")
    manifest = {"fingerprint": "abc"}
    key = json.dumps(["abc", 3, True, 5, 2, 4]).encode()
    assert fingerprint(cfg, manifest, 4) == hashlib.sha256(key).hexdigest()[:16]
    others = [fingerprint(cfg, {"fingerprint": "abd"}, 4), fingerprint(cfg, manifest, 2)]
    for override in ("data.docs_per_batch=4", "data.single_language_batches=false", "data.shuffle_buffer=6",
                     "run.seed=3"):
        others.append(fingerprint(_corpus_cfg(tmp_path, "data.docs_per_batch=3", "data.shuffle_buffer=5",
                                              "run.seed=2", override), manifest, 4))
    assert len({fingerprint(cfg, manifest, 4), *others}) == 1 + len(others)


def test_seek_forms_the_skipped_groups_without_padding_them(monkeypatch):
    """The module's promise: :meth:`seek` replays the epoch's prefix without padding it (only the groups)."""
    import msm.train.stream as stream_module

    padded = Counter()
    real = stream_module.pad

    def counting(*args, **kwargs):
        padded["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(stream_module, "pad", counting)
    stream = _stream(_rows(12))
    stream.seek(Position(1, 4))
    assert padded["n"] == 0 and stream.position == Position(1, 4)
    next(stream)
    assert padded["n"] == 1
