"""``msm.ui``: path guard, uploads, search against brute force, safe rendering, run and mined-pair readers."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msm.errors import MSMError
from msm.ui.corpus import Corpus, Passage, load_ntrex, parse_upload
from msm.ui.paths import data_roots, find_dirs, guard_path
from msm.ui.render import escape_markdown, hit_header
from msm.ui.search import CorpusIndex, build_index, search, validate_query
from ui_fixtures import E5_NTREX_LANGS, E5_NTREX_LINES, write_mined, write_sweep, write_training_run

NASTY = '<script>alert("x")</script> <img src=x onerror=alert(1)> **bold** [link](http://e.vil) ![i](http://e.vil/i.png)'


class HashEncoder:
    """Deterministic stand-in: bag of character trigrams hashed into 64 dims, L2-normalised."""

    dim = 64

    def encode(self, texts, kind="passage", **_):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for j in range(len(t) - 2):
                out[i, zlib.crc32(t[j:j + 3].encode()) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


# --- paths -------------------------------------------------------------------------------------------------

def test_guard_path_refuses_outside_roots_dotdot_and_symlinks(tmp_path, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "secret"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    roots = [root.resolve()]
    assert guard_path("sub", roots) == (root / "sub").resolve()
    assert guard_path(str(root / "sub"), roots) == (root / "sub").resolve()
    monkeypatch.chdir(tmp_path)
    assert guard_path("root/sub", roots) == (root / "sub").resolve()  # relative to the working directory
    for bad in ("/etc/passwd", str(outside), "sub/../../secret", "escape", str(root / "escape")):
        with pytest.raises(MSMError, match="outside the configured data roots"):
            guard_path(bad, roots)
    with pytest.raises(MSMError, match="does not exist"):
        guard_path("sub/nope", roots)
    with pytest.raises(MSMError, match="empty or invalid path"):
        guard_path("  ", roots)


def test_data_roots_from_env_string(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert data_roots(f"{a}{__import__('os').pathsep}{b}{__import__('os').pathsep}{a}") == [a.resolve(), b.resolve()]
    assert len(data_roots("")) == 2  # outputs/ + shared data


def test_find_dirs_depth_limit(tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "m.txt").write_text("")
    (tmp_path / "a" / "b" / "c" / "m.txt").write_text("")
    assert find_dirs([tmp_path], "m.txt", max_depth=4) == [tmp_path / "a", tmp_path / "a" / "b" / "c"]
    assert find_dirs([tmp_path], "m.txt", max_depth=1) == [tmp_path / "a"]


# --- uploads -----------------------------------------------------------------------------------------------

def test_parse_upload_jsonl_keeps_good_records_and_names_bad_ones():
    lines = [json.dumps({"id": "x1", "text": NASTY, "lang": "deu", "doc": "d"}), "{not json", json.dumps({"text": "  "}),
             json.dumps({"id": 5}), "", json.dumps({"text": "plain"})]
    corpus = parse_upload("mine.jsonl", "\n".join(lines).encode())
    assert [p.id for p in corpus.passages] == ["x1", "mine:6"]
    assert corpus.passages[0] == Passage("x1", NASTY, "de", "d")  # text untouched, language normalised
    assert [w for w, _ in corpus.skipped] == ["mine.jsonl:2", "mine.jsonl:3", "mine.jsonl:4"]
    assert "empty" in corpus.skipped[1][1] and "missing" in corpus.skipped[2][1]


def test_parse_upload_parquet_and_corrupt_files(tmp_path):
    table = pa.table({"text": ["eins", "zwei", None], "lang": ["de", "de", "de"]})
    pq.write_table(table, tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    corpus = parse_upload("t.parquet", data)
    assert [p.text for p in corpus.passages] == ["eins", "zwei"] and len(corpus.skipped) == 1
    with pytest.raises(MSMError, match="not a readable Parquet file"):
        parse_upload("t.parquet", data[: len(data) // 2])
    with pytest.raises(MSMError, match="no 'text' column"):
        pq.write_table(pa.table({"body": ["x"]}), tmp_path / "b.parquet")
        parse_upload("b.parquet", (tmp_path / "b.parquet").read_bytes())
    with pytest.raises(MSMError, match="not UTF-8"):
        parse_upload("x.jsonl", b'{"text": "\xff\xfe"}')
    with pytest.raises(MSMError, match="no usable record"):
        parse_upload("x.jsonl", b"garbage\n")
    with pytest.raises(MSMError, match="unsupported file type .pdf"):
        parse_upload("x.pdf", b"%PDF")
    with pytest.raises(MSMError, match="duplicate id 'a'"):
        parse_upload("x.jsonl", b'{"id": "a", "text": "1"}\n{"id": "a", "text": "2"}')


# --- search ------------------------------------------------------------------------------------------------

def _corpus() -> Corpus:
    words = ["alpha beta", "gamma delta", "beta gamma", "epsilon", "alpha alpha", "delta beta", "zeta eta", "theta"]
    return Corpus("toy", [Passage(f"p{i}", w, "de" if i % 2 else "en", f"doc{i // 3}") for i, w in enumerate(words)])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_matches_brute_force_with_and_without_language_filter(kind):
    enc, corpus = HashEncoder(), _corpus()
    cindex = build_index(enc, corpus, "hash", kind=kind, chunk=3)
    emb = enc.encode([p.text for p in corpus.passages])
    q = enc.encode(["alpha beta gamma"], kind="query")[0]
    for langs, k in ((None, 3), (["de"], 2), (["en"], 10)):
        keep = [i for i, p in enumerate(corpus.passages) if not langs or p.lang in langs]
        order = sorted(keep, key=lambda i: -float(emb[i] @ q))[:k]
        hits, timing = search(enc, cindex, "alpha beta gamma", k, langs)
        assert [h.id for h in hits] == [corpus.passages[i].id for i in order]
        assert [h.rank for h in hits] == list(range(1, len(order) + 1))
        np.testing.assert_allclose([h.score for h in hits], [emb[i] @ q for i in order], rtol=1e-5)
        assert all(h.lang in (langs or ["en", "de"]) for h in hits)
        assert timing["encode_ms"] >= 0 and timing["search_ms"] >= 0


def test_build_index_reports_progress_and_round_trips(tmp_path):
    enc, corpus, seen = HashEncoder(), _corpus(), []
    cindex = build_index(enc, corpus, "hash", chunk=3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3, 8), (6, 8), (8, 8)]
    loaded = CorpusIndex.load(cindex.save(tmp_path / "idx"), expected_dim=64)
    assert loaded.passages == cindex.passages and loaded.model == "hash"
    assert [h.id for h in search(enc, loaded, "theta", 2)[0]] == [h.id for h in search(enc, cindex, "theta", 2)[0]]
    (tmp_path / "idx" / "passages.jsonl").write_text("{broken")
    with pytest.raises(MSMError, match="corrupt passages.jsonl"):
        CorpusIndex.load(tmp_path / "idx")
    with pytest.raises(MSMError, match="not a saved UI index"):
        CorpusIndex.load(tmp_path)


def test_validate_query_messages():
    assert validate_query("  hallo ") == "hallo"
    for q in ("", "   \n\t", None):
        with pytest.raises(MSMError, match="query is empty"):
            validate_query(q)
    with pytest.raises(MSMError, match="102,400 characters; the limit is 2,000"):
        validate_query("x" * 102_400)


def test_e5_small_returns_the_known_translation_first(e5_small, shared_data):
    """English NTREX line i → its German/Russian/Chinese translation (same line) ranks first."""
    from msm.retrieval.encoder import Encoder

    enc = Encoder(e5_small)
    cindex = build_index(enc, load_ntrex(shared_data / "ntrex", E5_NTREX_LANGS, E5_NTREX_LINES), "e5-small")
    english = (shared_data / "ntrex" / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    correct = total = 0
    for i, line in enumerate(english[:E5_NTREX_LINES]):
        ranking, _ = search(enc, cindex, line, len(cindex.passages))  # full ranking: first hit per language
        for lang in ("de", "ru", "zh"):
            correct += next(h for h in ranking if h.lang == lang).id.endswith(f":{i}")
            total += 1
    assert correct / total >= 0.85, f"{correct}/{total}"
    assert search(enc, cindex, english[4], 1, ["ru"])[0][0].id == "ntrex:rus:4"
    top = search(enc, cindex, english[2], 3)[0]
    assert {h.id for h in top} == {f"ntrex:{lang}:2" for lang in E5_NTREX_LANGS}
    assert {h.detected_lang for h in top} == {"de", "ru", "zh"}


# --- rendering ---------------------------------------------------------------------------------------------

def test_escape_markdown_renders_literally():
    """Rendered by a CommonMark parser with HTML enabled, escaped text is one paragraph of the same text."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").render(escape_markdown(NASTY, limit=1000))
    assert "<script" not in html and "<img" not in html and "<a " not in html and "<strong>" not in html
    import html as htmllib

    assert htmllib.unescape(html.removeprefix("<p>").removesuffix("</p>\n")) == NASTY


def test_hit_header_and_clip():
    from msm.ui.render import clip
    from msm.ui.search import Hit

    assert hit_header(Hit(1, 0.5, "i", "t", "de", "de", "doc")) == "#1  score 0.500  lang de  doc doc"
    assert "(detected en)" in hit_header(Hit(2, 0.5, "i", "t", "de", "en", ""))
    assert clip("a\x00b\x1bc" + "x" * 10, 5) == "a\ufffdb\ufffdc…"


# --- runs and mined pairs ----------------------------------------------------------------------------------

def test_training_metrics_tolerate_a_torn_line(tmp_path):
    from msm.ui.runs import curves, load_training_metrics

    rows = write_training_run(tmp_path / "run")
    table = load_training_metrics(tmp_path / "run")
    assert table.frame["step"].tolist() == [r["step"] for r in rows]
    assert table.frame["loss"].tolist() == [r["loss"] for r in rows]
    assert len(table.skipped) == 1 and table.skipped[0].startswith("metrics.jsonl:6:")
    assert curves(table.frame)["masked-sentence accuracy"] == ["acc_same_doc", "acc_other_doc"]
    with pytest.raises(MSMError, match="no metrics.jsonl or metrics.csv"):
        load_training_metrics(tmp_path)


def test_tune_and_eval_readers(tmp_path):
    from msm.eval.report import Result, write_report
    from msm.ui.runs import (eval_pivot, is_eval_file, is_tune_dir, load_eval_results, load_tune_results,
                                     metric_columns)

    write_sweep(tmp_path / "sweep")
    table = load_tune_results(tmp_path / "sweep")
    assert table.knobs == ["config/lr", "config/mask_ratio"] and metric_columns(table) == ["acc_same_doc", "loss"]
    assert [p.name for p in table.plots] == ["lr_vs_acc.png"] and is_tune_dir(tmp_path / "sweep")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "results.json").write_text(json.dumps({"knobs": ["lr"], "trials": [{"lr": 1, "m": 2}]}))
    assert load_tune_results(tmp_path / "j").knobs == ["lr"] and is_tune_dir(tmp_path / "j")
    files = [write_report(tmp_path / m, m, [Result("lareqa", "de", "mAP@20", v, 10)], {}, 1.0) / "results.json"
             for m, v in (("base", 0.4), ("msm", 0.5))]
    assert all(is_eval_file(f) for f in files) and not is_tune_dir(tmp_path / "base")
    pivot = eval_pivot(load_eval_results(files))
    assert pivot.loc[("lareqa", "mAP@20", "de")].to_dict() == {"base": 0.4, "msm": 0.5}


def test_mined_pairs_rows_and_heatmap_path(tmp_path):
    from msm.ui.alignment import aligned_rows, alignment_figure, load_mined, path_cells

    expected = write_mined(tmp_path / "m")
    run = load_mined(tmp_path / "m")
    rows = aligned_rows(run, run.pairs[0])
    assert [(r["src"], r["tgt"]) for r in rows] == [("0", "0"), ("1,2", "1"), ("3", "2")]
    assert rows[1]["source sentence"] == "It was tired. Then it slept."
    assert rows[1]["target sentence"] == expected["tgt"][1]
    cells = path_cells(run.pairs[0]["links"])
    assert cells == [(0, 0), (1, 1), (2, 1), (3, 2)]
    sim = np.random.default_rng(0).random((4, 3))
    fig = alignment_figure(sim, run.pairs[0]["links"], "en", "de")
    line = fig.axes[0].lines[0]
    assert list(zip(line.get_ydata(), line.get_xdata())) == cells
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), sim)
    with pytest.raises(MSMError, match="not an msm mine output"):
        load_mined(tmp_path)
    (tmp_path / "m" / "pairs" / "part-00000.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(MSMError, match="unreadable Parquet shard"):
        load_mined(tmp_path / "m")
