"""Query → hits over a corpus index: validation, encode, faiss search (``SearchIndex``), language filter, timings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from msm.errors import MSMError
from msm.io import atomic_dir
from msm.retrieval.index import SearchIndex
from msm.ui.corpus import Corpus, Passage

MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    id: str
    text: str
    lang: str
    detected_lang: str
    doc: str


@dataclass
class CorpusIndex:
    """A ``SearchIndex`` over a corpus plus what the UI shows per hit."""

    index: SearchIndex
    passages: dict[str, Passage]
    detected: dict[str, str]
    name: str
    model: str

    @property
    def langs(self) -> list[str]:
        return sorted({p.lang or self.detected.get(p.id, "") for p in self.passages.values()} - {""})

    def save(self, out_dir: str | Path) -> Path:
        """``index/`` (``SearchIndex.save``) + ``passages.jsonl`` + ``corpus.json``, written atomically."""
        with atomic_dir(Path(out_dir), overwrite=True) as tmp:
            self.index.save(tmp / "index")
            with open(tmp / "passages.jsonl", "w", encoding="utf-8") as fh:
                for p in self.passages.values():
                    fh.write(json.dumps(dict(asdict(p), detected_lang=self.detected.get(p.id, "")),
                                        ensure_ascii=False) + "\n")
            (tmp / "corpus.json").write_text(json.dumps({"name": self.name, "model": self.model}))
        return Path(out_dir)

    @classmethod
    def load(cls, folder: str | Path, expected_dim: int | None = None) -> CorpusIndex:
        folder = Path(folder)
        meta_file, passages_file = folder / "corpus.json", folder / "passages.jsonl"
        if not meta_file.is_file() or not passages_file.is_file():
            raise MSMError(f"{folder}: not a saved UI index (needs corpus.json, passages.jsonl and index/); "
                           "build one on the Search page and save it")
        index = SearchIndex.load(folder / "index", expected_dim=expected_dim)
        try:
            meta = json.loads(meta_file.read_text())
            rows = [json.loads(line) for line in passages_file.read_text(encoding="utf-8").splitlines() if line]
            passages = {r["id"]: Passage(r["id"], r["text"], r["lang"], r["doc"]) for r in rows}
            detected = {r["id"]: r.get("detected_lang", "") for r in rows}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise MSMError(f"{folder}: corrupt passages.jsonl/corpus.json ({exc}); rebuild the index") from exc
        missing = [i for i in index.ids if i not in passages]
        if missing:
            raise MSMError(f"{folder}: {len(missing)} index ids have no passage (e.g. {missing[0]!r}); rebuild the index")
        return cls(index, passages, detected, meta.get("name", folder.name), meta.get("model", ""))


def detect_languages(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 codes from fastText lid.176 (``msm.data.langid``); ``"?"`` each when it is not installed."""
    try:
        from msm.data.langid import LangID

        return LangID().predict(list(texts))[0] if texts else []
    except (MSMError, ImportError):
        return ["?"] * len(texts)


def build_index(encoder, corpus: Corpus, model_name: str, kind: str = "flat", chunk: int = 256,
                progress: Callable[[int, int], None] | None = None) -> CorpusIndex:
    """Encode ``corpus`` as passages in chunks (``progress(done, total)`` after each) and index it."""
    if not corpus.passages:
        raise MSMError(f"corpus {corpus.name} is empty; pick languages or upload a file with records")
    texts = [p.text for p in corpus.passages]
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start:start + chunk], kind="passage"))
        if progress:
            progress(min(start + chunk, len(texts)), len(texts))
    index = SearchIndex.build(np.concatenate(parts), [p.id for p in corpus.passages], kind=kind, model=model_name)
    detected = dict(zip((p.id for p in corpus.passages), detect_languages(texts)))
    return CorpusIndex(index, {p.id: p for p in corpus.passages}, detected, corpus.name, model_name)


def validate_query(query: str | None, max_chars: int = MAX_QUERY_CHARS) -> str:
    """The stripped query, or ``MSMError`` for an empty or over-long one."""
    q = (query or "").strip()
    if not q:
        raise MSMError("the query is empty; type a sentence or question in any language")
    if len(q) > max_chars:
        raise MSMError(f"the query is {len(q):,} characters; the limit is {max_chars:,} (the encoder reads only "
                       "its first ~128 tokens anyway); shorten it")
    return q


def search(encoder, cindex: CorpusIndex, query: str, k: int = 10, langs: Sequence[str] | None = None
           ) -> tuple[list[Hit], dict[str, float]]:
    """Top-``k`` hits for ``query`` (restricted to ``langs`` when given) and timings in ms (encode, search)."""
    q = validate_query(query)
    if k < 1:
        raise MSMError(f"k={k}; ask for at least 1 hit")
    t0 = time.perf_counter()
    vec = encoder.encode([q], kind="query")
    t1 = time.perf_counter()
    wanted = set(langs or [])
    n = len(cindex.index.ids)
    fetch = min(n, k if not wanted else 4 * k)
    while True:  # with a language filter, widen the search until k hits pass it or the whole index was scanned
        scores, ids = cindex.index.search(vec, fetch)
        hits = []
        for score, pid in zip(scores[0], ids[0]):
            p = cindex.passages[pid]
            lang = p.lang or cindex.detected.get(pid, "")
            if wanted and lang not in wanted:
                continue
            hits.append(Hit(len(hits) + 1, float(score), pid, p.text, lang, cindex.detected.get(pid, "?"), p.doc))
            if len(hits) == k:
                break
        if len(hits) == k or fetch >= n:
            break
        fetch = min(n, fetch * 4)
    t2 = time.perf_counter()
    return hits, {"encode_ms": 1000 * (t1 - t0), "search_ms": 1000 * (t2 - t1)}
