"""End to end on a local Ray cluster: a few NTREX documents in 3 languages plus bad input, the tiny encoder.

A crashed run with two embedding workers (the fault drill ``MSM_MINE_FAIL_AFTER``) and a complete re-run with one
share a test: each run starts Ray Data operators, the slow part."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from msm.data.config import InputConfig, MineConfig
from msm.data.schema import DOCUMENTS, PAIRS, QUARANTINE, embeddings_schema
from msm.errors import MSMError


def read_dir(path):
    return pq.ParquetDataset(path).read()


@pytest.mark.ray
@pytest.mark.timeout(900)
def test_mine_end_to_end_crash_safe_and_worker_count_free(ray_local, tiny_model_dir, shared_data, tmp_path,
                                                          monkeypatch) -> None:
    from msm.data.pipeline import mine

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "x", "text": "\xff\xfe"}\n{"id": "e", "text": ""}\n')
    cfg = MineConfig(
        inputs=[InputConfig(kind="ntrex", path="ntrex", langs=["eng", "deu", "rus"], max_documents=4),
                InputConfig(kind="jsonl", path=str(bad))],
        data_dir=str(shared_data), output_dir=str(tmp_path / "out"), shard_rows=5)
    cfg.embed.model, cfg.embed.batch_size = str(tiny_model_dir), 16
    cfg.pair.margin_threshold = 0.0
    out = tmp_path / "out"

    # two embedding workers, a crash after pairs and alignments are staged: nothing at the output looks complete
    cfg.embed.pool_size = 2
    monkeypatch.setenv("MSM_MINE_FAIL_AFTER", "align")
    with pytest.raises(RuntimeError, match="injected failure after stage 'align'"):
        mine(cfg, log=lambda *_: None)
    monkeypatch.delenv("MSM_MINE_FAIL_AFTER")
    assert not out.exists() and not (out / "manifest.json").exists()
    staged_pairs = sorted((p["src_doc_id"], p["tgt_doc_id"], p["links"])
                          for p in read_dir(tmp_path / ".out.staging" / "pairs").to_pylist())

    # the re-run with one worker replaces what the crash left and commits
    cfg.embed.pool_size = 1
    first = mine(cfg, log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "out"]  # no staging or work dirs left
    counts = first["counts"]
    assert counts["input"] == 14 and counts["kept"] == 12 and counts["quarantined"] == 2
    assert counts["quarantine_reasons"] == {"invalid_utf8": 1, "empty": 1}
    assert counts["documents_by_lang"] == {"de": 4, "en": 4, "ru": 4}
    assert counts["langid_relabelled"] == {}  # declared and detected agree on every kept NTREX document

    docs, pairs, quarantine = read_dir(out / "documents"), read_dir(out / "pairs"), read_dir(out / "quarantine")
    assert docs.schema.remove_metadata().equals(DOCUMENTS) and pairs.schema.remove_metadata().equals(PAIRS)
    assert read_dir(out / "embeddings").schema.remove_metadata().equals(embeddings_schema(32))  # tiny model: 32 dims
    assert quarantine.schema.remove_metadata().equals(QUARANTINE)
    shards = list((out / "documents").glob("*.parquet"))
    assert len(shards) >= 3 and all(pq.ParquetFile(f).metadata.num_rows <= 5 for f in shards)  # 12 rows, ≤ 5 a file
    emb = read_dir(out / "embeddings")
    assert sorted(emb.column("doc_id").to_pylist()) == sorted(docs.column("doc_id").to_pylist())
    n_sent = {r["doc_id"]: len(r["sentences"]) for r in docs.to_pylist()}
    for r in emb.to_pylist():  # one unit vector per sentence, the document vector their normalised mean
        import numpy as np

        v = np.asarray(r["sentence_embeddings"], np.float32)
        assert v.shape[0] == n_sent[r["doc_id"]] and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
        mean = v.mean(0) / np.linalg.norm(v.mean(0))
        assert np.allclose(np.asarray(r["doc_embedding"]), mean, atol=1e-5)
    assert docs.num_rows + quarantine.num_rows == counts["input"]
    # NTREX lines are kept as the sentences, in order
    eng = {r["doc_id"]: r for r in docs.to_pylist() if r["lang"] == "en"}
    first_line = (shared_data / "ntrex" / "newstest2019-src.eng.txt").read_text(encoding="utf-8").split("\n")[0]
    assert eng["in0:eng:bbc.381790"]["sentences"][0] == first_line.strip()
    # every pair links an English document to a de/ru one; links cover both documents' sentences in order
    by_id = {r["doc_id"]: r for r in docs.to_pylist()}
    assert pairs.num_rows == counts["pairs"] > 0
    for p in pairs.to_pylist():
        assert p["src_lang"] == "en" and p["tgt_lang"] in {"de", "ru"}
        assert [i for l in p["links"] for i in l["src"]] == list(range(len(by_id[p["src_doc_id"]]["sentences"])))
        assert [j for l in p["links"] for j in l["tgt"]] == list(range(len(by_id[p["tgt_doc_id"]]["sentences"])))
        assert p["pair_id"] in by_id[p["tgt_doc_id"]]["pair_ids"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == counts and manifest["config"]["embed"]["model"] == str(tiny_model_dir)
    assert manifest["files"]["documents"] == sorted(f"documents/{f.name}" for f in shards)

    # one embedding worker mined exactly the pairs and sentence links two did
    assert sorted((p["src_doc_id"], p["tgt_doc_id"], p["links"]) for p in pairs.to_pylist()) == staged_pairs


def test_commit_publishes_the_staged_folder_manifest_last(tmp_path) -> None:
    """Until the commit, the output does not exist (the staging folder is hidden and has no manifest)."""
    from msm.uri import commit_dir, resolve, sibling

    out = resolve(tmp_path / "out")
    staged = sibling(out, "staging")
    staged.join("documents").mkdir()
    staged.join("documents", "a.parquet").write_bytes(b"x")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.staging" / "manifest.json").exists()
    commit_dir(staged, out, "{}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["documents", "manifest.json"]
    assert not (tmp_path / ".out.staging").exists()


def test_cli_reports_missing_input(tmp_path, capsys) -> None:
    from msm.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"inputs:\n  - kind: txt_dir\n    path: {tmp_path}/nowhere\noutput_dir: {tmp_path}/out\n")
    assert main(["mine", "--config", str(cfg)]) == 2
    assert "msm mine: error: inputs[0] (txt_dir): path" in capsys.readouterr().err
    with pytest.raises(MSMError, match="inputs: empty"):
        from msm.data.pipeline import validate_config

        validate_config(MineConfig())
