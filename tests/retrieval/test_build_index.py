"""``msm index``: Ray Data encodes a corpus in shards; the merged index equals in-process encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msm.errors import MSMError


@pytest.mark.timeout(300)
def test_ray_data_index_matches_in_process_encoding(ray_local, tiny_model_dir, shared_data, tmp_path):
    from msm.cli import main
    from msm.retrieval.encoder import Encoder
    from msm.retrieval.index import SearchIndex

    lines = (shared_data / "ntrex" / "newstest2019-ref.deu.txt").read_text(encoding="utf-8").splitlines()[:40]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for part in range(2):  # two input files → several blocks → several embedding shards
        rows = [{"id": f"de-{i}", "text": lines[i]} for i in range(part * 20, part * 20 + 20)]
        (corpus / f"part-{part}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    assert main(["index", "--corpus", str(corpus), "--model", str(tiny_model_dir), "--out", str(tmp_path / "idx"),
                 "--batch-size", "8"]) == 0
    index = SearchIndex.load(tmp_path / "idx" / "index")
    assert sorted(index.ids) == sorted(f"de-{i}" for i in range(40))
    reference = Encoder(str(tiny_model_dir), max_length=256).encode(lines, kind="passage")
    stored = np.stack([index.index.reconstruct(j) for j in range(len(index.ids))])
    order = [int(i.split("-")[1]) for i in index.ids]
    np.testing.assert_allclose(stored, reference[order], atol=1e-5)
    _, hits = index.search(reference[[7]], 1)
    assert hits == [["de-7"]]
    build = json.loads((tmp_path / "idx" / "build.json").read_text())
    assert build["passages"] == 40 and build["shards"] >= 1


@pytest.mark.timeout(120)
def test_bad_corpora_are_named(ray_local, tmp_path):
    from msm.retrieval.build import read_corpus

    with pytest.raises(MSMError, match="corpus not found"):
        read_corpus(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "body": "no text field"}\n')
    with pytest.raises(MSMError, match=r"lacks column\(s\) \['text'\]"):
        read_corpus(bad)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.jsonl").write_text('{"id": "a", "text": "x"}\n')
    (mixed / "b.csv").write_text("id,text\n")
    with pytest.raises(MSMError, match="must all be .jsonl or all .parquet"):
        read_corpus(mixed)


def test_index_build_fails_loudly_when_shards_are_short(tmp_path):
    """The build reads the embedding shards back and checks one vector per corpus record (a lost shard)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from msm.retrieval.build import index_from_shards
    from msm.retrieval.index import SearchIndex
    from msm.uri import resolve

    staged = resolve(tmp_path / ".idx.staging")
    (tmp_path / ".idx.staging" / "embeddings").mkdir(parents=True)
    vecs = np.eye(4, dtype=np.float32)
    for n, rows in enumerate([[0, 1], [2, 3]]):
        pq.write_table(pa.table({"id": [f"p{i}" for i in rows], "embedding": [vecs[i].tolist() for i in rows]}),
                       tmp_path / ".idx.staging" / "embeddings" / f"{n}.parquet")
    with pytest.raises(MSMError, match=r"4 vectors in 2 embedding shards for 5 corpus records: shards were lost"):
        index_from_shards(staged, 5, "flat", "m", use_gpu=False)
    assert not (tmp_path / ".idx.staging" / "index").exists()
    stats = index_from_shards(staged, 4, "flat", "m", use_gpu=False)
    assert stats == {"kind": "flat", "model": "m", "passages": 4, "shards": 2, "dim": 4}
    index = SearchIndex.load(tmp_path / ".idx.staging" / "index")
    _, hits = index.search(vecs[[2]], 1)
    assert hits == [["p2"]]
