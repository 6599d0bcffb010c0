"""The ``msm mine`` Ray Data graph: the only module here that touches Ray. The driver coordinates; the corpus
flows through Ray Data and files at the output URI, never through the driver.

    read (msm.data.sources: file-parallel datasources) -> prepare (map_batches: clean, language ID, segment)
      -> embed (actor pool, msm.data.embed) -> <work>/prepared/part=<lang>/   (staged, with embeddings)
    counts + duplicate ids (Ray Data aggregates over the staged rows)
    pair (one Ray task per language pair, msm.data.pair_stage) -> <work>/pairs_raw/
    align (map_batches, msm.data.align_stage) -> <staging>/pairs/
    write (msm.data.outputs): documents/ (joined with their pairs), embeddings/, quarantine/ -> <staging>/
    commit (msm.uri.commit_dir): the staging folder becomes <output_dir>, manifest.json last

Every location is a local path or a pyarrow filesystem URI. A crash at any point leaves ``<output_dir>`` as it
was (or absent); the hidden ``.<name>.staging`` / ``.<name>.work`` folders it leaves are replaced by the next run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import ray.data
from ray.data.context import DataContext, ShuffleStrategy
from ray.data.datasource.partitioning import PathPartitionFilter

from msm import code_version
from msm.config import to_dict
from msm.data.align_stage import align_batch, link_type_counts
from msm.data.config import MineConfig
from msm.data.embed import QUARANTINE_PART, DocumentEmbedder
from msm.data.langid import XLMR_LANGUAGES
from msm.data.outputs import (
    EMBEDDINGS_COLUMNS,
    count_rows,
    document_side,
    membership_side,
    merge_document,
    quarantine_rows,
    summarise_counts,
)
from msm.data.pair_stage import pair_language_pair
from msm.data.prepare import prepare_batch
from msm.data.readers import default_data_dir
from msm.data.schema import DOCUMENTS, PAIRS, QUARANTINE, embeddings_schema
from msm.data.sources import check_input, read_inputs
from msm.encoders.resolve import check_model
from msm.errors import MSMError, as_user_error
from msm.output import Kind, claim, commit, drop, json_settings
from msm.runtime import ensure_ray
from msm.uri import Location
from msm.uri import resolve as resolve_uri
from msm.uri import sibling

FAIL_AFTER_ENV = "MSM_MINE_FAIL_AFTER"  # fault drill: raise after the named stage (tests of the commit protocol)


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


def _stage_done(name: str) -> None:
    if os.environ.get(FAIL_AFTER_ENV) == name:
        raise RuntimeError(f"injected failure after stage {name!r} ({FAIL_AFTER_ENV}={name})")


def _write(ds, loc: Location, schema: pa.Schema, max_rows: int) -> list[str]:
    """Write ``ds`` as Parquet under ``loc`` (an empty file with ``schema`` when it has no rows); the files, relative."""
    ds.write_parquet(loc.path, filesystem=loc.fs, max_rows_per_file=max_rows)
    if not loc.files(".parquet"):
        loc.mkdir()
        with loc.fs.open_output_stream(loc.join("part-empty.parquet").path) as fh:
            pq.write_table(schema.empty_table(), fh)
    root = len(posixpath.dirname(loc.path.rstrip("/"))) + 1
    return [f[root:] for f in loc.files(".parquet")]


def _partials(ds, fn, keys: tuple[str, ...]) -> dict[tuple, dict[str, int]]:
    """Sum, per ``keys``, the small partial-count rows ``fn`` makes of each batch (a Ray Data map, then a sum on
    the driver over one row per group and block: no shuffle, and nothing of the corpus on the driver)."""
    out: dict[tuple, dict[str, int]] = {}
    for row in ds.map_batches(fn, batch_format="pyarrow").take_all():
        acc = out.setdefault(tuple(row[k] for k in keys), {})
        for name, value in row.items():
            if name not in keys:
                acc[name] = acc.get(name, 0) + int(value or 0)
    return out


def _rows(root: Location, files: list[str]) -> int:
    """Rows of written Parquet files, from their footers."""
    total = 0
    for f in files:
        with root.fs.open_input_file(root.join(f).path) as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _read(loc: Location, columns: list[str] | None = None, **kwargs):
    ds = ray.data.read_parquet(loc.path, filesystem=loc.fs, **kwargs)
    return ds.select_columns(columns) if columns else ds


def _parts(keep_quarantine: bool):
    return PathPartitionFilter.of(lambda d: (d["part"] == QUARANTINE_PART) == keep_quarantine)


def _actor_cpus(cfg: MineConfig, log) -> float:
    """CPUs per embedding actor: ``embed.num_cpus``, lowered so the pool leaves one CPU of the cluster to the read,
    prepare and write tasks around it (a pool holding every CPU waits forever for its own input)."""

    total = ray.cluster_resources().get("CPU", 1.0)
    want = cfg.embed.num_cpus
    if cfg.embed.pool_size * want <= total - 1:
        return want
    fit = max(0.25, (total - 1) / cfg.embed.pool_size)
    log(f"[mine] embed.pool_size={cfg.embed.pool_size} x embed.num_cpus={want} would hold all {total:g} CPUs; "
        f"each actor asks for {fit:g} CPU so the stages around it can run")
    return fit


def _lang_pairs(cfg: MineConfig, langs: list[str], log) -> list[tuple[str, str]]:
    pivot = cfg.pair.pivot_lang
    if pivot and pivot not in langs:
        log(f"[mine] warning: no kept document in pair.pivot_lang={pivot!r}; no pairs will be mined")
        return []
    if pivot:
        return [(pivot, lang) for lang in langs if lang != pivot]
    return [(a, b) for i, a in enumerate(langs) for b in langs[i + 1:]]


@contextlib.contextmanager
def _sort_shuffle() -> Iterator[None]:
    """Ray Data's sort-based shuffle for the write stage, the caller's strategy restored after.

    It runs as tasks; the default hash shuffle starts one aggregator actor per partition, which on the 2-core
    machine cost 143 s against 81 s for 12 documents (docs/mining.md)."""

    ctx = DataContext.get_current()
    previous, ctx.shuffle_strategy = ctx.shuffle_strategy, ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        ctx.shuffle_strategy = previous


OUTPUT = Kind("mine", "manifest.json", frozenset({"manifest.json", "documents", "embeddings", "pairs", "quarantine"}),
              json_settings("config", verb="mine", ignore=("output_dir",)), what="output_dir")


def mine(cfg: MineConfig, log=print, overwrite: bool = False) -> dict:
    """Run the whole graph; returns the manifest (also written last to ``<output_dir>/manifest.json``).

    The output contract (:mod:`msm.output`) is applied first: the same config's complete output is reused (returned
    as it is), another config's is replaced only with ``overwrite``, a folder holding anything else is refused.
    Inputs and the model are checked before Ray starts."""

    validate_config(cfg)
    given = to_dict(cfg)
    out = resolve_uri(cfg.output_dir)
    found = claim(out, OUTPUT, drop(given, ("output_dir",)), overwrite)
    if found.state == "same" and not overwrite:
        log(f"[mine] {out.uri} already holds this config's complete output; reusing it (--overwrite mines again)")
        return json.loads(out.join("manifest.json").read_text())
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data_dir = Path(cfg.data_dir) if cfg.data_dir else (default_data_dir() or Path.cwd())  # relative input paths
    for i, inp in enumerate(cfg.inputs):
        check_input(inp, i, data_dir)
    model_path = check_model(cfg.embed.model, "embed.model")  # once, on the driver (an alias is built on first use)
    work, staged = sibling(out, "work"), sibling(out, "staging")
    work.delete()
    staged.delete()  # what a crashed run left: this run replaces it
    ensure_ray(log_to_driver=False)
    cfg = dataclasses.replace(cfg, embed=dataclasses.replace(cfg.embed, model=model_path))
    prepared = work.join("prepared")

    # read -> prepare -> embed -> staged rows (one streaming execution)
    t = time.perf_counter()
    ds = read_inputs(cfg.inputs, data_dir, cfg.read_block_records)
    ds = ds.map_batches(prepare_batch, fn_kwargs={"cfg": cfg}, batch_format="pyarrow", batch_size=None)
    ds = ds.map_batches(
        DocumentEmbedder,
        fn_constructor_kwargs={"model": cfg.embed.model, "max_length": cfg.embed.max_length,
                               "batch_size": cfg.embed.batch_size},
        batch_size=cfg.embed.docs_per_batch, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=cfg.embed.pool_size), num_cpus=_actor_cpus(cfg, log),
        **({"num_gpus": cfg.embed.num_gpus} if cfg.embed.num_gpus else {}))
    ds.write_parquet(prepared.path, filesystem=prepared.fs, partition_cols=["part"])
    timings["read_prepare_embed"] = time.perf_counter() - t
    _stage_done("embed")

    if not prepared.files(".parquet"):
        paths = ", ".join(i.path or f"the {i.kind} wheel" for i in cfg.inputs)
        raise MSMError(f"inputs: no document was read from the inputs ({paths}); the files are empty, or hold no "
                       "record of their kind: check inputs[].path and inputs[].kind")
    t = time.perf_counter()
    groups = _partials(_read(prepared, ["part", "reason", "n_sentences", "detected_lang"]), count_rows,
                       ("part", "code", "detected"))
    counts = summarise_counts(groups)
    timings["count"] = time.perf_counter() - t
    log(f"[mine] read, prepare, embed: kept {counts['kept']} documents ({counts['sentences']} sentences), "
        f"quarantined {counts['quarantined']} ({timings['read_prepare_embed']:.1f}s)")

    t = time.perf_counter()
    lang_pairs = _lang_pairs(cfg, sorted(counts["documents_by_lang"]), log)
    task = ray.remote(num_cpus=1)(pair_language_pair)
    work.join("pairs_raw").mkdir()
    refs = {task.remote(prepared, a, b, cfg.pair, cfg.align, work.join("pairs_raw", f"{a}-{b}.parquet")): (a, b)
            for a, b in lang_pairs}
    summaries = []
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        summaries.append(ray.get(done[0]))
        refs.pop(done[0])
        s = summaries[-1]
        log(f"[mine] pair {s['lang_pair']}: {s['pairs']} pairs of {s['src_documents']} x {s['tgt_documents']} "
            f"documents ({s['knn']} kNN, {s['seconds']:.1f}s) [{len(summaries)}/{len(lang_pairs)}]")
    timings["pair"] = time.perf_counter() - t
    _stage_done("pair")

    t = time.perf_counter()
    files: dict[str, list[str]] = {}
    pairs_loc = staged.join("pairs")
    if summaries:
        aligned = _read(work.join("pairs_raw")).map_batches(
            align_batch, fn_kwargs={"skip_penalty": cfg.align.skip_penalty, "allow_many": cfg.align.allow_many},
            batch_format="pyarrow", batch_size=64)
        files["pairs"] = _write(aligned, pairs_loc, PAIRS, cfg.shard_rows)
    else:
        files["pairs"] = _write(ray.data.from_arrow(PAIRS.empty_table()), pairs_loc, PAIRS, cfg.shard_rows)
    pairs_ds = _read(pairs_loc)
    links_by_type = {key[0]: g["count"] for key, g in sorted(_partials(pairs_ds, link_type_counts, ("link_type",)).items())}
    timings["align"] = time.perf_counter() - t
    log(f"[mine] align: {sum(links_by_type.values())} links {links_by_type} ({timings['align']:.1f}s)")
    _stage_done("align")

    t = time.perf_counter()
    doc_columns = [f.name for f in DOCUMENTS if f.name not in ("pair_ids", "aligned_doc_ids")]
    with _sort_shuffle():
        empty = ray.data.from_arrow(pa.table({}))  # a stage with no rows still writes one empty file of its schema
        if counts["kept"]:
            merged = (_read(prepared, doc_columns, partition_filter=_parts(False))
                      .map_batches(document_side, batch_format="pyarrow")
                      .union(pairs_ds.map_batches(membership_side, batch_format="pyarrow"))
                      .groupby("doc_id", num_partitions=cfg.shuffle_partitions)
                      .map_groups(merge_document, batch_format="pyarrow"))
            try:
                files["documents"] = _write(merged, staged.join("documents"), DOCUMENTS, cfg.shard_rows)
            except Exception as exc:  # Ray wraps the task's error; a duplicate id is the user's to fix
                raise as_user_error(exc) from exc
            files["embeddings"] = _write(_read(prepared, list(EMBEDDINGS_COLUMNS), partition_filter=_parts(False)),
                                         staged.join("embeddings"), embeddings_schema(None), cfg.shard_rows)
        else:
            files["documents"] = _write(empty, staged.join("documents"), DOCUMENTS, cfg.shard_rows)
            files["embeddings"] = _write(empty, staged.join("embeddings"), embeddings_schema(None), cfg.shard_rows)
        quarantined = (_read(prepared, partition_filter=_parts(True))
                       .map_batches(quarantine_rows, batch_format="pyarrow") if counts["quarantined"] else empty)
        files["quarantine"] = _write(quarantined, staged.join("quarantine"), QUARANTINE, cfg.shard_rows)
    written = {name: _rows(staged, files[name]) for name in ("documents", "quarantine", "pairs")}
    counts.update(pairs=written["pairs"], links_by_type=links_by_type,
                  pairs_by_lang_pair={s["lang_pair"]: s["pairs"] for s in sorted(summaries, key=lambda s: s["lang_pair"])})
    if not (counts["input"] == written["documents"] + written["quarantine"]
            and written["documents"] == counts["kept"] and written["quarantine"] == counts["quarantined"]
            and written["pairs"] == sum(s["pairs"] for s in summaries)):
        raise RuntimeError(f"counts do not reconcile: staged {counts}, written {written}")
    _stage_done("write")
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    manifest = {"verb": "mine", "code_version": code_version(), "config": given, "model_path": model_path, "data_dir": str(data_dir),
                "inputs": [to_dict(i) for i in cfg.inputs], "counts": counts, "pairing": sorted(
                    summaries, key=lambda s: s["lang_pair"]),
                "timings_s": {k: round(v, 3) for k, v in timings.items()},
                "files": files}
    commit(staged, out, OUTPUT, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    work.delete()
    log(f"[mine] input {counts['input']} = kept {counts['kept']} + quarantined {counts['quarantined']} "
        f"{counts['quarantine_reasons']}; {counts['pairs']} pairs; wrote {out.uri} ({timings['total']:.1f}s)")
    return manifest
