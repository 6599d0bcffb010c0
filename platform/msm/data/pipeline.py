"""The ``msm mine`` Ray Data pipeline: the only module here that touches Ray.

read (driver) -> prepare (Ray Data map_batches: clean, language ID, segment) -> embed (Ray Data actor pool,
length-sorted batches) -> pair + align (driver, NumPy/faiss) -> write Parquet shards + manifest (atomic).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from msm import code_version
from msm.config import to_dict
from msm.data.align import align
from msm.data.config import MineConfig
from msm.data.embed import SentenceEmbedder, document_embeddings
from msm.data.langid import XLMR_LANGUAGES
from msm.data.pair import pair_documents
from msm.data.prepare import prepare_batch
from msm.data.readers import default_data_dir, read_input
from msm.data.schema import DOCUMENTS, PAIRS, QUARANTINE, RECORD
from msm.errors import MSMError
from msm.io import atomic_dir, atomic_write_json
from msm.models.resolve import resolve_model as resolve


def validate_config(cfg: MineConfig) -> None:
    """Fail early, naming the key and the fix."""
    if not cfg.inputs:
        raise MSMError("inputs: empty; add at least one input (kind + path)")
    bad = [lang for lang in cfg.languages if lang not in XLMR_LANGUAGES]
    if bad:
        raise MSMError(f"languages: {bad} cannot be handled by the encoder (XLM-R vocabulary covers "
                       f"{len(XLMR_LANGUAGES)} languages, ISO 639-1 codes such as 'de', 'zh'); remove them")
    if cfg.pair.pivot_lang and cfg.languages and cfg.pair.pivot_lang not in cfg.languages:
        raise MSMError(f"pair.pivot_lang: {cfg.pair.pivot_lang!r} is not in languages={cfg.languages}; add it or set it to null")


def _shards(table: pa.Table, out: Path, name: str, rows: int) -> list[str]:
    (out / name).mkdir()
    files = []
    for n, start in enumerate(range(0, max(table.num_rows, 1), rows)):
        f = out / name / f"part-{n:05d}.parquet"
        pq.write_table(table.slice(start, rows), f)
        files.append(str(f.relative_to(out)))
    return files


def mine(cfg: MineConfig, log=print) -> dict:
    """Run the whole pipeline; returns the manifest (also written to ``<output_dir>/manifest.json``)."""
    import ray
    import ray.data

    validate_config(cfg)
    given = to_dict(cfg)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    records = [r for i, inp in enumerate(cfg.inputs) for r in read_input(inp, i, data_dir)]
    ids = collections.Counter(r["doc_id"] for r in records)
    dup = [d for d, c in ids.items() if c > 1]
    if dup:
        raise MSMError(f"duplicate document ids {dup[:5]}: give every document a unique id within its input")
    timings["read"] = time.perf_counter() - t0
    log(f"[mine] read {len(records)} documents from {len(cfg.inputs)} inputs ({timings['read']:.1f}s)")
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS", "local"), log_to_driver=False)
    model_path = resolve(cfg.embed.model)  # once, on the driver (an alias may be built on first use)
    cfg = dataclasses.replace(cfg, embed=dataclasses.replace(cfg.embed, model=model_path))

    t = time.perf_counter()
    table = pa.Table.from_pylist(records, schema=RECORD)
    n_blocks = max(1, min(16, len(records) // 50))
    step = -(-len(records) // n_blocks) if records else 1
    ds = ray.data.from_arrow([table.slice(s, step) for s in range(0, max(len(records), 1), step)])
    prepared = ds.map_batches(prepare_batch, fn_kwargs={"cfg": cfg}, batch_format="pyarrow", batch_size=None)
    docs = pa.concat_tables(ray.get(prepared.to_arrow_refs())) if records else pa.table({"reason": []})
    docs = docs.sort_by("doc_id") if records else docs
    rows = docs.to_pylist()
    kept = [r for r in rows if r["reason"] is None]
    quarantined = [r for r in rows if r["reason"] is not None]
    timings["prepare"] = time.perf_counter() - t
    log(f"[mine] prepare: kept {len(kept)}, quarantined {len(quarantined)} ({timings['prepare']:.1f}s)")

    t = time.perf_counter()
    offsets = np.cumsum([0] + [len(r["sentences"]) for r in kept])
    texts = [s for r in kept for s in r["sentences"]]
    emb = embed_sentences(texts, cfg)
    timings["embed"] = time.perf_counter() - t
    log(f"[mine] embed: {len(texts)} sentences ({timings['embed']:.1f}s, {len(texts) / max(timings['embed'], 1e-9):.1f}/s)")

    t = time.perf_counter()
    doc_emb = document_embeddings(emb, offsets) if kept else np.zeros((0, 1), np.float32)
    by_lang: dict[str, list[int]] = collections.defaultdict(list)
    for d, r in enumerate(kept):
        by_lang[r["lang"]].append(d)
    langs = sorted(by_lang)
    if cfg.pair.pivot_lang and cfg.pair.pivot_lang not in by_lang:
        log(f"[mine] warning: no kept document in pair.pivot_lang={cfg.pair.pivot_lang!r}; no pairs will be mined")
    if cfg.pair.pivot_lang:
        lang_pairs = [(cfg.pair.pivot_lang, lang) for lang in langs if lang != cfg.pair.pivot_lang and cfg.pair.pivot_lang in by_lang]
    else:
        lang_pairs = [(a, b) for i, a in enumerate(langs) for b in langs[i + 1:]]
    pairs = []
    for la, lb in lang_pairs:
        ia, ib = by_lang[la], by_lang[lb]
        xs = ys = None
        if cfg.pair.rescore != "none":  # sentence-level re-scoring needs each document's sentence embeddings
            xs = [emb[offsets[d]:offsets[d + 1]] for d in ia]
            ys = [emb[offsets[d]:offsets[d + 1]] for d in ib]
        for i, j, m in pair_documents(doc_emb[ia], doc_emb[ib], k=cfg.pair.k, threshold=cfg.pair.margin_threshold,
                                      mutual=cfg.pair.mutual, center_embeddings=cfg.pair.center,
                                      rescore=cfg.pair.rescore, rescore_k=cfg.pair.rescore_k, assign=cfg.pair.assign,
                                      x_sentences=xs, y_sentences=ys, min_coverage=cfg.pair.min_coverage,
                                      skip_penalty=cfg.align.skip_penalty):
            pairs.append((ia[i], ib[j], m))
    timings["pair"] = time.perf_counter() - t
    t = time.perf_counter()
    pair_rows = []
    link_types: collections.Counter = collections.Counter()
    for da, db, m in pairs:
        links = align(emb[offsets[da]:offsets[da + 1]], emb[offsets[db]:offsets[db + 1]],
                      skip_penalty=cfg.align.skip_penalty, allow_many=cfg.align.allow_many)
        link_types.update(f"{len(l.src)}-{len(l.tgt)}" for l in links)
        real = [l.score for l in links if l.src and l.tgt]
        a, b = kept[da], kept[db]
        pair_rows.append({"pair_id": f"{a['doc_id']}|{b['doc_id']}", "src_doc_id": a["doc_id"], "src_lang": a["lang"],
                          "tgt_doc_id": b["doc_id"], "tgt_lang": b["lang"], "pair_score": m,
                          "links": [{"src": list(l.src), "tgt": list(l.tgt), "score": l.score} for l in links],
                          "align_score": float(np.mean(real)) if real else 0.0})
    timings["align"] = time.perf_counter() - t
    log(f"[mine] pair: {len(pairs)} document pairs over {len(lang_pairs)} language pairs ({timings['pair']:.1f}s); "
        f"align: {sum(link_types.values())} links {dict(link_types)} ({timings['align']:.1f}s)")

    t = time.perf_counter()
    partner: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for p in pair_rows:
        partner[p["src_doc_id"]].append((p["pair_id"], p["tgt_doc_id"]))
        partner[p["tgt_doc_id"]].append((p["pair_id"], p["src_doc_id"]))
    doc_rows = [{**{k: r[k] for k in DOCUMENTS.names if k in r},
                 "pair_ids": [p for p, _ in partner[r["doc_id"]]],
                 "aligned_doc_ids": [d for _, d in partner[r["doc_id"]]]} for r in kept]
    q_rows = [{"doc_id": r["doc_id"], "lang": r["lang"], "source": r["source"], "reason": r["reason"],
               "text_prefix": (r["text"] or " ".join(r["sentences"] or []))[:200]} for r in quarantined]
    counts = {
        "input": len(records), "kept": len(kept), "quarantined": len(quarantined),
        "quarantine_reasons": dict(collections.Counter(r["reason"].split(":")[0] for r in quarantined)),
        "documents_by_lang": {lang: len(v) for lang, v in sorted(by_lang.items())},
        "sentences": len(texts), "pairs": len(pair_rows),
        "pairs_by_lang_pair": dict(collections.Counter(f"{p['src_lang']}-{p['tgt_lang']}" for p in pair_rows)),
        "links_by_type": dict(link_types),
    }
    if counts["input"] != counts["kept"] + counts["quarantined"]:
        raise RuntimeError(f"counts do not reconcile: {counts}")
    manifest = {"code_version": code_version(), "config": given, "model_path": model_path, "data_dir": str(data_dir),
                "inputs": [to_dict(i) for i in cfg.inputs], "counts": counts}
    out = Path(cfg.output_dir)
    with atomic_dir(out, overwrite=True) as tmp:
        manifest["files"] = {
            "documents": _shards(pa.Table.from_pylist(doc_rows, schema=DOCUMENTS), tmp, "documents", cfg.shard_rows),
            "pairs": _shards(pa.Table.from_pylist(pair_rows, schema=PAIRS), tmp, "pairs", cfg.shard_rows),
            "quarantine": _shards(pa.Table.from_pylist(q_rows, schema=QUARANTINE), tmp, "quarantine", cfg.shard_rows),
        }
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        manifest["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        atomic_write_json(tmp / "manifest.json", manifest)
    log(f"[mine] input {counts['input']} = kept {counts['kept']} + quarantined {counts['quarantined']} "
        f"{counts['quarantine_reasons']}; wrote {out} ({timings['total']:.1f}s)")
    return manifest


def embed_sentences(texts: list[str], cfg: MineConfig) -> np.ndarray:
    """Embed ``texts`` with an actor pool of :class:`SentenceEmbedder`, longest first (less padding per batch)."""
    import ray.data

    if not texts:
        return np.zeros((0, 1), np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    table = pa.table({"key": pa.array(order, pa.int64()), "text": [texts[i] for i in order]})
    # Blocks made here, not by ds.repartition(): a repartition task needs a free CPU, and an actor pool holding
    # every CPU of the cluster (pool_size 2 on 2 cores) then waits for it forever.
    n_blocks = max(1, min(64, len(texts) // (cfg.embed.batch_size * 4)))
    step = -(-len(texts) // n_blocks)
    ds = ray.data.from_arrow([table.slice(i, step) for i in range(0, len(texts), step)])
    ds = ds.map_batches(
        SentenceEmbedder,
        fn_constructor_kwargs={"model": cfg.embed.model, "max_length": cfg.embed.max_length,
                               "batch_size": cfg.embed.batch_size},
        batch_size=cfg.embed.batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.embed.pool_size),
        **({"num_gpus": cfg.embed.num_gpus} if cfg.embed.num_gpus else {}),
    )
    out = None
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        if out is None:
            out = np.zeros((len(texts), batch["embedding"].shape[1]), np.float32)
        out[batch["key"]] = batch["embedding"]
    return out
