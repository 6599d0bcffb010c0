"""Validate and normalise documents: NFC, no control characters, length limits. Returns a reason instead of raising."""

from __future__ import annotations

import re
import unicodedata

from msm.data.config import CleanConfig

# C0/C1 controls except tab and newline; plus zero-width no-break space (BOM) and the replacement char's cousins.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def normalise(text: str) -> str:
    """Unicode NFC, control characters removed, runs of spaces collapsed, lines stripped."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()


def clean_document(rec: dict, cfg: CleanConfig) -> tuple[dict, str | None]:
    """Normalise ``rec`` (a reader record); return it and a quarantine reason or None."""
    if rec.get("error"):
        return rec, rec["error"]
    sentences = [s for s in (normalise(s) for s in rec.get("sentences") or []) if s]
    text = normalise(rec.get("text") or "")
    rec = {**rec, "text": text, "sentences": sentences}
    if "\ufffd" in text or any("\ufffd" in s for s in sentences):
        return rec, "invalid_utf8: contains U+FFFD replacement characters"
    size = sum(len(s) for s in sentences) if sentences else len(text)
    if size == 0:
        return rec, "empty: no text after normalisation"
    if size < cfg.min_chars:
        return rec, f"too_short: {size} chars < clean.min_chars={cfg.min_chars}"
    if size > cfg.max_chars:
        return rec, f"oversized: {size} chars > clean.max_chars={cfg.max_chars}"
    return rec, None
