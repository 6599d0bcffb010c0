"""The document schema every reader yields, and the Arrow schemas of the shards ``msm mine`` writes.

Reader record (a plain dict, one per document):

============== ============ ==================================================================
key            type         meaning
============== ============ ==================================================================
doc_id         str          unique within the run (``<input>:<id>``); stable across re-runs
lang           str | None   declared language as given by the source (e.g. ``deu``, ``zho-CN``)
source         str          input kind and path it came from
url            str | None   optional origin URL
text           str          the raw document text ("" when ``sentences`` is given)
sentences      list[str]    pre-segmented sentences (NTREX lines, Bible verses) or [] to segment
error          str | None   set by a reader for an unreadable record (then it is quarantined)
============== ============ ==================================================================
"""

from __future__ import annotations

import pyarrow as pa


def record(doc_id: str, *, lang: str | None, source: str, text: str = "", sentences: list[str] | None = None,
           url: str | None = None, error: str | None = None) -> dict:
    """Build one reader record (see the module docstring)."""
    return {"doc_id": doc_id, "lang": lang, "source": source, "url": url, "text": text,
            "sentences": list(sentences or []), "error": error}


LINK = pa.struct([("src", pa.list_(pa.int32())), ("tgt", pa.list_(pa.int32())), ("score", pa.float32())])

DOCUMENTS = pa.schema([
    ("doc_id", pa.string()),
    ("lang", pa.string()),              # ISO 639-1 (normalised from the declared or detected language)
    ("declared_lang", pa.string()),     # as given by the source, may be null
    ("detected_lang", pa.string()),     # fastText lid.176's top label, null when language ID is off
    ("detected_confidence", pa.float32()),  # fastText's probability of that label
    ("fallback_lang", pa.string()),     # langid.fallback's label where fastText was unsure ("und": none), else null
    ("lang_confidence", pa.float32()),  # probability of ``lang``: fastText's (merged labels summed) or the fallback's
    ("flags", pa.list_(pa.string())),   # e.g. "low_lang_confidence", "lang_relabelled" (langid.merge / allow),
                                        # "lang_fallback" (langid.fallback changed the label)
    ("source", pa.string()),
    ("url", pa.string()),
    ("sentences", pa.list_(pa.string())),
    ("pair_ids", pa.list_(pa.string())),          # pairs this document takes part in (see PAIRS)
    ("aligned_doc_ids", pa.list_(pa.string())),   # the other document of each pair, same order
])

PAIRS = pa.schema([
    ("pair_id", pa.string()),           # "<src_doc_id>|<tgt_doc_id>"
    ("src_doc_id", pa.string()),
    ("src_lang", pa.string()),
    ("tgt_doc_id", pa.string()),
    ("tgt_lang", pa.string()),
    ("pair_score", pa.float32()),       # ratio margin that paired them (sentence-rescored by default)
    ("links", pa.list_(LINK)),          # monotonic sentence alignment; src/tgt are sentence indices
    ("align_score", pa.float32()),      # mean link score of non-empty links
])

def embeddings_schema(dim: int | None) -> pa.Schema:
    """``embeddings/``: one row per kept document, its unit sentence vectors and their normalised mean
    (fixed-size lists of ``dim``; variable-size when ``dim`` is None: an output with no document has no vector)."""
    vector = pa.list_(pa.float32(), dim if dim is not None else -1)
    return pa.schema([("doc_id", pa.string()), ("lang", pa.string()), ("doc_embedding", vector),
                      ("sentence_embeddings", pa.list_(vector))])


QUARANTINE = pa.schema([
    ("doc_id", pa.string()),
    ("lang", pa.string()),
    ("source", pa.string()),
    ("reason", pa.string()),
    ("text_prefix", pa.string()),       # first 200 characters, for inspection
])

RECORD = pa.schema([
    ("doc_id", pa.string()), ("lang", pa.string()), ("source", pa.string()), ("url", pa.string()),
    ("text", pa.string()), ("sentences", pa.list_(pa.string())), ("error", pa.string()),
])
