"""Streamlit-side helpers shared by the pages: settings, cached encoders and indexes, path guard messages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from msm.errors import MSMError
from msm.ui.paths import guard_path
from msm.ui.render import escape_markdown
from msm.ui.settings import UISettings, check_model, load_settings


def safe(text: str) -> str:
    """Message text that may hold user input (paths, file names), escaped for Markdown-rendering elements."""
    return escape_markdown(text, limit=1500)


def settings() -> UISettings:
    return load_settings()


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def encoder(model: str):
    """One ``Encoder`` per model, shared by all sessions (the first query pays the load)."""
    from msm.retrieval.encoder import Encoder

    return Encoder(model, max_length=128, batch_size=64)


@st.cache_resource
def index_store() -> dict:
    """(model, corpus key) → ``CorpusIndex``, shared by all sessions; filled by the Search page."""
    return {}


def load_encoder(model: str, cfg: UISettings):
    """The cached encoder for a checked model name, or ``None`` after showing why not."""
    try:
        return encoder(check_model(model, cfg.roots))
    except MSMError as exc:
        st.error(safe(f"Model {model!r}: {exc}"), icon=":material/block:")
    except Exception as exc:  # a model folder that transformers cannot load, out of memory...
        st.error(safe(f"Model {model!r} could not be loaded: {type(exc).__name__}: {exc}"), icon=":material/block:")
    return None


def guarded_dir(text: str, cfg: UISettings) -> Path | None:
    """``text`` as a folder inside the data roots, or ``None`` after an error message."""
    try:
        path = guard_path(text, cfg.roots)
    except MSMError as exc:
        st.error(safe(str(exc)), icon=":material/block:")
        return None
    if not path.is_dir():
        st.error(safe(f"{text}: not a folder"), icon=":material/block:")
        return None
    return path


def roots_caption(cfg: UISettings) -> None:
    st.caption(safe("Data roots (the UI reads nothing else): " + " · ".join(str(r) for r in cfg.roots)))
