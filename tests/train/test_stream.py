"""The per-worker batch stream (msm.train.stream): shares, shuffle buffer, per-language batching, padding, replay."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
import torch

from msm.config import load_config, parse_overrides
from msm.train.config import PretrainConfig
from msm.train.stream import BatchStream, Cached, Position, batched, pad, share, shuffled, strided

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
