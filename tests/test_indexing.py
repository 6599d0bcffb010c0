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


@pytest.mark.timeout(300)
def test_bad_lines_are_quarantined_with_their_place_and_the_rest_is_indexed(ray_local, tiny_model_dir, tmp_path,
                                                                            capsys):
    """The corpus goes through mining's readers: a malformed line, a line that is not UTF-8 and an empty text are
    quarantined with their file and line (not indexed, not fatal), and input = indexed + quarantined."""
    import pyarrow.parquet as pq

    from msm.cli import main
    from msm.retrieval.index import SearchIndex

    corpus = tmp_path / "corpus.jsonl"
    good = [json.dumps({"id": f"g{i}", "text": f"Ein guter Satz Nummer {i}."}) for i in range(5)]
    corpus.write_bytes(("\n".join([good[0], '{"id": "broken", "text": ', good[1], good[2]]) + "\n").encode()
                       + '{"id": "latin1", "text": "Größe"}\n'.encode("latin-1")
                       + ("\n".join([good[3], json.dumps({"id": "blank", "text": "  "}), good[4]]) + "\n").encode())
    out = tmp_path / "idx"
    assert main(["index", "--corpus", str(corpus), "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    build = json.loads((out / "build.json").read_text())
    assert build["counts"]["input"] == 8 and build["counts"]["indexed"] == 5
    assert sum(build["counts"]["quarantined"].values()) == 3
    assert sorted(SearchIndex.load(out / "index").ids) == [f"g{i}" for i in range(5)]
    rows = pq.read_table(out / "quarantine").to_pylist()
    reasons = {r["id"]: r["reason"] for r in rows}
    assert len(rows) == 3 and reasons.get("blank") == "empty_text"
    located = " ".join(r for r in reasons.values() if r != "empty_text")
    assert f"{corpus}:2" in located and f"{corpus}:5" in located  # the malformed and the non-UTF-8 line
    assert "quarantined 3" in capsys.readouterr().out
    # the same settings again: reused, nothing rebuilt
    mtime = (out / "build.json").stat().st_mtime_ns
    assert main(["index", "--corpus", str(corpus), "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    assert (out / "build.json").stat().st_mtime_ns == mtime and "reusing it" in capsys.readouterr().out


def test_a_corpus_with_nothing_to_index_is_named(ray_local, tiny_model_dir, tmp_path, capsys):
    from msm.cli import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "body": "no text field"}\n')
    assert main(["index", "--corpus", str(corpus), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--corpus {corpus}: no record to index (1 quarantined" in err and not (tmp_path / "o").exists()


def test_index_build_fails_loudly_when_shards_are_short(tmp_path):
    """The build reads the embedding shards back and checks one vector per corpus record (a lost shard)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from msm.indexing import index_from_shards
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
