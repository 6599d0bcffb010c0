"""Search: pick model(s) and a corpus, build the index (cached), query in any language, compare two models."""

from __future__ import annotations

import hashlib
import time

import streamlit as st

from common import guarded_dir, index_store, load_encoder, roots_caption, safe, settings
from msm.errors import MSMError
from msm.ui.corpus import Corpus, load_ntrex, load_xquad_r, parse_upload
from msm.ui.render import clip, hit_header
from msm.ui.search import CorpusIndex, build_index, search, validate_query

NTREX_LANGS = ["eng", "arb", "deu", "ell", "fra", "hin", "ita", "jpn", "kor", "pol", "por", "rus", "spa", "swa",
               "tha", "tur", "vie", "zho-CN"]
XQUAD_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
MAX_INDEXES = 8  # kept in memory across sessions
SOURCES = ["NTREX sentences", "XQuAD-R candidates", "Upload JSONL/Parquet", "Saved index"]

cfg = settings()
st.title("Cross-lingual search")

with st.sidebar:
    st.header("Models")
    model_a = st.text_input("Model", cfg.model, key="model_a",
                            help="e5-small, tiny-random, or an HF folder / MSM checkpoint export under the data roots")
    compare = st.checkbox("Compare with a second model", key="compare")
    model_b = st.text_input("Second model", "", key="model_b") if compare else ""
    st.header("Corpus")
    source = st.radio("Source", SOURCES, key="source")
    if source == SOURCES[0]:
        langs = st.multiselect("Languages", NTREX_LANGS, ["eng", "deu", "zho-CN"], key="ntrex_langs")
        lines = st.number_input("Lines per language", 1, 1997, 50, key="ntrex_lines")
        spec = ("ntrex", tuple(langs), int(lines))
    elif source == SOURCES[1]:
        langs = st.multiselect("Languages", XQUAD_LANGS, ["en", "de", "zh"], key="xquad_langs")
        pars = st.number_input("Paragraphs per language", 1, 240, 20, key="xquad_pars")
        spec = ("xquad", tuple(langs), int(pars))
    elif source == SOURCES[2]:
        upload = st.file_uploader("JSONL or Parquet: records with text (+ id, lang, doc)",
                                  type=["jsonl", "json", "parquet"], key="upload")
        spec = ("upload", upload.name, hashlib.sha1(upload.getvalue()).hexdigest()) if upload else None
    else:
        saved = st.text_input("Saved index folder", str(cfg.index_dir), key="saved_path")
        spec = ("saved", saved)
    kind = st.selectbox("Index", ["flat", "hnsw", "ivf"], key="kind", help="faiss; on GPU when faiss-gpu is present")
    build = st.button("Build / load index", type="primary", key="build", disabled=spec is None)
    roots_caption(cfg)


def load_corpus(spec: tuple) -> Corpus | CorpusIndex | None:
    """The corpus a spec names (or a saved ``CorpusIndex``); ``None`` after an error message."""
    data = guarded_dir(str(cfg.data_dir), cfg) if spec[0] in ("ntrex", "xquad") else None
    try:
        if spec[0] == "ntrex" and data:
            return load_ntrex(data / "ntrex", list(spec[1]), spec[2])
        if spec[0] == "xquad" and data:
            return load_xquad_r(data / "xquad-r", list(spec[1]), spec[2])
        if spec[0] == "upload":
            return parse_upload(spec[1], st.session_state["upload"].getvalue())
        if spec[0] == "saved":
            folder = guarded_dir(spec[1], cfg)
            return CorpusIndex.load(folder) if folder else None
    except MSMError as exc:
        st.error(safe(str(exc)), icon=":material/block:")
    return None


def ensure_index(model: str, encoder, spec: tuple, loaded: Corpus | CorpusIndex) -> CorpusIndex | None:
    store = index_store()
    key = (model, spec, kind)
    if key in store:
        return store[key]
    if isinstance(loaded, CorpusIndex):
        if loaded.model == model and loaded.index.dim == encoder.dim:
            store[key] = loaded
            return loaded
        loaded = Corpus(loaded.name, list(loaded.passages.values()))
    bar = st.progress(0.0, text=f"Encoding {len(loaded.passages)} passages with {model}…")
    try:
        cindex = build_index(encoder, loaded, model, kind=kind,
                             progress=lambda done, total: bar.progress(done / total, f"{model}: {done}/{total} encoded"))
    except MSMError as exc:
        st.error(safe(str(exc)), icon=":material/block:")
        return None
    bar.empty()
    while len(store) >= MAX_INDEXES:  # oldest first: dicts keep insertion order
        store.pop(next(iter(store)))
    store[key] = cindex
    return cindex


models = [m for m in (model_a, model_b) if m and m.strip()]
if build and spec is not None:
    loaded = load_corpus(spec)
    if loaded is not None:
        if isinstance(loaded, Corpus) and loaded.skipped:
            st.warning(safe(f"{len(loaded.skipped)} records skipped, first: {loaded.skipped[0][0]}: "
                          f"{loaded.skipped[0][1]}"), icon=":material/warning:")
        ok = True
        for model in models:
            enc = load_encoder(model, cfg)
            ok = ok and enc is not None and ensure_index(model, enc, spec, loaded) is not None
        if ok:
            st.session_state["active_spec"] = (spec, kind)

active = st.session_state.get("active_spec")
store = index_store()
indexes = {m: store.get((m, *active)) for m in models} if active else {}
if not active or not all(indexes.values()):
    st.info("Choose a corpus in the sidebar and press **Build / load index** (models and indexes are cached, "
            "so this is slow only the first time).", icon=":material/arrow_back:")
    st.stop()

first = next(iter(indexes.values()))
st.success(safe(f"Index ready: {first.name}, {len(first.passages)} passages, {first.index.meta['kind']}"
                f"{' on GPU' if first.index.meta.get('gpu') else ''}; models: {', '.join(indexes)}"), icon=":material/check_circle:")
if st.button("Save index", key="save", help=f"writes {cfg.index_dir}/<corpus>-<model>/"):
    for m, ci in indexes.items():
        name = "".join(c if c.isalnum() else "-" for c in f"{ci.name}-{m.split('/')[-1]}")[:80]
        try:
            st.caption(safe(f"saved to {ci.save(cfg.index_dir / name)}"))
        except OSError as exc:
            st.error(safe(f"could not save to {cfg.index_dir}: {exc}"), icon=":material/block:")

col_q, col_k, col_l = st.columns([6, 1, 3])
query = col_q.text_input("Query (any language)", key="query", placeholder="e.g. Wer befürchtet Verwechslungen mit den Muppets?")
k = col_k.number_input("k", 1, 100, 5, key="k")
lang_filter = col_l.multiselect("Only languages", sorted({lang for ci in indexes.values() for lang in ci.langs}),
                                key="lang_filter")
if not query:
    st.stop()
try:
    validate_query(query)
except MSMError as exc:
    st.warning(safe(str(exc)), icon=":material/edit_note:")
    st.stop()

st.caption(safe(f"Results for: {query.strip()}"))
columns = st.columns(len(indexes))
for col, (model, cindex) in zip(columns, indexes.items()):
    with col:
        st.subheader(safe(clip(model, 80)))
        enc = load_encoder(model, cfg)
        try:
            hits, timing = search(enc, cindex, query, int(k), lang_filter)
        except MSMError as exc:
            st.error(safe(str(exc)), icon=":material/block:")
            continue
        latency = st.empty()
        t0 = time.perf_counter()
        if not hits:
            st.info("No hit in the selected languages.")
        for hit in hits:
            with st.container(border=True):
                st.text(hit_header(hit))
                st.text(clip(hit.text, 1000))
        render_ms = 1000 * (time.perf_counter() - t0)
        latency.caption(f"latency {timing['encode_ms'] + timing['search_ms'] + render_ms:.0f} ms "
                        f"(encode {timing['encode_ms']:.0f} · search {timing['search_ms']:.1f} · render {render_ms:.1f})")
