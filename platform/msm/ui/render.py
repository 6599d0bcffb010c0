"""User and corpus text → safe display values. The UI shows such text only with ``st.text``/``st.dataframe``
(never Markdown or HTML); ``escape_markdown`` is for the rare label that has to go through Markdown."""

from __future__ import annotations

import re

from msm.ui.search import Hit

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def clip(text: str, limit: int = 500) -> str:
    """At most ``limit`` characters, control characters (except newline/tab) replaced by U+FFFD."""
    clean = "".join(c if c in "\n\t" or c.isprintable() else "\ufffd" for c in text[:limit])
    return clean + ("…" if len(text) > limit else "")


def escape_markdown(text: str, limit: int = 500) -> str:
    """Backslash-escape every Markdown/HTML-significant character, so ``st.markdown`` shows it literally."""
    return _MD_SPECIAL.sub(r"\\\1", clip(text, limit))


def hit_header(hit: Hit) -> str:
    detected = f" (detected {hit.detected_lang})" if hit.detected_lang and hit.detected_lang != hit.lang else ""
    return f"#{hit.rank}  score {hit.score:.3f}  lang {hit.lang or '?'}{detected}  doc {clip(hit.doc, 80) or '-'}"
