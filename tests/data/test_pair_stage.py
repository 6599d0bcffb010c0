"""The pair stage (msm.data.pair_stage) on hand-made staged partitions: documents of uncertain language."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msm.data.config import AlignConfig, PairConfig
from msm.data.embed import document_embeddings, nested_vectors
from msm.data.pair_stage import pair_language_pair, uncertain_language
from msm.uri import resolve

N, DIM = 30, 16


def write_part(root, lang: str, sentences: np.ndarray, flags: list[list[str]], declared: list[str | None]) -> None:
    """One staged ``part=<lang>`` file: doc ``<lang>-<i>`` holds ``sentences[i]`` (2, DIM), keys as in prepare."""
    emb = sentences.reshape(-1, DIM).astype(np.float32)
    offsets = np.arange(0, 2 * len(sentences) + 1, 2)
    docs = document_embeddings(emb, offsets)
    table = pa.table({
        "doc_id": [f"{lang}-{i:02d}" for i in range(len(sentences))], "declared_lang": pa.array(declared, pa.string()),
        "flags": pa.array(flags, pa.list_(pa.string())),
        "sentences": [["x" * 40, "y" * 30]] * len(sentences),
        "sentence_embeddings": nested_vectors(emb, offsets),
        "doc_embedding": pa.FixedSizeListArray.from_arrays(pa.array(docs.reshape(-1), pa.float32()), DIM)})
    (root / f"part={lang}").mkdir(parents=True)
    pq.write_table(table, root / f"part={lang}" / "0.parquet")


@pytest.fixture
def staged(tmp_path):
    """en and de translations (noisy copies); en-03 and de-07 detected below langid.min_confidence with no
    language declared; de-11 flagged the same but declared."""
    rng = np.random.default_rng(0)
    src = rng.normal(size=(N, 2, DIM))
    tgt = src + 0.1 * rng.normal(size=src.shape)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    low = ["low_lang_confidence"]
    write_part(tmp_path, "en", unit(src), [low if i == 3 else [] for i in range(N)], [None] * N)
    write_part(tmp_path, "de", unit(tgt), [low if i in (7, 11) else ["lang_relabelled"] if i == 5 else []
                                           for i in range(N)], ["de" if i == 11 else None for i in range(N)])
    return tmp_path


def pairs_of(root, **pair):
    out = root / "pairs.parquet"
    summary = pair_language_pair(resolve(root), "en", "de", PairConfig(**pair), AlignConfig(), resolve(out))
    got = pq.read_table(out, columns=["src_doc_id", "tgt_doc_id"]).to_pydict()
    return set(zip(got["src_doc_id"], got["tgt_doc_id"])), summary


def test_uncertain_language_needs_the_flag_and_no_declared_language():
    flags = pa.array([["low_lang_confidence"], ["low_lang_confidence"], [], None, ["lang_relabelled"]],
                     pa.list_(pa.string()))
    declared = pa.array([None, "de", None, None, None], pa.string())
    assert uncertain_language(declared, flags).tolist() == [True, False, False, False, False]
    chunked = uncertain_language(pa.chunked_array([declared[:2], declared[2:]]),
                                 pa.chunked_array([flags[:3], flags[3:]]))
    assert chunked.tolist() == [True, False, False, False, False]
    none = uncertain_language(pa.array([], pa.string()), pa.array([], pa.list_(pa.string())))
    assert none.dtype == bool and none.shape == (0,)


def test_documents_of_uncertain_language_are_not_paired(staged):
    truth = {(f"en-{i:02d}", f"de-{i:02d}") for i in range(N)}
    kept, summary = pairs_of(staged)
    assert kept == truth - {("en-03", "de-03"), ("en-07", "de-07")}  # the declared de-11 is paired
    assert summary["uncertain_language_left_out"] == {"en": 1, "de": 1}
    assert (summary["src_documents"], summary["tgt_documents"]) == (N - 1, N - 1)
    every, summary = pairs_of(staged, skip_uncertain_language=False)
    assert every == truth and "uncertain_language_left_out" not in summary


# ---- the stage's plumbing, checked against hand-built data and a direct call of msm.data.pair ---------------------
# Every staged side below is written as several Parquet files with small row groups, so that load_side reads several
# Arrow batches (an empty file first: its empty batch must be skipped, not end the read), with documents of 1 to 4
# sentences in shuffled order, documents of uncertain language in a later batch, and characters that are not ASCII.

import dataclasses  # noqa: E402
import time  # noqa: E402

import pyarrow.fs as pafs  # noqa: E402

from msm.data.pair import pair_documents_with_stats  # noqa: E402
from msm.data.pair_stage import RAW_PAIRS, SentenceStore, Side, _nest, _write_pairs, load_side  # noqa: E402
from msm.uri import Location  # noqa: E402


@dataclasses.dataclass
class Doc:
    sentences: np.ndarray  # (n, DIM) float32
    texts: list[str | None]
    uncertain: bool = False  # flagged low_lang_confidence with no language declared
    flagged_but_declared: bool = False

    @property
    def embedding(self) -> np.ndarray:  # what the embed stage stores: the unit mean of the sentences
        mean = self.sentences.astype(np.float64).mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts if t is not None)


def stage(root, lang: str, docs: dict[str, Doc], files: int = 2, row_group: int = 3, seed: int = 0) -> None:
    """Write ``docs`` as ``part=<lang>``: an empty file, then ``files`` files of shuffled rows in row groups of
    ``row_group`` (one Arrow batch each); uncertain documents go last, into a later batch."""
    ids = sorted(docs)
    np.random.default_rng(seed).shuffle(ids)
    ids.sort(key=lambda d: docs[d].uncertain)  # stable: shuffled, the uncertain ones at the end
    rows = [{"doc_id": d, "declared_lang": lang if docs[d].flagged_but_declared else None,
             "flags": ["low_lang_confidence"] if docs[d].uncertain or docs[d].flagged_but_declared else [],
             "sentences": docs[d].texts,
             "sentence_embeddings": [list(map(float, r)) for r in docs[d].sentences],
             "doc_embedding": list(map(float, docs[d].embedding))} for d in ids]
    schema = pa.schema([("doc_id", pa.string()), ("declared_lang", pa.string()), ("flags", pa.list_(pa.string())),
                        ("sentences", pa.list_(pa.string())),
                        ("sentence_embeddings", pa.list_(pa.list_(pa.float32(), DIM))),
                        ("doc_embedding", pa.list_(pa.float32(), DIM))])
    table = pa.Table.from_pylist(rows, schema=schema)
    part = root / f"part={lang}"
    part.mkdir(parents=True)
    pq.write_table(table.slice(0, 0), part / "0-empty.parquet")
    bounds = np.linspace(0, len(rows), files + 1).astype(int)
    for f in range(files):
        pq.write_table(table.slice(bounds[f], bounds[f + 1] - bounds[f]), part / f"{f + 1}.parquet",
                       row_group_size=row_group)


def corpus(seed: int = 0, pairs: int = 28, src_only: int = 6, tgt_only: int = 4, noise: float = 0.35):
    """en / de documents: ``pairs`` translations (de: the en sentences plus noise, the last one sometimes split in
    two), ``src_only`` / ``tgt_only`` documents without a partner; en-u1 and de-u1 of uncertain language (each a
    translation of the other) and en-u2 (no partner); de-05 is three times as long (in characters) as en-05: an
    outlying length ratio."""
    rng = np.random.default_rng(seed)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    words = ["é", "ü", "ß", "ж", "a", "bc"]
    text = lambda n: "".join(rng.choice(words, size=n))  # noqa: E731
    en, de = {}, {}
    for i in range(pairs + 1):
        n = 1 + i % 4  # 1, 2, 3, 4 sentences
        s = unit(rng.normal(size=(n, DIM))).astype(np.float32)
        t = unit(s + noise * rng.normal(size=s.shape)).astype(np.float32)
        lengths = rng.integers(20, 60, size=n)
        src_texts = [text(int(c)) for c in lengths]
        tgt_texts = [text(int(c * (3 if i == 5 else 1))) for c in lengths]
        if i % 3 == 0 and n >= 2:  # the last sentence split in two on the de side
            t = np.concatenate([t, unit(t[-1:] + noise * rng.normal(size=(1, DIM))).astype(np.float32)])
            half = len(tgt_texts[-1]) // 2
            tgt_texts = [*tgt_texts[:-1], tgt_texts[-1][:half], tgt_texts[-1][half:]]
        key = "u1" if i == pairs else f"{i:02d}"
        en[f"en-{key}"] = Doc(s, src_texts, uncertain=i == pairs)
        de[f"de-{key}"] = Doc(t, tgt_texts, uncertain=i == pairs)
    for side, count, lang in ((en, src_only, "en"), (de, tgt_only, "de")):
        for j in range(count):
            n = 1 + j % 3
            side[f"{lang}-x{j}"] = Doc(unit(rng.normal(size=(n, DIM))).astype(np.float32),
                                       [text(int(c)) for c in rng.integers(20, 60, size=n)])
    en["en-u2"] = Doc(unit(rng.normal(size=(2, DIM))).astype(np.float32), [text(30), text(40)], uncertain=True)
    de["de-07"].flagged_but_declared = True  # flagged, but a language was declared: paired as any other
    de["de-x0"].texts[0] = None  # a null sentence text counts 0 characters
    return en, de


def kept(docs: dict[str, Doc], skip: bool = True) -> list[str]:
    return sorted(d for d in docs if not (skip and docs[d].uncertain))


def reference(en: dict[str, Doc], de: dict[str, Doc], pair: PairConfig, align: AlignConfig):
    """What the stage must produce, from the documents alone: ``pair_documents_with_stats`` on both sides' kept
    documents in doc_id order, each PairConfig / AlignConfig field passed as the config documents it."""
    a, b = kept(en, pair.skip_uncertain_language), kept(de, pair.skip_uncertain_language)
    rescore = pair.rescore != "none"
    report: dict = {}
    found, calibration = pair_documents_with_stats(
        np.stack([en[d].embedding for d in a]), np.stack([de[d].embedding for d in b]),
        k=pair.k, threshold=pair.margin_threshold, mutual=pair.mutual, center_embeddings=pair.center,
        rescore=pair.rescore, rescore_k=pair.rescore_k, assign=pair.assign,
        x_sentences=[en[d].sentences for d in a] if rescore else None,
        y_sentences=[de[d].sentences for d in b] if rescore else None,
        min_coverage=pair.min_coverage, skip_penalty=align.skip_penalty, exact_max=pair.exact_knn_max,
        calibrate=pair.target_precision, score_z=pair.score_z if rescore else None,
        length_z=pair.length_z if rescore else None,
        x_lengths=[en[d].chars for d in a], y_lengths=[de[d].chars for d in b], report=report)
    return [(a[i], b[j], np.float32(m)) for i, j, m in found], calibration, report


def run_stage(tmp_path, en, de, pair: PairConfig, align: AlignConfig = AlignConfig(), src="en", tgt="de"):
    """The stage on ``en`` / ``de`` staged under ``tmp_path``, through a sub-tree filesystem (so the Locations'
    filesystems, not local paths, must be used); returns (rows of the output, summary, seconds around the call)."""
    root = tmp_path / "work"
    if not root.exists():
        stage(root / "prepared", "en", en, seed=1)
        stage(root / "prepared", "de", de, files=3, row_group=4, seed=2)
    fs = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
    out = Location(fs, f"{src}-{tgt}.parquet", f"sub://{src}-{tgt}.parquet")
    t0 = time.perf_counter()
    summary = pair_language_pair(Location(fs, "prepared", "sub://prepared"), src, tgt, pair, align, out)
    wall = time.perf_counter() - t0
    table = pq.read_table(root / f"{src}-{tgt}.parquet")
    assert table.schema == RAW_PAIRS
    return table.to_pylist(), summary, wall


def check_rows(rows, want, src_docs, tgt_docs, src="en", tgt="de"):
    """Each output row is the reference pair, in the reference's order, with the score as float32 and the two
    documents' own sentence embeddings on their own sides (a row with its halves swapped fails here)."""
    assert [(r["src_doc_id"], r["tgt_doc_id"]) for r in rows] == [(s, t) for s, t, _ in want]
    for r, (s, t, m) in zip(rows, want):
        assert r["pair_id"] == f"{s}|{t}"
        assert (r["src_lang"], r["tgt_lang"]) == (src, tgt)
        assert np.float32(r["pair_score"]) == m
        np.testing.assert_array_equal(np.asarray(r["src_embeddings"], np.float32), src_docs[s].sentences)
        np.testing.assert_array_equal(np.asarray(r["tgt_embeddings"], np.float32), tgt_docs[t].sentences)


def test_load_side_reads_every_batch_in_doc_id_order(tmp_path):
    en, _ = corpus()
    stage(tmp_path, "en", en, files=3, row_group=2, seed=3)
    for skip in (True, False):
        for batch_rows in (2048, 1, 5):  # one batch per row group, one row a batch, and batches inside row groups
            side = load_side(resolve(tmp_path), "en", tmp_path, batch_rows=batch_rows, skip_uncertain=skip)
            ids = kept(en, skip)
            assert side.lang == "en" and side.ids == ids
            assert side.uncertain == (2 if skip else 0)
            assert side.docs.dtype == np.float32 and side.docs.shape == (len(ids), DIM)
            np.testing.assert_array_equal(side.docs, np.stack([en[d].embedding for d in ids]))
            assert side.chars.tolist() == [en[d].chars for d in ids] and side.chars.dtype == np.int64
            assert isinstance(side.sentences, SentenceStore) and len(side.sentences) == len(ids)
            assert not side.sentences.rows.flags.writeable  # a read-only map of the scratch file
            for d, doc_id in enumerate(ids):
                rows = side.sentences[d]
                assert type(rows) is np.ndarray and rows.dtype == np.float32
                np.testing.assert_array_equal(rows, en[doc_id].sentences)


def test_load_side_of_an_empty_or_wholly_uncertain_language(tmp_path):
    empty = tmp_path / "part=xx"
    empty.mkdir()
    pq.write_table(pa.table({"doc_id": pa.array([], pa.string()), "declared_lang": pa.array([], pa.string()),
                             "flags": pa.array([], pa.list_(pa.string())),
                             "sentences": pa.array([], pa.list_(pa.string())),
                             "sentence_embeddings": pa.array([], pa.list_(pa.list_(pa.float32(), DIM))),
                             "doc_embedding": pa.array([], pa.list_(pa.float32(), DIM))}), empty / "0.parquet")
    side = load_side(resolve(tmp_path), "xx", tmp_path)
    assert side.ids == [] and side.docs.shape == (0, 1) and len(side.sentences) == 0 and side.chars.shape == (0,)
    assert side.uncertain == 0 and side.docs.dtype == np.float32 and side.chars.dtype == np.int64
    assert side.sentences.starts.dtype == side.sentences.ends.dtype == np.int64
    en, _ = corpus()
    only = {d: dataclasses.replace(doc, uncertain=True) for d, doc in list(en.items())[:3]}
    stage(tmp_path, "en", only)
    side = load_side(resolve(tmp_path), "en", tmp_path, skip_uncertain=True)
    assert side.ids == [] and side.docs.shape == (0, DIM) and len(side.sentences) == 0 and side.uncertain == 3
    assert load_side(resolve(tmp_path), "en", tmp_path).ids == sorted(only)  # skip_uncertain is off by default


def test_sentence_store_slices_rows_per_document():
    rows = np.arange(24, dtype=np.float32).reshape(8, 3)
    store = SentenceStore(rows, np.array([5, 0, 2]), np.array([8, 2, 2]))
    assert len(store) == 3
    assert store[0].tolist() == rows[5:8].tolist() and store[1].tolist() == rows[0:2].tolist()
    assert store[2].shape == (0, 3)


def test_nest_builds_one_list_of_sentence_vectors_per_document():
    blocks = [np.ones((2, 3), np.float32), np.zeros((0, 3), np.float32), np.full((1, 3), 7, np.float32)]
    col = _nest(blocks, 3)
    assert col.type == pa.list_(pa.list_(pa.float32()))
    assert col.to_pylist() == [[[1.0] * 3] * 2, [], [[7.0] * 3]]
    assert _nest([], 3).to_pylist() == [] and _nest([], 3).type == pa.list_(pa.list_(pa.float32()))


def test_write_pairs_in_chunks_keeps_every_pair_in_order(tmp_path):
    dim = 3
    rows = np.arange(30, dtype=np.float32).reshape(10, dim)
    a = Side("en", ["a0", "a1", "a2"], np.zeros((3, dim), np.float32),
             SentenceStore(rows, np.array([0, 1, 4]), np.array([1, 4, 5])), np.zeros(3))
    b = Side("de", ["b0", "b1"], np.zeros((2, dim), np.float32),
             SentenceStore(rows, np.array([5, 7]), np.array([7, 10])), np.zeros(2))
    pairs = [(2, 0, 1.5), (0, 1, 1.25), (1, 0, 2.0), (0, 0, 0.125), (2, 1, 3.0)]  # exact in float32
    src = {0: rows[0:1], 1: rows[1:4], 2: rows[4:5]}  # by hand from the starts / ends above
    tgt = {0: rows[5:7], 1: rows[7:10]}
    for chunk in (2, 5, 512):
        out = resolve(tmp_path / f"pairs-{chunk}.parquet")
        _write_pairs(pairs, a, b, out, chunk=chunk)
        got = pq.read_table(out.path)
        assert got.schema == RAW_PAIRS and pq.ParquetFile(out.path).num_row_groups == -(-len(pairs) // chunk)
        assert got.to_pylist() == [
            {"pair_id": f"{a.ids[i]}|{b.ids[j]}", "src_doc_id": a.ids[i], "src_lang": "en", "tgt_doc_id": b.ids[j],
             "tgt_lang": "de", "pair_score": m, "src_embeddings": src[i].tolist(), "tgt_embeddings": tgt[j].tolist()}
            for i, j, m in pairs]
    _write_pairs([], a, b, resolve(tmp_path / "none.parquet"))
    none = pq.read_table(tmp_path / "none.parquet")
    assert none.num_rows == 0 and none.schema == RAW_PAIRS


OPTION_SETS = {  # each field away from its default at least once, several at a time
    "defaults": (PairConfig(), AlignConfig()),
    "align-evidence": (PairConfig(rescore="align", k=3, rescore_k=2, margin_threshold=1.1, length_z=1.5,
                                  score_z=2.0, min_coverage=0.6), AlignConfig(skip_penalty=0.3)),
    "no-linking": (PairConfig(assign="none", mutual=False, center=False, margin_threshold=1.05, score_z=None,
                              length_z=4.0, rescore_k=6, k=5), AlignConfig()),
    "document-margins": (PairConfig(rescore="none", margin_threshold=1.0, k=3, center=False,
                                    skip_uncertain_language=False), AlignConfig()),  # greedy linking adds pairs
    "calibrated": (PairConfig(target_precision=0.95, score_z=None, length_z=None, margin_threshold=1.4),
                   AlignConfig(skip_penalty=0.05)),
}


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_pairs_and_summary_match_the_pairing_functions_called_directly(tmp_path, name):
    pair, align = OPTION_SETS[name]
    en, de = corpus()
    want, calibration, report = reference(en, de, pair, align)
    assert len(want) >= 10  # enough pairs for a comparison to mean something
    rows, summary, wall = run_stage(tmp_path, en, de, pair, align)
    check_rows(rows, want, en, de)
    skip = pair.skip_uncertain_language
    expected = {"lang_pair": "en-de", "src_documents": len(kept(en, skip)), "tgt_documents": len(kept(de, skip)),
                "pairs": len(want), "knn": "exact"}
    if skip:
        expected["uncertain_language_left_out"] = {"en": 2, "de": 1}
    if calibration is not None:
        expected["calibration"] = calibration.as_dict()
    if report:
        expected["evidence"] = report
    seconds = summary.pop("seconds")
    assert summary == expected
    assert 0 <= seconds <= wall + 1e-3 and seconds == round(seconds, 3)


def test_pairs_the_other_way_round_put_each_side_in_its_own_columns(tmp_path):
    """de-en: de documents are the source (their ids, language and sentence embeddings in the src columns)."""
    en, de = corpus()
    pair = PairConfig(rescore="none", margin_threshold=1.0, k=3)
    want, _, _ = reference(de, en, pair, AlignConfig())
    rows, summary, _ = run_stage(tmp_path, en, de, pair, src="de", tgt="en")
    check_rows(rows, want, de, en, src="de", tgt="en")
    assert summary["lang_pair"] == "de-en" and summary["uncertain_language_left_out"] == {"de": 1, "en": 2}
    assert (summary["src_documents"], summary["tgt_documents"]) == (len(kept(de)), len(kept(en)))


def test_knn_is_exact_up_to_exact_knn_max_documents_a_side(tmp_path):
    """Above ``exact_knn_max`` documents on a side, kNN uses an IVF index: on 106 en / 104 de documents (16
    dimensions) it finds other neighbours than the exact search, so the margins show which one ran."""
    en, de = corpus(pairs=100, noise=0.8)
    n = max(len(kept(en)), len(kept(de)))
    exact, _, _ = reference(en, de, PairConfig(rescore="none", margin_threshold=1.0), AlignConfig())
    for limit, kind in ((n, "exact"), (n - 1, "ivf")):
        pair = PairConfig(rescore="none", margin_threshold=1.0, exact_knn_max=limit)
        want, _, _ = reference(en, de, pair, AlignConfig())
        assert (want == exact) == (kind == "exact")  # the IVF search does change the pairs here
        rows, summary, _ = run_stage(tmp_path, en, de, pair)
        check_rows(rows, want, en, de)
        assert summary["knn"] == kind


def test_documents_without_sentences_read_as_empty_blocks(tmp_path):
    """A side whose documents hold no sentence vectors (nothing to write to the scratch file)."""
    part = tmp_path / "part=xx"
    part.mkdir()
    pq.write_table(pa.table({
        "doc_id": ["b", "a"], "declared_lang": pa.array([None, None], pa.string()),
        "flags": pa.array([[], []], pa.list_(pa.string())), "sentences": pa.array([[], []], pa.list_(pa.string())),
        "sentence_embeddings": pa.array([[], []], pa.list_(pa.list_(pa.float32(), DIM))),
        "doc_embedding": pa.array([[0.0] * DIM, [1.0] * DIM], pa.list_(pa.float32(), DIM))}), part / "0.parquet")
    side = load_side(resolve(tmp_path), "xx", tmp_path)
    assert side.ids == ["a", "b"] and side.docs[:, 0].tolist() == [1.0, 0.0] and side.chars.tolist() == [0, 0]
    for d in range(2):
        assert side.sentences[d].shape == (0, DIM) and side.sentences[d].dtype == np.float32


def test_uncertain_documents_on_one_side_only_are_counted_for_both(tmp_path):
    en, de = corpus()
    de = {d: doc for d, doc in de.items() if not doc.uncertain}
    pair = PairConfig(rescore="none", margin_threshold=1.0)
    rows, summary, _ = run_stage(tmp_path, en, de, pair)
    assert summary["uncertain_language_left_out"] == {"en": 2, "de": 0}
    check_rows(rows, reference(en, de, pair, AlignConfig())[0], en, de)
    assert type(summary["seconds"]) is float


def test_pairs_are_written_in_chunks_of_512_by_default(tmp_path):
    rows = np.ones((1, 1), np.float32)
    side = lambda lang, n: Side(lang, [f"{lang}{i}" for i in range(n)], np.zeros((n, 1), np.float32),  # noqa: E731
                                SentenceStore(rows, np.zeros(n, np.int64), np.ones(n, np.int64)), np.zeros(n))
    _write_pairs([(i, i, 1.0) for i in range(513)], side("en", 513), side("de", 513), resolve(tmp_path / "p.parquet"))
    meta = pq.read_metadata(tmp_path / "p.parquet")
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [512, 1]


def test_sentence_vectors_go_to_a_scratch_file_per_language_removed_at_the_end(tmp_path, monkeypatch):
    """While the pairing runs, each side's sentence vectors lie in ``<lang>.f32`` (float32 rows, in file order) in a
    scratch folder named after the language pair; nothing is left after."""
    import tempfile

    import msm.data.pair_stage as stage_module

    en, de = corpus()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen = []

    def watched(*args, **kwargs):  # the real pairing, with a look at the scratch folder while it runs
        seen.extend((p.parent.name, p.name, p.stat().st_size) for p in sorted(scratch.rglob("*.f32")))
        return pair_documents_with_stats(*args, **kwargs)

    monkeypatch.setattr(stage_module, "pair_documents_with_stats", watched)
    run_stage(tmp_path, en, de, PairConfig(rescore="none", margin_threshold=1.0))
    rows = {lang: sum(len(doc.sentences) for doc in docs.values()) for lang, docs in (("en", en), ("de", de))}
    assert [(name, size) for _, name, size in seen] == [("de.f32", rows["de"] * DIM * 4),
                                                          ("en.f32", rows["en"] * DIM * 4)]
    assert all(folder.startswith("msm-pair-en-de-") for folder, _, _ in seen) and len({f for f, _, _ in seen}) == 1
    assert list(scratch.iterdir()) == []


def test_the_pairs_do_not_depend_on_how_the_documents_lie_in_files(tmp_path):
    en, de = corpus()
    outputs = []
    for layout, (files, row_group, seed) in enumerate(((1, 1000, 5), (4, 2, 6))):
        root = tmp_path / f"layout{layout}"
        stage(root, "en", en, files=files, row_group=row_group, seed=seed)
        stage(root, "de", de, files=files + 1, row_group=row_group + 1, seed=seed + 1)
        out = root / "pairs.parquet"
        summary = pair_language_pair(resolve(root), "en", "de", PairConfig(), AlignConfig(), resolve(out))
        summary.pop("seconds")
        outputs.append((pq.read_table(out).to_pylist(), summary))
    assert outputs[0] == outputs[1] and len(outputs[0][0]) >= 10
