"""Alignment viewer: browse mined document pairs, aligned sentences side by side, similarity heatmap + path."""

from __future__ import annotations

import streamlit as st

from common import encoder, guarded_dir, roots_caption, safe, settings
from msm.errors import MSMError
from msm.ui.alignment import aligned_rows, alignment_figure, load_mined, pair_sentences, similarity
from msm.ui.paths import find_dirs
from msm.ui.settings import MODEL_ALIASES, check_model

cfg = settings()
st.title("Alignment viewer")
roots_caption(cfg)


@st.cache_data(show_spinner="Reading mined shards…", max_entries=8)
def mined(folder: str, stamp: float):
    return load_mined(folder)


@st.cache_data(show_spinner="Encoding sentences…", max_entries=64)
def sim_matrix(model: str, src: tuple[str, ...], tgt: tuple[str, ...]):
    return similarity(encoder(check_model(model, cfg.roots)), list(src), list(tgt))


runs = [d for d in find_dirs(cfg.roots, "manifest.json") if (d / "pairs").is_dir()]
options = [str(d) for d in runs] + ["other folder…"]
choice = st.selectbox("Mined output (msm mine)", options, key="mined_choice",
                      help="folders under the data roots holding manifest.json, documents/ and pairs/")
if choice == "other folder…":
    typed = st.text_input("Folder", "", key="mined_path")
    if not typed.strip():
        st.info("Type the folder of an msm mine output (inside the data roots).")
        st.stop()
    folder = guarded_dir(typed, cfg)
else:
    folder = guarded_dir(choice, cfg)
if folder is None:
    st.stop()
try:
    run = mined(str(folder), (folder / "pairs").stat().st_mtime)
except MSMError as exc:
    st.error(safe(str(exc)), icon=":material/block:")
    st.stop()
counts = run.manifest.get("counts", {})
st.caption(safe(f"{len(run.documents)} documents, {len(run.pairs)} pairs; "
                f"pairs by language pair: {counts.get('pairs_by_lang_pair', '?')}"))
if not run.pairs:
    st.info("This run mined no document pair (see its manifest: thresholds, languages).")
    st.stop()

lang_pairs = sorted({f"{p['src_lang']}-{p['tgt_lang']}" for p in run.pairs})
chosen = st.multiselect("Language pairs", lang_pairs, lang_pairs, key="lang_pairs")
pairs = [p for p in run.pairs if f"{p['src_lang']}-{p['tgt_lang']}" in chosen]
if not pairs:
    st.info("No pair in the selected language pairs.")
    st.stop()
labels = [f"{p['src_lang']}→{p['tgt_lang']}  margin {p['pair_score']:.3f}  align {p['align_score'] or 0:.3f}  "
          f"{p['pair_id']}" for p in pairs]
idx = st.selectbox("Document pair (best margin first)", range(len(pairs)), format_func=labels.__getitem__, key="pair")
pair = pairs[idx]

st.subheader("Aligned sentences")
try:
    rows = aligned_rows(run, pair)
except MSMError as exc:
    st.error(safe(str(exc)), icon=":material/block:")
    st.stop()
st.dataframe(rows, width="stretch", hide_index=True,
             column_config={"src": st.column_config.TextColumn(width="small"),
                            "tgt": st.column_config.TextColumn(width="small"),
                            "source sentence": st.column_config.TextColumn(width="large"),
                            "target sentence": st.column_config.TextColumn(width="large")})
st.subheader("Similarity and alignment path")
left, right = st.columns([3, 2])
mined_model = str(run.manifest.get("config", {}).get("embed", {}).get("model", ""))
model = right.text_input("Model for the heatmap", mined_model if mined_model in MODEL_ALIASES else cfg.model,
                         key="heat_model", help="the mining run used: " + (mined_model or "?"))
right.caption("Cells: cosine similarity of every source/target sentence pair; red: the alignment the miner chose "
              "(n:m links cover n×m cells).")
src, tgt = pair_sentences(run, pair)
try:
    sim = sim_matrix(model, tuple(src), tuple(tgt))
except MSMError as exc:
    right.error(safe(str(exc)), icon=":material/block:")
    st.stop()
left.pyplot(alignment_figure(sim, pair["links"], pair["src_lang"], pair["tgt_lang"]))
