"""The pretraining corpus stage (msm.train.corpus): sources, accounting of every record, Ray Data = in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from msm.config import load_config, parse_overrides
from msm.errors import MSMError
from msm.train.config import PretrainConfig

from factories import TINY_PRETRAIN as TINY

REPO = Path(__file__).resolve().parents[2]
DE = ["Der Hund schläft im Garten unter dem alten Baum.", "Die Katze sitzt auf dem Dach und schaut herunter.",
      "Am Abend kommen alle Kinder nach Hause zurück.", "Dann essen sie gemeinsam in der warmen Küche."]
EN = ["The dog sleeps in the garden under the old tree.", "The cat sits on the roof and looks down at us.",
      "In the evening all the children come back home.", "Then they eat together in the warm kitchen."]


def cfg_for(tmp_path: Path, *overrides: str) -> PretrainConfig:
    return load_config(TINY, PretrainConfig, parse_overrides([f"run.output_dir={tmp_path / 'run'}",
                                                              "data.max_docs_per_lang=null", *overrides]))


def blocks_of(tmp_path: Path) -> list[dict]:
    folder = tmp_path / "run" / "corpus" / "part=blocks"
    rows = [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return sorted(({k: r[k] for k in ("doc_id", "block", "lang", "input_ids")} for r in rows),
                  key=lambda r: (r["doc_id"], r["block"]))


def quarantined(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "run" / "corpus" / "part=quarantine"
    return {r["doc_id"]: r["reason"] for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()}


@pytest.fixture
def text_corpus(tmp_path: Path) -> Path:
    """CC-100's layout: ``de.txt`` and ``en.txt``, a sentence per line, blank lines between documents."""
    folder = tmp_path / "cc"
    folder.mkdir()
    (folder / "de.txt").write_text("\n".join(DE[:2]) + "\n\n\n" + "\n".join(DE) + "\n\nNur ein Satz steht hier allein.\n")
    (folder / "en.txt").write_bytes(("\n".join(EN) + "\n\n").encode() + b"bad \xff byte line\n" + EN[0].encode() + b"\n")
    return folder


def test_text_source_keeps_documents_and_quarantines_the_rest_with_reasons(tmp_path, text_corpus):
    from msm.train.corpus import build_local

    manifest = build_local(cfg_for(tmp_path, "data.source=text", f"data.path={text_corpus}", "data.langid=false"))
    assert manifest["documents"] == {"read": 5, "kept": 3,
                                     "quarantined": {"too_few_sentences": 1, "invalid_utf8": 1}}
    reasons = quarantined(tmp_path)
    assert reasons["in0:de:2"].startswith("too_few_sentences: 1 sentence") and "in0:en:1" in reasons
    assert "en.txt:6" in reasons["in0:en:1"]  # names the file and line
    got = blocks_of(tmp_path)
    assert [(r["doc_id"], r["block"], r["lang"], len(r["input_ids"])) for r in got] == [
        ("in0:de:0", 0, "de", 2), ("in0:de:1", 0, "de", 4), ("in0:en:0", 0, "en", 4)]
    assert manifest["languages"] == {"de": 2, "en": 1} and manifest["blocks"] == 3


def test_jsonl_source_segments_text_and_checks_declared_languages(tmp_path):
    from msm.train.corpus import build_local

    path = tmp_path / "docs.jsonl"
    lines = [{"id": "a", "text": " ".join(DE), "lang": "de"}, {"id": "b", "text": " ".join(EN)},
             {"id": "c", "text": " ".join(EN), "lang": "de"}, {"id": "d", "text": ""}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    manifest = build_local(cfg_for(tmp_path, "data.source=jsonl", f"data.path={path}"))
    d = manifest["documents"]
    assert d["kept"] == 2 and d["read"] == 5
    assert d["quarantined"] == {"lang_mismatch": 1, "empty": 1, "bad_record": 1}
    got = {r["doc_id"]: r for r in blocks_of(tmp_path)}
    assert got["in0:a"]["lang"] == "de" and got["in0:b"]["lang"] == "en"  # b: from language ID
    assert len(got["in0:a"]["input_ids"]) == 4  # the segmenter split the paragraph into its 4 sentences
    assert "docs.jsonl:5" in quarantined(tmp_path)["in0:line5"]
    with pytest.raises(MSMError, match="data.source 'parquet' needs data.path"):
        build_local(cfg_for(tmp_path / "x", "data.source=parquet"))


def test_the_cap_keeps_the_first_documents_of_each_language(tmp_path, shared_data):
    from msm.data.readers import read_ntrex
    from msm.train.corpus import build_local

    cfg = cfg_for(tmp_path, f"data.data_dir={shared_data}", "data.languages=[deu]", "data.max_docs_per_lang=3")
    manifest = build_local(cfg)
    first = [r["doc_id"] for r in read_ntrex(shared_data / "ntrex", "in0", ["deu"], 3)]
    assert sorted({r["doc_id"] for r in blocks_of(tmp_path)}) == sorted(first)
    assert manifest["documents"]["kept"] == 3


@pytest.mark.timeout(900)
def test_ray_data_builds_the_same_corpus_and_shards_as_in_process(ray_local, tmp_path, text_corpus):
    """The Ray Data graph against the in-process driver on the same text corpus (with a per-language cap,
    the ordered path); then each worker's Ray Data iterator (RankShards) against reading its files directly."""
    from msm.train.corpus import build, build_local, location
    from msm.train.shards import RankShards
    from msm.train.stream import parquet_tables, share, shard_tables

    args = ("data.source=text", f"data.path={text_corpus}", "data.langid=false", "data.max_docs_per_lang=1")
    local = build_local(cfg_for(tmp_path / "a", *args))
    remote = build(cfg_for(tmp_path / "b", *args), log=lambda *_: None)
    assert blocks_of(tmp_path / "a") == blocks_of(tmp_path / "b") and len(blocks_of(tmp_path / "a")) == 2
    assert quarantined(tmp_path / "a") == quarantined(tmp_path / "b")
    assert "over_max_docs_per_lang" in quarantined(tmp_path / "a")["in0:de:1"]
    for key in ("documents", "languages", "blocks", "sentences", "tokens"):
        assert local[key] == remote[key], key

    cfg = cfg_for(tmp_path / "a", *args)
    loc = location(cfg)
    files = [f"f{i}.parquet" for i in range(3)]
    table = pq.read_table(next((tmp_path / "a" / "run" / "corpus" / "part=blocks").glob("*.parquet")))
    for f in files:  # three files of different rows, so a wrong share or order shows
        pq.write_table(table.slice(0, 1 + files.index(f) % 2), tmp_path / "a" / "run" / "corpus" / f)
    shards = RankShards(loc, files, seed=0).configure({"train": None}, 2, None, None)
    for rank in range(2):
        mine, _ = share(files, rank, 2, 0)
        direct = [r for t in parquet_tables(loc, mine) for r in t.to_pylist()]
        streamed = [r for t in shard_tables(shards[rank]["train"]) for r in t.to_pylist()]
        assert streamed == direct and direct


def test_the_paper_config_reads_a_corpus_in_its_documented_layout(tmp_path, shared_data):
    """configs/pretrain/xlmr-base-8gpu.yaml's data settings on a tiny CC-100-style corpus made of NTREX documents
    (``<lang>.txt``, a sentence per line, blank lines between documents), with the tiny encoder."""
    from msm.data.readers import read_ntrex
    from msm.train.corpus import build_local

    folder = tmp_path / "cc100"
    folder.mkdir()
    docs = {iso: [r["sentences"] for r in read_ntrex(shared_data / "ntrex", "x", [tag], 3)]
            for iso, tag in (("de", "deu"), ("ru", "rus"))}
    for iso, ds in docs.items():
        (folder / f"{iso}.txt").write_text("\n\n".join("\n".join(d) for d in ds) + "\n", encoding="utf-8")
    paper = load_config(REPO / "configs" / "pretrain" / "xlmr-base-8gpu.yaml", PretrainConfig)
    assert paper.data.source == "text" and paper.data.path.startswith("s3://")
    cfg = load_config(REPO / "configs" / "pretrain" / "xlmr-base-8gpu.yaml", PretrainConfig, parse_overrides([
        f"data.path={folder}", f"run.output_dir={tmp_path / 'run'}", "model.encoder=tiny-random"]))
    manifest = build_local(cfg)
    assert manifest["documents"] == {"read": 6, "kept": 6, "quarantined": {}}
    def n_blocks(n: int) -> int:  # 32-sentence blocks; a 1-sentence tail is dropped
        return n // 32 + (n % 32 >= 2)

    assert manifest["languages"] == {iso: sum(n_blocks(len(d)) for d in ds) for iso, ds in docs.items()}
    assert manifest["sentences"] == sum(len(d) - (len(d) % 32 == 1) for ds in docs.values() for d in ds)
