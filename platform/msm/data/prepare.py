"""Per-document preparation (plain functions, batched): clean, language ID, segment, chunk to the token budget."""

from __future__ import annotations

import functools

import pyarrow as pa

from msm.data.clean import clean_document
from msm.data.config import MineConfig
from msm.data.langid import XLMR_LANGUAGES, Fallback, LangID, label_texts, to_iso1
from msm.data.segment import chunk_to_budget, segment
from msm.encoders.resolve import resolve_model as resolve
from msm.encoders.tokenizer import load_tokenizer


@functools.lru_cache(maxsize=2)
def _langid(model_path: str | None) -> LangID:
    return LangID(model_path)


@functools.lru_cache(maxsize=2)
def _fallback(name: str) -> Fallback:
    return Fallback(name)


@functools.lru_cache(maxsize=2)
def cached_tokenizer(model: str):
    """Resolved and loaded once per process: prepare asks for it for every document it chunks."""

    return load_tokenizer(resolve(model))


def prepare_records(records: list[dict], cfg: MineConfig) -> list[dict]:
    """Turn reader records into document rows with ``reason`` (None = kept) and ``flags``."""
    rows = []
    for rec in records:
        rec, reason = clean_document(rec, cfg.clean)
        rows.append({"doc_id": rec["doc_id"], "declared_lang": rec.get("lang"), "lang": to_iso1(rec.get("lang")),
                     "detected_lang": None, "detected_confidence": None, "fallback_lang": None,
                     "lang_confidence": None, "flags": [], "source": rec["source"],
                     "url": rec.get("url"), "text": rec["text"], "sentences": rec["sentences"], "reason": reason})
    live = [r for r in rows if r["reason"] is None]
    if cfg.langid.enabled and live:
        lid = cfg.langid
        labels = label_texts([r["text"] or " ".join(r["sentences"]) for r in live], lid, _langid(lid.model_path),
                             _fallback(lid.fallback) if lid.fallback != "none" else None)
        for r, lab in zip(live, labels):
            code, c = lab.lang, lab.confidence
            r["detected_lang"], r["detected_confidence"] = lab.detected, lab.detected_confidence  # fastText's own
            r["fallback_lang"], r["lang_confidence"] = lab.fallback, c
            r["flags"] += ["lang_relabelled"] * lab.relabelled + ["lang_fallback"] * lab.by_fallback
            if r["lang"] and code != r["lang"]:
                msg = f"lang_mismatch: declared {r['declared_lang']!r}, detected {code!r} ({c:.2f})"
                if cfg.langid.on_mismatch == "quarantine":
                    r["reason"] = msg
                else:
                    r["flags"].append("lang_mismatch")
            elif c < cfg.langid.min_confidence:
                if cfg.langid.on_low_confidence == "quarantine":
                    r["reason"] = f"low_lang_confidence: {code!r} at {c:.2f} < langid.min_confidence={cfg.langid.min_confidence}"
                else:
                    r["flags"].append("low_lang_confidence")
            r["lang"] = r["lang"] or code
    for r in rows:
        if r["reason"] is not None:
            continue
        if r["lang"] is None:
            r["reason"] = "no_language: none declared and language ID is off (set inputs[].lang or langid.enabled)"
        elif cfg.languages and r["lang"] not in cfg.languages:
            r["reason"] = f"language_not_selected: {r['lang']!r} not in languages={cfg.languages}"
        elif r["lang"] not in XLMR_LANGUAGES:
            r["reason"] = f"unsupported_language: {r['lang']!r} is not one of the encoder's XLM-R languages"
        else:
            sents = r["sentences"] or segment(r["text"], r["lang"])
            r["sentences"] = (chunk_to_budget(sents, cached_tokenizer(cfg.embed.model), cfg.segment.max_tokens)
                              if cfg.segment.max_tokens > 0 else sents)
            if len(r["sentences"]) < cfg.clean.min_sentences:
                r["reason"] = f"too_few_sentences: {len(r['sentences'])} < clean.min_sentences={cfg.clean.min_sentences}"
    return rows


PREPARED = pa.schema([
    ("doc_id", pa.string()), ("declared_lang", pa.string()), ("lang", pa.string()), ("detected_lang", pa.string()),
    ("detected_confidence", pa.float32()), ("fallback_lang", pa.string()), ("lang_confidence", pa.float32()),
    ("flags", pa.list_(pa.string())), ("source", pa.string()), ("url", pa.string()),
    ("text", pa.string()), ("sentences", pa.list_(pa.string())), ("reason", pa.string()),
])


def prepare_batch(batch: pa.Table, cfg: MineConfig) -> pa.Table:
    """Ray Data ``map_batches`` wrapper of :func:`prepare_records` (Arrow in, Arrow with :data:`PREPARED` out)."""
    rows = prepare_records(batch.to_pylist(), cfg)
    for r in rows:
        r["text"] = r["text"][:200] if r["reason"] is not None else ""  # sentences carry the text from here on
    return pa.Table.from_pylist(rows, schema=PREPARED)
