"""MSM Platform UI: ``streamlit run ui/app.py`` (or ``msm ui``). Pages: Search, Alignment viewer, Runs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so pages can import ui/common.py

import streamlit as st  # noqa: E402

st.set_page_config(page_title="MSM cross-lingual retrieval", page_icon=":material/search:", layout="wide")
page = st.navigation([
    st.Page("pages/search.py", title="Search", icon=":material/search:", default=True),
    st.Page("pages/alignment.py", title="Alignment viewer", icon=":material/compare_arrows:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
])
page.run()
