"""The pretraining corpus stage (msm.train.corpus): sources, accounting of every record, Ray Data = in-process."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import msm
from msm.config import load_config, parse_overrides
from msm.errors import MSMError
from msm.train import corpus
from msm.train.config import PretrainConfig
from msm.train.corpus import (BLOCKS, CODE_SWITCHED, PREPARED, QUARANTINE, ROWS, Cap, _counts, _merge, _Writer,
                              build_local, load, location, reason_key, tokenised_rows)

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


def test_parquet_source_segments_text_like_jsonl(tmp_path):
    """``parquet`` is one of the sources that go through mining's prepare stage (segmentation): a paragraph becomes
    its sentences, as for jsonl."""
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": [" ".join(DE), " ".join(EN[:3])], "lang": ["de", "en"]}), path)
    manifest = build_local(cfg_for(tmp_path, "data.source=parquet", f"data.path={path}", "data.langid=false"))
    got = {r["doc_id"]: r for r in blocks_of(tmp_path)}
    assert sorted(got) == ["in0:a", "in0:b"] and manifest["documents"]["kept"] == 2
    assert [len(got[k]["input_ids"]) for k in ("in0:a", "in0:b")] == [4, 3]
    assert manifest["languages"] == {"de": 1, "en": 1}


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


# ---- the in-process driver against a reference written from the module docstring (issue 34) --------------------



def mined_output(folder: Path, docs: list[tuple[str, str, list[str] | None]]) -> Path:
    """An ``msm mine`` output as the ``mined`` source reads it: documents/*.parquet (doc_id, lang, sentences)."""
    (folder / "documents").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    pq.write_table(pa.table({"doc_id": [d for d, _, _ in docs], "lang": [lang for _, lang, _ in docs],
                             "sentences": pa.array([s for _, _, s in docs], pa.list_(pa.string()))}),
                   folder / "documents" / "part-00000.parquet")
    return folder


def ref_blocks(sentences: list[str], size: int) -> list[list[str]]:
    """Consecutive runs of ``size`` sentences; a run of fewer than 2 (the tail) is no block."""
    runs = [sentences[i:i + size] for i in range(0, len(sentences), size)]
    return [r for r in runs if len(r) >= 2]


# 23 documents in three languages, 0 to 9 sentences each (max_sentences 3: full blocks, tails of 1 and 2 sentences)
DOCS = [(f"doc{i:02d}", "de en fr".split()[i % 3] if i % 7 else "en",
         [f"Satz {i}.{j} mit {'sehr ' * (j % 4)}vielen Wörtern." for j in range((i * 7) % 10)])
        for i in range(23)]


def reference_corpus(docs, languages, cap, max_sentences, tok, max_tokens):
    """(blocks, quarantined) of the stages in the docstring's order: prepare (language selection), cap (first
    ``cap`` prepared documents of a language), tokenise (blocks of ``max_sentences``, each block tokenised as
    ``collate`` does)."""
    kept, quarantine, count = [], [], Counter()
    for doc_id, lang, sents in docs:
        sents = sents or []
        if languages and lang not in languages:
            quarantine.append({"doc_id": doc_id, "source": "mined",
                               "reason": f"language_not_selected: {lang!r} not in data.languages={languages}"})
            continue
        if cap is not None:
            count[lang] += 1
            if count[lang] > cap:
                quarantine.append({"doc_id": doc_id, "source": "mined", "reason": f"over_max_docs_per_lang: "
                                   f"more than data.max_docs_per_lang={cap} in {lang!r}"})
                continue
        bl = ref_blocks(sents, max_sentences)
        if not bl:
            quarantine.append({"doc_id": doc_id, "source": "mined", "reason": (
                f"too_few_sentences: {len(sents)} sentence(s); a block needs 2 (a masked sentence is predicted from "
                "its neighbours)")})
        for i, b in enumerate(bl):
            kept.append({"doc_id": doc_id, "block": i, "lang": lang,
                         "input_ids": tok(b, truncation=True, max_length=max_tokens)["input_ids"]})
    return kept, quarantine


def part_files(root: Path, part: str) -> list[Path]:
    return sorted((root / f"part={part}").glob("*.parquet"))


@pytest.mark.parametrize("rows_per_file, chunk", [(4, 3), (1, 256), (5, 1), (4096, 2), (7, 40)])
def test_every_document_is_written_once_across_files_and_chunks(tmp_path, rows_per_file, chunk):
    """Files of ``rows_per_file`` blocks (4,096 in production), records read in chunks of ``chunk``: the blocks and
    the quarantine on disk, in order, equal the reference; every file but the last is full; the manifest lists the
    files on disk with their rows, and counts summed over every chunk (with a per-language cap and a language
    selection at once, the cap counting across chunks)."""
    from msm.data.prepare import cached_tokenizer

    mined = mined_output(tmp_path / "mined", DOCS)
    cfg = cfg_for(tmp_path, "data.source=mined", f"data.path={mined}", "data.languages=[de,en]",
                  "data.max_docs_per_lang=5", "model.max_sentences=3", "model.max_tokens=6")
    logged = []
    with mock.patch.object(corpus, "ROWS_PER_FILE", rows_per_file):
        manifest = build_local(cfg, log=logged.append, chunk=chunk)
    tok = cached_tokenizer("tiny-random")
    want, want_q = reference_corpus(DOCS, ["de", "en"], 5, 3, tok, 6)
    assert len(want) > rows_per_file or rows_per_file == 4096  # the boundary is crossed (4,096: test_writer_...)
    root = tmp_path / "run" / "corpus"
    files = part_files(root, "blocks")
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(len(files))]
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert sizes == [rows_per_file] * (len(want) // rows_per_file) + ([len(want) % rows_per_file]
                                                                      if len(want) % rows_per_file else [])
    got = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert got == want  # each block once, in document order, tokenised as collate does
    assert pq.read_schema(files[0]) == BLOCKS
    got_q = [r for f in part_files(root, "quarantine") for r in pq.read_table(f).to_pylist()]
    assert got_q == want_q

    kept_docs = {r["doc_id"] for r in want}
    langs = Counter(r["lang"] for r in want)
    assert manifest["files"] == [{"path": f"part=blocks/{f.name}", "rows": n} for f, n in zip(files, sizes)]
    assert manifest["blocks"] == len(want)
    assert manifest["documents"] == {"read": len(DOCS), "kept": len(kept_docs),
                                     "quarantined": dict(Counter(q["reason"].split(":")[0] for q in want_q))}
    # by hand: fr 6 docs; de docs 3 6 9 12 15 | 18 over the cap, en 0 1 4 7 10 | 13 14 16 19 21 22; 0 1 0 sentences
    # in docs 0 3 10; kept de 6 9 12 15 (1 + 1 + 1 + 2 blocks of 3), en 1 4 7 (2 + 3 + 3 blocks)
    assert manifest["documents"] == {"read": 23, "kept": 7, "quarantined": {
        "language_not_selected": 6, "over_max_docs_per_lang": 7, "too_few_sentences": 3}}
    assert manifest["languages"] == {"de": 5, "en": 8} and manifest["blocks"] == 13
    assert manifest["languages"] == dict(sorted(langs.items())) and list(manifest["languages"]) == ["de", "en"]
    assert manifest["sentences"] == sum(len(r["input_ids"]) for r in want)
    assert manifest["tokens"] == sum(len(s) for r in want for s in r["input_ids"])
    assert manifest["pad_token_id"] == tok.pad_token_id == 1
    assert manifest["code_version"] == msm.code_version()
    assert isinstance(manifest["seconds"], float) and manifest["seconds"] == round(manifest["seconds"], 1) >= 0
    assert manifest["settings"] == corpus.settings(cfg)
    key = json.dumps([manifest["settings"], manifest["files"], manifest["languages"]])
    assert manifest["fingerprint"] == hashlib.sha256(key.encode()).hexdigest()[:16]
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert not (tmp_path / "run" / ".corpus.staging").exists()
    d = manifest["documents"]
    assert logged == [f"corpus: {d['kept']} of {d['read']} documents kept, {manifest['blocks']} blocks in 2 "
                      f"language(s), quarantined {d['quarantined']} -> {root}"]


def test_writer_files_hold_4096_rows(tmp_path):
    """The production size: 8,193 rows added in uneven pieces make files of 4,096, 4,096 and 1 rows, in order."""
    from msm.uri import resolve

    assert corpus.ROWS_PER_FILE == 4096
    rows = [{"doc_id": f"d{i}", "block": i % 3, "lang": "de", "input_ids": [[i]], "extra": 1} for i in range(8193)]
    w = _Writer(resolve(tmp_path / "out"), BLOCKS)
    for a, b in ((0, 3000), (3000, 4097), (4097, 4097), (4097, 8193)):
        w.add(rows[a:b])
    w.close()
    files = sorted((tmp_path / "out").glob("*.parquet"))
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [4096, 4096, 1]
    assert [r for f in files for r in pq.read_table(f).to_pylist()] == [
        {k: r[k] for k in BLOCKS.names} for r in rows]


@hsettings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.integers(0, 9), max_size=6), limit=st.integers(1, 5))
def test_writer_splits_any_sequence_of_additions(tmp_path_factory, pieces, limit):
    from msm.uri import resolve

    out = tmp_path_factory.mktemp("w")
    rows, at = [], 0
    with mock.patch.object(corpus, "ROWS_PER_FILE", limit):
        w = _Writer(resolve(out), QUARANTINE)
        for n in pieces:
            new = [{"doc_id": f"d{at + i}", "source": "s", "reason": "r"} for i in range(n)]
            w.add(new)
            rows += new
            at += n
        w.close()
    files = sorted(out.glob("*.parquet"))
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(len(files))]
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    total = len(rows)
    # full files, then the rest; nothing at all still writes one empty file (the part's schema is always there)
    assert sizes == [limit] * (total // limit) + ([total % limit] if total % limit or not total else [])
    assert [r for f in files for r in pq.read_table(f).to_pylist()] == rows
    assert all(pq.read_schema(f) == QUARANTINE for f in files)


def test_reuse_rebuild_and_refusal_follow_the_corpus_settings(tmp_path):
    from msm.train.corpus import refuse_other_settings

    mined = mined_output(tmp_path / "mined", DOCS[:6])
    base = ("data.source=mined", f"data.path={mined}", "model.max_sentences=3")
    cfg = cfg_for(tmp_path, *base)
    assert load(cfg) is None
    refuse_other_settings(cfg)  # nothing committed: nothing to refuse
    logged = []
    first = build_local(cfg, log=logged.append, resuming=True)
    assert load(cfg) == first and len(logged) == 1
    # the batching settings are the stream's: the same corpus is reused, nothing is logged or rewritten
    for same in ("data.docs_per_batch=3", "data.shuffle_buffer=7", "data.single_language_batches=false"):
        again = cfg_for(tmp_path, *base, same)
        assert corpus.settings(again) == corpus.settings(cfg)
        assert build_local(again, log=logged.append, resuming=True) == first and len(logged) == 1
    for other in ("data.max_docs_per_lang=1", "data.languages=[de]", "model.max_sentences=4", "model.max_tokens=12",
                  "model.encoder=xlm-roberta-base"):
        changed = cfg_for(tmp_path, *base, other)
        assert corpus.settings(changed) != corpus.settings(cfg) and load(changed) is None, other
        with pytest.raises(MSMError) as err:
            build_local(changed, log=logged.append, resuming=True)
        assert str(err.value) == (
            f"{tmp_path / 'run' / 'corpus'}: this run's corpus was built with other data settings than the config's "
            "(data.*, model.encoder / max_sentences / max_tokens); resume with the run's own config (msm pretrain "
            "--resume <run dir>) or start a new run in another run.output_dir")
    rebuilt = build_local(cfg_for(tmp_path, *base, "data.max_docs_per_lang=1"), log=logged.append)
    assert len(logged) == 2 and rebuilt["documents"]["kept"] < first["documents"]["kept"]
    assert rebuilt["settings"]["data"]["max_docs_per_lang"] == 1


def test_settings_are_the_data_section_without_batching_and_the_model_shape(tmp_path):
    import dataclasses

    cfg = cfg_for(tmp_path, "data.corpus_dir=/somewhere", "data.docs_per_batch=3", "model.max_tokens=12")
    data = dataclasses.asdict(cfg.data)
    for k in ("docs_per_batch", "single_language_batches", "shuffle_buffer", "corpus_dir"):
        del data[k]
    assert corpus.settings(cfg) == {"data": data, "encoder": "tiny-random", "max_sentences": 8, "max_tokens": 12}


def test_location_is_the_corpus_dir_or_the_runs_corpus_folder(tmp_path):
    assert location(cfg_for(tmp_path)).path == str(tmp_path / "run" / "corpus")
    assert location(cfg_for(tmp_path, f"data.corpus_dir={tmp_path / 'shared'}")).path == str(tmp_path / "shared")


def test_the_manifest_is_indented_utf8_text(tmp_path):
    mined = mined_output(tmp_path / "gemeinsamer Ordner für Dokumente", DOCS[:4])
    build_local(cfg_for(tmp_path, "data.source=mined", f"data.path={mined}"), log=lambda *_: None)
    text = (tmp_path / "run" / "corpus" / "manifest.json").read_text(encoding="utf-8")
    assert "für Dokumente" in text and text.startswith('{\n  "settings": {\n    "data": {')


def test_an_empty_dataset_names_what_was_quarantined(tmp_path):
    mined = mined_output(tmp_path / "m1", [("a", "de", ["Nur ein Satz."]), ("b", "de", None)])
    with pytest.raises(MSMError) as err:
        build_local(cfg_for(tmp_path / "1", "data.source=mined", f"data.path={mined}"))
    assert str(err.value) == ("empty dataset: no document of data.source='mined' gave a block of 2 or more sentences "
                              "({'too_few_sentences': 2}); check data.source, data.path / data.data_dir and "
                              "data.languages")
    nothing = mined_output(tmp_path / "m2", [])
    with pytest.raises(MSMError, match=r"sentences \(no document read\); check"):
        build_local(cfg_for(tmp_path / "2", "data.source=mined", f"data.path={nothing}"))


def test_a_corpus_without_quarantine_logs_none_and_keeps_an_empty_quarantine_file(tmp_path):
    mined = mined_output(tmp_path / "mined", [("a", "de", ["Eins.", "Zwei."]), ("b", "en", ["One.", "Two.", "3."])])
    logged = []
    manifest = build_local(cfg_for(tmp_path, "data.source=mined", f"data.path={mined}"), log=logged.append)
    root = tmp_path / "run" / "corpus"
    assert logged == [f"corpus: 2 of 2 documents kept, 2 blocks in 2 language(s), quarantined none -> {root}"]
    assert manifest["documents"] == {"read": 2, "kept": 2, "quarantined": {}}
    q = part_files(root, "quarantine")
    assert len(q) == 1 and pq.read_table(q[0]).num_rows == 0 and pq.read_schema(q[0]) == QUARANTINE


def test_tokenised_rows_cut_blocks_and_slice_the_ids_of_each():
    calls = []

    def tok(texts, truncation, max_length):  # one id per character, cut at max_length when truncating
        calls.append((list(texts), truncation, max_length))
        return {"input_ids": [[ord(c) for c in t][:max_length] if truncation else [ord(c) for c in t] for t in texts]}

    rows = [{"doc_id": "a", "lang": "de", "source": "s", "sentences": ["ab", "cdef", "g", "hi", "j"], "reason": None},
            {"doc_id": "b", "lang": "en", "source": "t", "sentences": ["x"], "reason": None},
            {"doc_id": "c", "lang": "en", "source": "u", "sentences": None, "reason": None},
            {"doc_id": "d", "lang": None, "source": "v", "sentences": ["p", "q"], "reason": "empty: no text"}]
    got = tokenised_rows(rows, tok, max_sentences=2, max_tokens=3)
    few = "sentence(s); a block needs 2 (a masked sentence is predicted from its neighbours)"
    assert got == [
        {"doc_id": "a", "block": 0, "lang": "de", "input_ids": [[97, 98], [99, 100, 101]], "source": None,
         "reason": None, "part": "blocks"},
        {"doc_id": "a", "block": 1, "lang": "de", "input_ids": [[103], [104, 105]], "source": None, "reason": None,
         "part": "blocks"},  # "j", a 1-sentence tail, is no block
        {"doc_id": "b", "block": None, "lang": "en", "input_ids": None, "source": "t",
         "reason": f"too_few_sentences: 1 {few}", "part": "quarantine"},
        {"doc_id": "c", "block": None, "lang": "en", "input_ids": None, "source": "u",
         "reason": f"too_few_sentences: 0 {few}", "part": "quarantine"},
        {"doc_id": "d", "block": None, "lang": None, "input_ids": None, "source": "v", "reason": "empty: no text",
         "part": "quarantine"}]
    assert calls == [(["ab", "cdef", "g", "hi"], True, 3)]  # one call per document, truncated as collate does


def test_the_cap_counts_kept_documents_of_each_language_across_calls():
    cap = Cap(2)
    first = [{"doc_id": "1", "lang": "de", "source": "s", "reason": None},
             {"doc_id": "2", "lang": "de", "source": "s", "reason": "empty: x"},  # quarantined: not counted
             {"doc_id": "3", "lang": "en", "source": "s", "reason": None},
             {"doc_id": "4", "lang": "de", "source": CODE_SWITCHED, "reason": None}]  # a copy: not counted
    second = [{"doc_id": "5", "lang": "de", "source": "s", "reason": None},
              {"doc_id": "6", "lang": "de", "source": "s", "reason": None},
              {"doc_id": "7", "lang": "en", "source": "s", "reason": None},
              {"doc_id": "8", "lang": "de", "source": CODE_SWITCHED, "reason": None}]
    assert cap(first) is first and [r["reason"] for r in first] == [None, "empty: x", None, None]
    assert [r["reason"] for r in cap(second)] == [
        None, "over_max_docs_per_lang: more than data.max_docs_per_lang=2 in 'de'", None, None]
    assert cap.count == {"de": 3, "en": 2}
    off = [{"doc_id": str(i), "lang": "de", "source": "s", "reason": None} for i in range(5)]
    assert [r["reason"] for r in Cap(None)(off)] == [None] * 5


def test_counts_and_their_merge_sum_every_part():
    rows = [{"reason": "too_few_sentences: 1: x"}, {"reason": "empty: a:b"}, {"reason": "too_few_sentences"},
            {"reason": None, "lang": "de", "block": 0, "input_ids": [[1, 2, 3], [4]]},
            {"reason": None, "lang": "de", "block": 1, "input_ids": [[5]]},
            {"lang": "en", "block": 0, "input_ids": [[6, 7], [8, 9], [1]]}]  # a blocks-only row (no reason column)
    a = _counts(rows)
    assert a == {"languages": {"de": 2, "en": 1}, "kept": 2, "quarantined": {"too_few_sentences": 2, "empty": 1},
                 "sentences": 6, "tokens": 10}
    b = _counts([{"reason": "empty: b"}, {"reason": "bad: c"}, {"lang": "fr", "block": 0, "input_ids": [[1, 1]]}])
    assert _merge([a, b, a]) == {"languages": {"de": 4, "en": 2, "fr": 1}, "kept": 5,
                                 "quarantined": {"too_few_sentences": 4, "empty": 3, "bad": 1},
                                 "sentences": 13, "tokens": 22}
    assert _merge([]) == {"languages": {}, "kept": 0, "quarantined": {}, "sentences": 0, "tokens": 0}
    assert reason_key("a: b: c") == "a" and reason_key("plain") == "plain" and reason_key(":x") == ""


def test_prepared_rows_of_sentence_sources_select_languages_and_keep_reader_errors(tmp_path):
    """Mined documents are selected by ``data.languages`` (ISO codes) here; NTREX and Bible records come from a
    reader that read only the selected tags / translation codes, so a record's ISO code is never held against them
    (Bible ``languages: [k, s]`` reads English and German chapters)."""
    def rec(doc_id, lang, sentences, error=None, source="mined"):
        return {"doc_id": doc_id, "lang": lang, "source": source, "url": None, "text": "", "sentences": sentences,
                "error": error}

    records = [rec("1", "de", ["a", "b"]), rec("2", "fr", ["c"]), rec("3", "fr", [], "bad_record: x.tsv:3")]
    got = corpus.prepared_rows(records, cfg_for(tmp_path, "data.source=mined", "data.path=x",
                                                "data.languages=[de,en]"))
    assert got == [
        {"doc_id": "1", "lang": "de", "source": "mined", "sentences": ["a", "b"], "reason": None},
        {"doc_id": "2", "lang": "fr", "source": "mined", "sentences": ["c"],
         "reason": "language_not_selected: 'fr' not in data.languages=['de', 'en']"},
        {"doc_id": "3", "lang": "fr", "source": "mined", "sentences": [], "reason": "bad_record: x.tsv:3"}]
    assert list(got[0]) == PREPARED.names
    every = [None, None, "bad_record: x.tsv:3"]
    assert [r["reason"] for r in corpus.prepared_rows(records, cfg_for(tmp_path, "data.source=mined",
                                                                       "data.path=x"))] == every
    bible = [rec("k:40.1", "en", ["a", "b"], source="bible"), rec("s:40.1", "de", ["c", "d"], source="bible")]
    assert [r["reason"] for r in corpus.prepared_rows(bible, cfg_for(tmp_path, "data.source=bible",
                                                                     "data.languages=[k,s]"))] == [None, None]
    ntrex = [rec("deu:1", "deu", ["a", "b"], source="ntrex")]
    assert [r["reason"] for r in corpus.prepared_rows(ntrex, cfg_for(tmp_path, "data.languages=[deu]"))] == [None]


def test_sentence_sources_load_their_selected_documents(tmp_path, shared_data):
    """``load_documents`` of the Bible (translation codes) and NTREX (tags) against their readers: the first
    ``max_docs_per_lang`` documents of each selected translation / language."""
    from msm.data.readers import read_bible, read_ntrex
    from msm.train.corpus import load_documents
    from msm.train.data import TRAIN_BOOKS

    bible = load_documents(cfg_for(tmp_path, "data.source=bible", "data.languages=[k,s]", "data.max_docs_per_lang=2"))
    want = [(r["sentences"], r["lang"]) for r in read_bible(None, "x", ["k", "s"], 2, TRAIN_BOOKS)]
    assert bible == want and [lang for _, lang in bible] == ["en", "en", "de", "de"]
    ntrex = load_documents(cfg_for(tmp_path, f"data.data_dir={shared_data}", "data.languages=[deu,fra]",
                                   "data.max_docs_per_lang=2"))
    want = [(r["sentences"], r["lang"]) for r in read_ntrex(shared_data / "ntrex", "x", ["deu", "fra"], 2)]
    assert ntrex == want and len(ntrex) == 4


def test_mine_config_keeps_sentences_whole_and_passes_the_data_settings(tmp_path):
    m = corpus.mine_config(cfg_for(tmp_path, "data.languages=[de]", "data.langid=false"))
    assert (m.languages, m.langid.enabled, m.segment.max_tokens, m.embed.model) == (["de"], False, 0, "tiny-random")
    assert corpus.mine_config(cfg_for(tmp_path)).langid.enabled is True


def test_the_ray_data_callables_are_the_plain_functions_on_arrow_tables(tmp_path):
    """``_prepare_batch``, ``_CapBatches`` and ``_tokenise_batch`` (run here on Arrow tables, without Ray) against
    the plain functions on the same rows, with the stage schemas."""
    from msm.data.prepare import cached_tokenizer
    from msm.data.schema import RECORD, record

    cfg = cfg_for(tmp_path, "data.source=mined", "data.path=x", "model.max_sentences=3", "model.max_tokens=6",
                  "data.languages=[de,en]")
    records = [record(d, lang=lang, source="mined", sentences=s) for d, lang, s in DOCS]
    prepared = corpus._prepare_batch(pa.Table.from_pylist(records, schema=RECORD), cfg)
    assert prepared.schema == PREPARED and prepared.to_pylist() == corpus.prepared_rows(records, cfg)
    capped = corpus._CapBatches(2)(prepared)
    assert capped.schema == PREPARED and capped.to_pylist() == Cap(2)(corpus.prepared_rows(records, cfg))
    tokenised = corpus._tokenise_batch(capped, cfg)
    assert tokenised.schema == ROWS
    assert tokenised.to_pylist() == tokenised_rows(capped.to_pylist(), cached_tokenizer("tiny-random"), 3, 6)
    assert corpus._pad_token_id(cfg) == 1


def test_the_ordered_context_keeps_the_read_order_only_inside_and_restores_the_callers():
    from ray.data.context import DataContext

    opts = DataContext.get_current().execution_options
    before = opts.preserve_order
    try:
        for previous, on in ((False, True), (False, False), (True, False), (True, True)):
            opts.preserve_order = previous
            with corpus._ordered(on):
                assert opts.preserve_order is (previous or on)
            assert opts.preserve_order is previous
        opts.preserve_order = False
        with pytest.raises(KeyError), corpus._ordered(True):
            raise KeyError("x")
        assert opts.preserve_order is False
    finally:
        opts.preserve_order = before


@pytest.fixture
def no_ray_data(monkeypatch):
    """The paths below must finish before Ray Data: reaching it fails the test instead of starting Ray."""
    def refuse(*_a, **_k):
        raise AssertionError("Ray Data reached")

    monkeypatch.setattr(corpus, "ray_records", refuse)
    monkeypatch.setattr(corpus, "read_parquet_files", refuse)


def test_the_ray_driver_reuses_or_refuses_a_committed_corpus_before_ray_data(tmp_path, no_ray_data):
    mined = mined_output(tmp_path / "mined", DOCS[:5])
    cfg = cfg_for(tmp_path, "data.source=mined", f"data.path={mined}")
    built = build_local(cfg, log=lambda *_: None)
    logged = []
    assert corpus.build(cfg, log=logged.append, resuming=True) == built
    assert logged == [f"corpus: reusing {tmp_path / 'run' / 'corpus'} ({built['blocks']} blocks)"]
    with pytest.raises(MSMError, match="corpus was built with other data settings"):
        corpus.build(cfg_for(tmp_path, "data.source=mined", f"data.path={mined}", "data.max_docs_per_lang=1"),
                     log=logged.append, resuming=True)
    assert corpus._counted(corpus.resolve(tmp_path / "nothing"), "blocks") == _merge([])  # no file: no Ray Data


def test_load_documents_gives_the_kept_documents_of_sentence_sources(tmp_path):
    from msm.train.corpus import load_documents

    docs = [("a", "de", ["1", "2"]), ("b", "de", ["3"]), ("c", "en", ["4", "5"]), ("d", "de", ["6", "7"])]
    mined = mined_output(tmp_path / "mined", docs)
    cfg = cfg_for(tmp_path, "data.source=mined", f"data.path={mined}", "data.max_docs_per_lang=2")
    assert load_documents(cfg) == [(["1", "2"], "de"), (["3"], "de"), (["4", "5"], "en")]  # the cap: first 2 of de
    with pytest.raises(MSMError) as err:
        load_documents(cfg_for(tmp_path, "data.source=text", "data.path=x"))
    assert str(err.value) == "load_documents: data.source 'text' is a corpus; it is streamed, not loaded"


def test_chunks_cut_a_stream_into_lists_of_n():
    assert list(corpus._chunks(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(corpus._chunks(iter(range(6)), 3)) == [[0, 1, 2], [3, 4, 5]]
    assert list(corpus._chunks(iter(range(2)), 1)) == [[0], [1]]
    assert list(corpus._chunks(iter(()), 4)) == []


def test_text_documents_are_cleaned_by_the_prepare_stage(tmp_path):
    """``text`` goes through mining's clean stage (a document of 2 sentences and 8 characters is too short; the
    file stem gives the language), not straight to blocks as the sentence sources do."""
    folder = tmp_path / "cc"
    folder.mkdir()
    (folder / "de.txt").write_text("\n".join(DE[:2]) + "\n\nJa.\nNein.\n")
    manifest = build_local(cfg_for(tmp_path, "data.source=text", f"data.path={folder}", "data.langid=false"),
                           log=lambda *_: None)
    assert manifest["documents"] == {"read": 2, "kept": 1, "quarantined": {"too_short": 1}}
    assert quarantined(tmp_path)["in0:de:1"] == "too_short: 8 chars < clean.min_chars=20"


def test_arrow_batches_keep_the_stage_schemas_when_every_row_is_kept(tmp_path):
    """A batch without one quarantined row has all-null ``reason`` / ``source`` columns: the Ray Data callables
    still return the stage schemas (string columns, not Arrow's null type), so the blocks of one dataset agree."""
    from msm.data.schema import RECORD, record

    cfg = cfg_for(tmp_path, "data.source=mined", "data.path=x", "model.max_sentences=3", "model.max_tokens=6")
    records = [record("a", lang="de", source="mined", sentences=["Eins.", "Zwei."]),
               record("b", lang="en", source="mined", sentences=["One.", "Two.", "Three."])]
    prepared = corpus._prepare_batch(pa.Table.from_pylist(records, schema=RECORD), cfg)
    capped = corpus._CapBatches(5)(prepared)
    tokenised = corpus._tokenise_batch(capped, cfg)
    assert (prepared.schema, capped.schema, tokenised.schema) == (PREPARED, PREPARED, ROWS)
    assert tokenised.column("part").to_pylist() == ["blocks", "blocks"]


def test_a_failed_build_leaves_only_its_hidden_staging_folder_which_the_next_build_replaces(tmp_path):
    """``.corpus.staging`` beside the corpus (msm.uri.sibling: fixed per output, so a re-run finds it): a build
    that fails leaves no corpus; the next one deletes what is left there first."""
    short = mined_output(tmp_path / "short", [("a", "de", ["Nur ein Satz."])])
    cfg = cfg_for(tmp_path, "data.source=mined", f"data.path={short}")
    with pytest.raises(MSMError, match="empty dataset"):
        build_local(cfg, log=lambda *_: None)
    staging = tmp_path / "run" / ".corpus.staging"
    assert staging.is_dir() and not (tmp_path / "run" / "corpus").exists()
    (staging / "part=blocks" / "part-00007.parquet").write_bytes(b"left by a crash")
    good = mined_output(tmp_path / "good", [("b", "de", ["Eins.", "Zwei."])])
    t0 = time.perf_counter()
    manifest = build_local(cfg_for(tmp_path, "data.source=mined", f"data.path={good}"), log=lambda *_: None)
    elapsed = time.perf_counter() - t0
    assert not staging.exists()
    assert sorted(p.name for p in (tmp_path / "run" / "corpus" / "part=blocks").iterdir()) == ["part-00000.parquet"]
    assert [f["path"] for f in manifest["files"]] == ["part=blocks/part-00000.parquet"]
    assert 0 <= manifest["seconds"] <= round(elapsed, 1) + 0.05  # the build's own time


# ---- the Ray Data driver, its graph run by an in-process stand-in for Ray Data ------------------------------------

class InProcessDataset:
    """Ray Data's ``Dataset`` as far as :func:`msm.train.corpus.build` and ``_counted`` use it, executed in this
    process with Ray Data's semantics: a step runs its function on Arrow batches of ``batch_size`` rows within each
    block; a callable class runs in an actor pool, its batches dealt round-robin over the pool's actors (several
    when the pool may grow); the order of the blocks is kept only under ``preserve_order`` (else a step may hand
    them on in another order: here, reversed); a user function's error reaches the driver as a wrapper that kept
    only its text (Ray Data's ``UserCodeException``); ``write_parquet`` writes Hive partitions without the
    partition column, files of at most ``max_rows_per_file`` rows."""

    def __init__(self, blocks: list[pa.Table], calls: list):
        self.blocks, self.calls = blocks, calls

    def map_batches(self, fn, *, batch_format, batch_size=None, fn_kwargs=None, fn_constructor_kwargs=None,
                    compute=None, num_cpus=None):
        from ray.data import ActorPoolStrategy
        from ray.data.context import DataContext

        assert batch_format == "pyarrow", batch_format  # every function of the graph takes an Arrow table
        ordered = DataContext.get_current().execution_options.preserve_order
        self.calls.append({"fn": getattr(fn, "__name__", fn), "ordered": ordered, "compute": compute})
        if isinstance(fn, type):
            if not isinstance(compute, ActorPoolStrategy):
                raise ValueError("a callable class needs an actor pool (compute=ActorPoolStrategy(...))")
            actors = [fn(**(fn_constructor_kwargs or {})) for _ in range(compute.max_size or 2)]
        else:
            actors = [fn]
        out, k = [], 0
        for block in self.blocks:
            step = batch_size or max(block.num_rows, 1)
            for i in range(0, max(block.num_rows, 1), step):
                try:
                    out.append(actors[k % len(actors)](block.slice(i, step), **(fn_kwargs or {})))
                except Exception as exc:
                    raise RuntimeError(f"ray.exceptions.UserCodeException: {type(exc).__module__}."
                                       f"{type(exc).__qualname__}: {exc}") from None
                k += 1
        return InProcessDataset(out if ordered else out[::-1], self.calls)

    def write_parquet(self, path, *, filesystem, partition_cols, max_rows_per_file):
        table = pa.concat_tables(self.blocks)
        (col,) = partition_cols
        for value in sorted(set(table.column(col).to_pylist())):
            part = table.filter(pc.equal(table.column(col), value)).drop_columns([col])
            folder = f"{path}/{col}={value}"
            filesystem.create_dir(folder, recursive=True)
            for n, i in enumerate(range(0, part.num_rows, max_rows_per_file)):
                with filesystem.open_output_stream(f"{folder}/{n:06d}_{i}.parquet") as fh:
                    pq.write_table(part.slice(i, max_rows_per_file), fh)

    def take_all(self) -> list[dict]:
        return [r for b in self.blocks for r in b.to_pylist()]


@pytest.fixture
def in_process_ray_data(monkeypatch):
    """``build`` over the stand-in: the records of the in-process reader as blocks of 4, ``read_parquet_files`` as
    the files' own columns, a remote call run here. Returns the list of map_batches steps."""
    import ray
    import ray.data  # noqa: F401  (imported before ray.remote is replaced: its modules decorate with it)

    from msm.data.schema import RECORD
    from msm.train.data import local_records

    calls = []

    def records(cfg):
        recs = list(local_records(cfg))
        return InProcessDataset([pa.Table.from_pylist(recs[i:i + 4], schema=RECORD)
                                 for i in range(0, len(recs), 4)], calls)

    def read_files(root, files, columns):
        return InProcessDataset([pq.read_table(root.fs.open_input_file(root.join(f).path), columns=columns)
                                 for f in files], calls)

    class Remote:
        def __init__(self, fn):
            self.fn = fn

        def remote(self, *args):
            return self.fn(*args)

    monkeypatch.setattr(corpus, "ray_records", records)
    monkeypatch.setattr(corpus, "read_parquet_files", read_files)
    real = ray.remote

    def remote(*args, **options):  # ray.remote(num_cpus=...)(fn): run here; @ray.remote of Ray's own modules: Ray's
        return real(*args, **options) if args else Remote

    monkeypatch.setattr(ray, "remote", remote)
    monkeypatch.setattr(ray, "get", lambda ref: ref)
    return calls


def staged_rows(root: Path, part: str, keys: tuple[str, ...]) -> list[dict]:
    return sorted(({k: r[k] for k in keys} for f in part_files(root, part) for r in pq.read_table(f).to_pylist()),
                  key=lambda r: (r["doc_id"], r.get("block") or 0))


@pytest.mark.parametrize("cap", [None, 4])
def test_the_ray_data_graph_builds_what_the_in_process_driver_builds(tmp_path, in_process_ray_data, cap):
    """The same documents through ``build`` (prepare, the per-language cap on one actor in read order, tokenise,
    a partitioned write, counts from the staged files) and through ``build_local``: the same blocks, quarantine and
    counts; files of at most 5 blocks; the read order kept only while the cap needs it."""
    from ray.data.context import DataContext

    mined = mined_output(tmp_path / "mined", DOCS)
    args = ("data.source=mined", f"data.path={mined}", "data.languages=[de,en]", "model.max_sentences=3",
            f"data.max_docs_per_lang={cap if cap else 'null'}")
    opts = DataContext.get_current().execution_options
    before, opts.preserve_order = opts.preserve_order, False
    try:
        with mock.patch.object(corpus, "ROWS_PER_FILE", 5):
            logged = []
            remote = corpus.build(cfg_for(tmp_path / "ray", *args), log=logged.append)
            local = build_local(cfg_for(tmp_path / "local", *args), log=lambda *_: None)
        assert opts.preserve_order is False  # the caller's setting, restored
    finally:
        opts.preserve_order = before
    ray_root, local_root = tmp_path / "ray" / "run" / "corpus", tmp_path / "local" / "run" / "corpus"
    keys = ("doc_id", "block", "lang", "input_ids")
    assert staged_rows(ray_root, "blocks", keys) == staged_rows(local_root, "blocks", keys)
    qkeys = ("doc_id", "source", "reason")
    assert staged_rows(ray_root, "quarantine", qkeys) == staged_rows(local_root, "quarantine", qkeys)
    for key in ("documents", "languages", "blocks", "sentences", "tokens", "pad_token_id", "settings"):
        assert remote[key] == local[key], key
    assert remote["documents"]["quarantined"].get("over_max_docs_per_lang", 0) == (2 + 7 if cap else 0)  # de 6, en 11
    files = part_files(ray_root, "blocks")
    assert remote["files"] == [{"path": f"part=blocks/{f.name}", "rows": pq.ParquetFile(f).metadata.num_rows}
                               for f in files]
    assert max(f["rows"] for f in remote["files"]) == 5 and len(files) >= 3
    assert [c["fn"] for c in in_process_ray_data] == (
        ["_prepare_batch"] + (["_CapBatches"] if cap else []) + ["_tokenise_batch", "<lambda>", "<lambda>"])
    graph = in_process_ray_data[:-2]  # the two counting reads come after the graph, order-free
    assert [c["ordered"] for c in graph] == [True] * len(graph)  # always: the same corpus on any cluster
    d = remote["documents"]
    assert logged == [f"corpus: {d['kept']} of {d['read']} documents kept, {remote['blocks']} blocks in 2 "
                      f"language(s), quarantined {d['quarantined']} -> {ray_root}"]
    assert not (tmp_path / "ray" / "run" / ".corpus.staging").exists()


def test_an_error_inside_a_ray_data_task_reaches_the_user_as_its_own_message(tmp_path, in_process_ray_data,
                                                                             monkeypatch):
    mined = mined_output(tmp_path / "mined", DOCS[:8])

    def broken(*_a, **_k):
        raise MSMError("tokenizer 'x': not found; check model.encoder")

    monkeypatch.setattr(corpus, "_tokenizer", broken)
    with pytest.raises(MSMError) as err:
        corpus.build(cfg_for(tmp_path, "data.source=mined", f"data.path={mined}"), log=lambda *_: None)
    assert str(err.value) == "tokenizer 'x': not found; check model.encoder"


def test_the_ray_driver_replaces_a_crashed_runs_staging_and_rebuilds_on_other_settings(tmp_path,
                                                                                       in_process_ray_data):
    """What a crashed build left in ``.corpus.staging`` is deleted before the write (none of it is published); a
    build that is not resuming rebuilds a corpus of other settings instead of refusing it."""
    mined = mined_output(tmp_path / "mined", DOCS[:9])
    left = tmp_path / "run" / ".corpus.staging" / "part=blocks"
    left.mkdir(parents=True)
    (left / "part-00009.parquet").write_bytes(b"left by a crash")
    first = corpus.build(cfg_for(tmp_path, "data.source=mined", f"data.path={mined}"), log=lambda *_: None)
    assert not left.parent.exists()
    on_disk = sorted(f"part=blocks/{f.name}" for f in part_files(tmp_path / "run" / "corpus", "blocks"))
    assert on_disk == sorted(f["path"] for f in first["files"]) and "part=blocks/part-00009.parquet" not in on_disk
    other = corpus.build(cfg_for(tmp_path, "data.source=mined", f"data.path={mined}", "data.max_docs_per_lang=1"),
                         log=lambda *_: None)
    assert other["settings"]["data"]["max_docs_per_lang"] == 1
    assert other["documents"]["kept"] < first["documents"]["kept"] and load(cfg_for(
        tmp_path, "data.source=mined", f"data.path={mined}", "data.max_docs_per_lang=1")) == other


def test_the_same_mined_set_in_another_file_order_gives_the_same_corpus(tmp_path):
    """A mined output's documents/ holds its documents in the order the mining tasks finished (it varies from run
    to run and with the cluster's shape): the corpus reads them by id, so the same set gives the same blocks."""
    def two_files(folder: Path, docs) -> Path:
        mined_output(folder, docs[: len(docs) // 2])
        half = docs[len(docs) // 2:]
        pq.write_table(pa.table({"doc_id": [d for d, _, _ in half], "lang": [lang for _, lang, _ in half],
                                 "sentences": pa.array([s for _, _, s in half], pa.list_(pa.string()))}),
                       folder / "documents" / "part-00001.parquet")
        return folder

    shuffled = DOCS[::-1][5:] + DOCS[::-1][:5]
    runs = []
    for name, docs in (("a", DOCS), ("b", shuffled)):
        mined = two_files(tmp_path / f"mined-{name}", docs)
        cfg = cfg_for(tmp_path / name, "data.source=mined", f"data.path={mined}", "model.max_sentences=3",
                      "data.max_docs_per_lang=4")
        build_local(cfg, log=lambda *_: None)
        runs.append([r for f in part_files(tmp_path / name / "run" / "corpus", "blocks")
                     for r in pq.read_table(f).to_pylist()])
    assert runs[0] == runs[1] and runs[0]
    assert [r["doc_id"] for r in runs[0]] == sorted(r["doc_id"] for r in runs[0])
