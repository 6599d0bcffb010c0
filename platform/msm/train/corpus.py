"""Stage 1 of pretraining: the training documents as tokenised sentence blocks, ``<run.output_dir>/corpus/``.

    read     every data.source as reader records, streamed (mining's file-parallel datasources; msm.train.data)
    prepare  text / jsonl / parquet: mining's clean, language ID and segmentation (msm.data.prepare);
             ntrex / bible / mined: already sentences and languages
    cap      the first data.max_docs_per_lang documents of each language (when set: one ordered task)
    tokenise blocks of model.max_sentences (msm.model.batching.blocks), each sentence cut at model.max_tokens
             tokens, no padding (parallel Ray Data tasks)
    write    part=blocks/*.parquet (doc_id, block, lang, input_ids) and part=quarantine/*.parquet (doc_id, source,
             reason) in a staging folder; commit: it becomes corpus/, manifest.json last (counts, files, languages)

Every record is accounted for: kept (its blocks), or quarantined with a reason (unreadable, empty, wrong or
unselected language, too few sentences for a block, beyond the per-language cap). The corpus is reused when its
settings match (a resumed run reads the same blocks), rebuilt otherwise. :func:`build` drives the stages through
Ray Data (the driver only coordinates and sums counts); :func:`build_local` runs the same plain functions in this
process (tests, benchmarks, runs without Ray).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import time
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from msm import code_version
from msm.config import to_dict
from msm.data.config import EmbedConfig, LangIDConfig, MineConfig, SegmentConfig
from msm.errors import MSMError, as_user_error
from msm.model.batching import blocks
from msm.runtime import DATA_CPUS, read_parquet_files
from msm.train.config import PretrainConfig
from msm.train.data import CODE_SWITCHED, local_records, ray_records
from msm.uri import Location, commit_dir, resolve, sibling

BLOCKS = pa.schema([("doc_id", pa.string()), ("block", pa.int32()), ("lang", pa.string()),
                    ("input_ids", pa.list_(pa.list_(pa.int32())))])
QUARANTINE = pa.schema([("doc_id", pa.string()), ("source", pa.string()), ("reason", pa.string())])
ROWS = pa.schema([*BLOCKS, ("source", pa.string()), ("reason", pa.string()), ("part", pa.string())])
PREPARED = pa.schema([("doc_id", pa.string()), ("lang", pa.string()), ("source", pa.string()),
                      ("sentences", pa.list_(pa.string())), ("reason", pa.string())])
ROWS_PER_FILE = 4096  # blocks per Parquet file: many files, so each worker reads its own (msm.train.stream)
MANIFEST = "manifest.json"


BATCHING = ("docs_per_batch", "single_language_batches", "shuffle_buffer")  # data.* keys of msm.train.stream


def location(cfg: PretrainConfig) -> Location:
    return resolve(cfg.data.corpus_dir) if cfg.data.corpus_dir else resolve(cfg.run.output_dir).join("corpus")


def settings(cfg: PretrainConfig) -> dict:
    """What the corpus depends on (a corpus with other settings is rebuilt)."""
    d = to_dict(cfg.data)
    for k in (*BATCHING, "corpus_dir"):
        d.pop(k)
    return {"data": d, "encoder": cfg.model.encoder, "max_sentences": cfg.model.max_sentences,
            "max_tokens": cfg.model.max_tokens}


def reason_key(reason: str) -> str:
    return reason.split(":", 1)[0]


# ---- plain functions (no Ray) ------------------------------------------------------------------------------------

def prepared_rows(records: list[dict], cfg: PretrainConfig) -> list[dict]:
    """Reader records → :data:`PREPARED` rows (``reason`` None = kept)."""
    if cfg.data.source in ("text", "jsonl", "parquet"):
        from msm.data.prepare import prepare_records  # lazy: numpy

        rows = prepare_records(records, mine_config(cfg))
    else:
        rows = [{**r, "reason": r["error"]} for r in records]
        # ntrex / bible: the reader read only data.languages (NTREX tags, Bible translation codes: not the records'
        # ISO codes); mined documents are selected here
        selected = cfg.data.languages if cfg.data.source == "mined" else []
        for r in rows:
            if r["reason"] is None and selected and r["lang"] not in selected:
                r["reason"] = f"language_not_selected: {r['lang']!r} not in data.languages={cfg.data.languages}"
    return [{k: r[k] for k in PREPARED.names} for r in rows]


def mine_config(cfg: PretrainConfig):
    """Mining's settings for the prepare stage of text / jsonl / parquet corpora."""

    # sentences are kept whole (truncated to model.max_tokens when tokenised, as the reference), not chunked
    return MineConfig(languages=cfg.data.languages, langid=LangIDConfig(enabled=cfg.data.langid),
                      segment=SegmentConfig(max_tokens=0), embed=EmbedConfig(model=cfg.model.encoder))


class Cap:
    """Keep the first ``cap`` kept documents of each language (in stream order); the rest are quarantined.
    Code-switched copies (``data.cross_lingual``) are copies of kept documents: not counted."""

    def __init__(self, cap: int | None) -> None:
        self.cap, self.count = cap, {}

    def __call__(self, rows: list[dict]) -> list[dict]:
        for r in rows:
            if self.cap is None or r["reason"] is not None or r["source"] == CODE_SWITCHED:
                continue
            n = self.count.get(r["lang"], 0)
            self.count[r["lang"]] = n + 1
            if n >= self.cap:
                r["reason"] = f"over_max_docs_per_lang: more than data.max_docs_per_lang={self.cap} in {r['lang']!r}"
        return rows


def tokenised_rows(rows: list[dict], tokenizer, max_sentences: int, max_tokens: int) -> list[dict]:
    """:data:`PREPARED` rows → :data:`ROWS`: one row per block of a kept document (``part`` "blocks"), one per
    quarantined document (``part`` "quarantine"). Sentences are tokenised as :func:`msm.model.batching.collate`
    does (truncated to ``max_tokens`` with special tokens), without padding."""
    out = []
    for r in rows:
        reason = r["reason"]
        blks = [] if reason else blocks(r["sentences"] or [], max_sentences)
        if not reason and not blks:
            reason = (f"too_few_sentences: {len(r['sentences'] or [])} sentence(s); a block needs 2 (a masked "
                      "sentence is predicted from its neighbours)")
        if reason:
            out.append({"doc_id": r["doc_id"], "block": None, "lang": r["lang"], "input_ids": None,
                        "source": r["source"], "reason": reason, "part": "quarantine"})
            continue
        flat = [s for b in blks for s in b]
        ids = tokenizer(flat, truncation=True, max_length=max_tokens)["input_ids"]
        at = 0
        for i, b in enumerate(blks):
            out.append({"doc_id": r["doc_id"], "block": i, "lang": r["lang"], "input_ids": ids[at:at + len(b)],
                        "source": None, "reason": None, "part": "blocks"})
            at += len(b)
    return out


def _tokenizer(cfg: PretrainConfig):
    from msm.data.prepare import cached_tokenizer  # lazy: numpy

    return cached_tokenizer(cfg.model.encoder)


def _tokenise_batch(batch: pa.Table, cfg: PretrainConfig) -> pa.Table:
    """Ray Data ``map_batches``: prepared rows → :data:`ROWS`."""
    rows = tokenised_rows(batch.to_pylist(), _tokenizer(cfg), cfg.model.max_sentences, cfg.model.max_tokens)
    return pa.Table.from_pylist(rows, schema=ROWS)


def _prepare_batch(batch: pa.Table, cfg: PretrainConfig) -> pa.Table:
    return pa.Table.from_pylist(prepared_rows(batch.to_pylist(), cfg), schema=PREPARED)


class _CapBatches:
    """Ray Data callable around :class:`Cap` (one actor, ordered input: the same documents as :func:`build_local`)."""

    def __init__(self, cap: int) -> None:
        self.cap = Cap(cap)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.Table.from_pylist(self.cap(batch.to_pylist()), schema=PREPARED)


# ---- the manifest ------------------------------------------------------------------------------------------------

def _counts(rows: Iterable[dict]) -> dict:
    """Per-language blocks, documents kept, and quarantined documents per reason, summed over :data:`ROWS` rows
    (or rows with only the columns of their part)."""
    langs: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    kept = sentences = tokens = 0
    for r in rows:
        if r.get("reason"):
            key = reason_key(r["reason"])
            quarantined[key] = quarantined.get(key, 0) + 1
            continue
        langs[r["lang"]] = langs.get(r["lang"], 0) + 1
        kept += r["block"] == 0
        sentences += len(r["input_ids"])
        tokens += sum(len(s) for s in r["input_ids"])
    return {"languages": langs, "kept": kept, "quarantined": quarantined, "sentences": sentences, "tokens": tokens}


def _merge(parts: list[dict]) -> dict:
    out = {"languages": {}, "kept": 0, "quarantined": {}, "sentences": 0, "tokens": 0}
    for p in parts:
        for k in ("languages", "quarantined"):
            for key, n in p[k].items():
                out[k][key] = out[k].get(key, 0) + n
        for k in ("kept", "sentences", "tokens"):
            out[k] += p[k]
    return out


def _manifest(cfg: PretrainConfig, staged: Location, counts: dict, seconds: float, pad_token_id: int) -> dict:
    root = len(staged.path.rstrip("/")) + 1
    files = []
    for f in staged.join("part=blocks").files(".parquet"):
        with staged.fs.open_input_file(f) as fh:
            files.append({"path": f[root:], "rows": pq.ParquetFile(fh).metadata.num_rows})
    if not counts["languages"]:
        raise MSMError(f"empty dataset: no document of data.source={cfg.data.source!r} gave a block of 2 or more "
                       f"sentences ({counts['quarantined'] or 'no document read'}); check data.source, data.path / "
                       "data.data_dir and data.languages")
    out = {"settings": settings(cfg), "files": files, "blocks": sum(f["rows"] for f in files),
           "documents": {"read": counts["kept"] + sum(counts["quarantined"].values()), "kept": counts["kept"],
                         "quarantined": counts["quarantined"]},
           "languages": dict(sorted(counts["languages"].items())), "sentences": counts["sentences"],
           "tokens": counts["tokens"], "pad_token_id": pad_token_id, "code_version": code_version(),
           "seconds": round(seconds, 1)}
    out["fingerprint"] = hashlib.sha256(json.dumps([out["settings"], files, out["languages"]]).encode()).hexdigest()[:16]
    return out


def load(cfg: PretrainConfig) -> dict | None:
    """The committed corpus of this run if its settings match ``cfg`` (else None)."""
    loc = location(cfg)
    if not loc.join(MANIFEST).is_file():
        return None
    manifest = json.loads(loc.join(MANIFEST).read_text())
    return manifest if manifest.get("settings") == json.loads(json.dumps(settings(cfg))) else None


def refuse_other_settings(cfg: PretrainConfig) -> None:
    """A run with checkpoints keeps its corpus: raise if the committed one was built with other settings."""
    loc = location(cfg)
    if loc.join(MANIFEST).is_file() and load(cfg) is None:
        raise MSMError(f"{loc.uri}: this run's corpus was built with other data settings than the config's "
                       "(data.*, model.encoder / max_sentences / max_tokens); resume with the run's own config "
                       "(msm pretrain --resume <run dir>) or start a new run in another run.output_dir")


def _commit(cfg: PretrainConfig, staged: Location, counts: dict, t0: float, log, pad_token_id: int) -> dict:
    manifest = _manifest(cfg, staged, counts, time.perf_counter() - t0, pad_token_id)
    commit_dir(staged, location(cfg), json.dumps(manifest, indent=2, ensure_ascii=False), MANIFEST)
    d = manifest["documents"]
    log(f"corpus: {d['kept']} of {d['read']} documents kept, {manifest['blocks']} blocks in "
        f"{len(manifest['languages'])} language(s), quarantined {d['quarantined'] or 'none'} -> {location(cfg).uri}")
    return manifest


# ---- the two drivers ---------------------------------------------------------------------------------------------

def build_local(cfg: PretrainConfig, log=print, chunk: int = 256, resuming: bool = False) -> dict:
    """The corpus, built in this process (or reused); returns its manifest. ``resuming``: refuse to rebuild."""

    if resuming:
        refuse_other_settings(cfg)
    found = load(cfg)
    if found is not None:
        return found
    t0 = time.perf_counter()
    staged = sibling(location(cfg), "staging")
    staged.delete()
    tok, cap = _tokenizer(cfg), Cap(cfg.data.max_docs_per_lang)
    writers = {part: _Writer(staged.join(f"part={part}"), schema) for part, schema in
               (("blocks", BLOCKS), ("quarantine", QUARANTINE))}
    counted = []
    for records in _chunks(local_records(cfg), chunk):
        rows = tokenised_rows(cap(prepared_rows(records, cfg)), tok, cfg.model.max_sentences, cfg.model.max_tokens)
        counted.append(_counts(rows))
        for part, w in writers.items():
            w.add([r for r in rows if r["part"] == part])
    for w in writers.values():
        w.close()
    return _commit(cfg, staged, _merge(counted), t0, log, tok.pad_token_id)


def build(cfg: PretrainConfig, log=print, resuming: bool = False) -> dict:
    """The corpus, built through Ray Data on the current cluster (or reused); returns its manifest.
    ``resuming``: refuse to rebuild."""
    import ray.data  # lazy: ray


    if resuming:
        refuse_other_settings(cfg)
    found = load(cfg)
    if found is not None:
        log(f"corpus: reusing {location(cfg).uri} ({found['blocks']} blocks)")
        return found
    t0 = time.perf_counter()
    staged = sibling(location(cfg), "staging")
    staged.delete()
    try:
        with _ordered(True):  # the per-language cap needs it, and the same corpus files on every cluster too
            ds = ray_records(cfg).map_batches(_prepare_batch, fn_kwargs={"cfg": cfg}, batch_format="pyarrow",
                                              batch_size=256)
            if cfg.data.max_docs_per_lang is not None:
                ds = ds.map_batches(_CapBatches, fn_constructor_kwargs={"cap": cfg.data.max_docs_per_lang},
                                    batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.25)
            ds = ds.map_batches(_tokenise_batch, fn_kwargs={"cfg": cfg}, batch_format="pyarrow", batch_size=256)
            ds.write_parquet(staged.path, filesystem=staged.fs, partition_cols=["part"],
                             max_rows_per_file=ROWS_PER_FILE)
        counts = _merge([_counted(staged, part) for part in ("blocks", "quarantine")])
        pad_token_id = ray.get(ray.remote(num_cpus=DATA_CPUS)(_pad_token_id).remote(cfg))
    except Exception as exc:
        raise as_user_error(exc) from exc
    return _commit(cfg, staged, counts, t0, log, pad_token_id)


def _pad_token_id(cfg: PretrainConfig) -> int:
    return _tokenizer(cfg).pad_token_id


def _counted(staged: Location, part: str) -> dict:
    """:func:`_counts` of the staged ``part`` files, computed by Ray Data tasks: the driver gets one small
    JSON row per block of the corpus and merges them (the corpus itself never reaches it)."""
    folder = staged.join(f"part={part}")
    files = [posixpath.relpath(f, folder.path) for f in folder.files(".parquet")]
    if not files:
        return _merge([])
    cols = ["block", "lang", "input_ids"] if part == "blocks" else ["reason"]
    ds = read_parquet_files(folder, files, cols)
    ds = ds.map_batches(lambda t: pa.table({"counts": [json.dumps(_counts(t.to_pylist()))]}),
                                             batch_format="pyarrow", num_cpus=DATA_CPUS)
    return _merge([json.loads(r["counts"]) for r in ds.take_all()])


@contextlib.contextmanager
def _ordered(on: bool) -> Iterator[None]:
    """Ray Data keeps the read order (needed by the per-language cap, and for the same blocks in the same files
    whatever the cluster's shape: one node or two give the same corpus, so the same losses), the caller's setting
    restored after."""
    from ray.data.context import DataContext  # lazy: ray

    opts = DataContext.get_current().execution_options
    previous = opts.preserve_order
    opts.preserve_order = previous or on
    try:
        yield
    finally:
        opts.preserve_order = previous


def _chunks(it: Iterable[dict], n: int) -> Iterator[list[dict]]:
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


class _Writer:
    """Parquet files of at most :data:`ROWS_PER_FILE` rows under ``loc`` (the local driver's writer)."""

    def __init__(self, loc: Location, schema: pa.Schema) -> None:
        self.loc, self.schema, self.rows, self.n = loc, schema, [], 0

    def add(self, rows: list[dict]) -> None:
        self.rows += [{k: r[k] for k in self.schema.names} for r in rows]
        while len(self.rows) >= ROWS_PER_FILE:
            self._flush(self.rows[:ROWS_PER_FILE])
            self.rows = self.rows[ROWS_PER_FILE:]

    def close(self) -> None:
        if self.rows or not self.n:
            self._flush(self.rows)

    def _flush(self, rows: list[dict]) -> None:
        self.loc.mkdir()
        with self.loc.fs.open_output_stream(self.loc.join(f"part-{self.n:05d}.parquet").path) as fh:
            pq.write_table(pa.Table.from_pylist(rows, schema=self.schema), fh)
        self.n += 1


def load_documents(cfg: PretrainConfig) -> list[tuple[list[str], str]]:
    """(sentences, language) of every kept document, in memory: the small corpora only (validation uses it to
    keep its held-out sentences out of NTREX / Bible / mined training data)."""

    if cfg.data.source not in ("ntrex", "bible", "mined"):
        raise MSMError(f"load_documents: data.source {cfg.data.source!r} is a corpus; it is streamed, not loaded")
    rows = Cap(cfg.data.max_docs_per_lang)(prepared_rows(list(local_records(cfg)), cfg))
    return [(r["sentences"], r["lang"]) for r in rows if r["reason"] is None]
