"""Training documents as reader records (:func:`msm.data.schema.record`), for the corpus stage (msm.train.corpus).

Sources ``text`` / ``jsonl`` / ``parquet`` / ``ntrex`` / ``bible`` are mining's inputs (``msm.data.sources``:
file-parallel Ray Data datasources over local paths or URIs; ``msm.data.readers`` without Ray); ``mined`` reads the
``documents/`` shards of an ``msm mine`` output, plus, with ``data.cross_lingual > 0``, code-switched copies.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from msm.data.config import InputConfig
from msm.data.readers import DEFAULT_BIBLE_TRANSLATIONS, DEFAULT_NTREX_LANGS, default_data_dir, read_input
from msm.data.schema import RECORD, record
from msm.errors import MSMError
from msm.train.config import PretrainConfig
from msm.uri import Location, resolve

TRAIN_BOOKS = (40, 66)  # New Testament; validation uses Old Testament chapters
MINED_COLUMNS = ["doc_id", "lang", "sentences"]
CODE_SWITCHED = "mined:code-switched"  # the source of the cross-lingual variant's copies (not capped per language)


def data_dir(cfg: PretrainConfig) -> Path:
    d = Path(cfg.data.data_dir).expanduser() if cfg.data.data_dir else default_data_dir()
    if d is None:
        raise MSMError("no data dir: set data.data_dir (a folder holding ntrex/) or $MSM_DATA_DIR")
    return d


def input_config(cfg: PretrainConfig):
    """The source as one of mining's inputs (all but ``mined``)."""

    d = cfg.data
    if d.source == "ntrex":
        return InputConfig(kind="ntrex", path=str(data_dir(cfg) / "ntrex"), langs=d.languages or DEFAULT_NTREX_LANGS,
                           max_documents=d.max_docs_per_lang)
    if d.source == "bible":
        return InputConfig(kind="bible", langs=d.languages or DEFAULT_BIBLE_TRANSLATIONS, max_documents=d.max_docs_per_lang,
                           book_range=TRAIN_BOOKS)
    if not d.path:
        raise MSMError(f"data.source {d.source!r} needs data.path: a file, a folder or a URI of the corpus")
    return InputConfig(kind=d.source, path=d.path, lang=d.lang)


def check_source(cfg: PretrainConfig) -> None:
    """Before Ray starts: the training documents are there (an ``msm mine`` output, a corpus file or folder of the
    configured kind, the NTREX folder); raises :class:`MSMError` naming ``data.path`` / ``data.data_dir``."""
    from msm.data.sources import check_input  # lazy: ray

    d = cfg.data
    if d.source == "mined":
        mined_folder(cfg)
    elif d.source == "ntrex":
        if not (data_dir(cfg) / "ntrex" / "DOCUMENT_IDS.tsv").is_file():
            raise MSMError(f"data.data_dir {data_dir(cfg)}: no ntrex/DOCUMENT_IDS.tsv there; point data.data_dir (or "
                           "$MSM_DATA_DIR) at the folder holding ntrex/")
    elif d.source != "bible":
        check_input(input_config(cfg), 0, Path.cwd())


def local_records(cfg: PretrainConfig) -> Iterator[dict]:
    """Every record of the source, in order, in this process."""
    if cfg.data.source == "mined":
        yield from _mined_records(cfg)
        return

    yield from read_input(input_config(cfg), 0, data_dir(cfg) if cfg.data.source == "ntrex" else Path.cwd())


def ray_records(cfg: PretrainConfig):
    """The same records as a Ray Dataset (read tasks run file-parallel on the cluster)."""
    import ray.data  # lazy: ray


    if cfg.data.source != "mined":
        from msm.data.sources import read_input_dataset  # lazy: ray

        return read_input_dataset(input_config(cfg), 0, data_dir(cfg) if cfg.data.source == "ntrex" else Path.cwd())
    folder = mined_folder(cfg)
    docs = folder.join("documents")
    ds = ray.data.read_parquet(docs.path, filesystem=docs.fs, file_extensions=["parquet"]).select_columns(MINED_COLUMNS)
    # by id: the mined documents' files hold them in the order the mining tasks finished, which varies from run to
    # run and with the cluster's shape; the same mined set must give the same corpus (the same training)
    ds = ds.sort("doc_id")

    def to_records(batch: pa.Table) -> pa.Table:
        return pa.Table.from_pylist([_mined_record(r) for r in batch.to_pylist()], schema=RECORD)

    ds = ds.map_batches(to_records, batch_format="pyarrow")
    if cfg.data.cross_lingual > 0:  # one task holds the pairs and their documents (see code_switched_records)
        ds = ds.union(ray.data.range(1).map_batches(
            lambda _: pa.Table.from_pylist(code_switched_records(cfg), schema=RECORD), batch_format="pyarrow"))
    return ds


def _mined_record(row: dict) -> dict:
    return record(row["doc_id"], lang=row["lang"], source="mined", sentences=row["sentences"] or [])


def mined_folder(cfg: PretrainConfig) -> Location:
    """The ``msm mine`` output at ``data.path``, a local folder or a URI (node-independent: every worker reads it
    through its filesystem)."""
    if not cfg.data.path:
        raise MSMError("data.source 'mined' needs data.path: the output_dir of an `msm mine` run")
    folder = resolve(cfg.data.path)
    if not folder.join("manifest.json").is_file() or not folder.join("documents").files(".parquet"):
        raise MSMError(f"{folder.uri}: not an `msm mine` output (need manifest.json and documents/*.parquet); "
                       "run `msm mine --config configs/mine/...` first or fix data.path")
    return folder


def _mined_records(cfg: PretrainConfig) -> Iterator[dict]:
    docs = _read_shards(mined_folder(cfg).join("documents"), MINED_COLUMNS)
    for row in sorted(zip(*(docs[c] for c in MINED_COLUMNS)), key=lambda r: r[0]):  # by id, as ray_records
        yield _mined_record(dict(zip(MINED_COLUMNS, row)))
    if cfg.data.cross_lingual > 0:
        yield from code_switched_records(cfg)


def code_switched_records(cfg: PretrainConfig) -> list[dict]:
    """The code-switched copies of the kept mined documents as records (ids ``<doc_id>#xl<n>``).

    Kept = the documents the corpus keeps (selected languages, the first ``max_docs_per_lang`` of each). This reads
    the mined documents and pairs whole, in one process: the variant is sized for mined outputs of demo scale."""

    folder = mined_folder(cfg)
    docs = _read_shards(folder.join("documents"), MINED_COLUMNS)
    kept: dict[str, list[str]] = {}
    count: dict[str, int] = {}
    cap = cfg.data.max_docs_per_lang
    for doc_id, lang, sents in sorted(zip(docs["doc_id"], docs["lang"], docs["sentences"]), key=lambda r: r[0]):
        if (cfg.data.languages and lang not in cfg.data.languages) or (cap is not None and count.get(lang, 0) >= cap):
            continue
        count[lang] = count.get(lang, 0) + 1
        kept[doc_id] = sents or []
    copies = code_switched(folder, kept, dict(zip(docs["doc_id"], docs["sentences"])), docs, cfg)
    return [record(f"{doc_id}#xl{n}", lang=lang, source=CODE_SWITCHED, sentences=sents)
            for n, (doc_id, sents, lang) in enumerate(copies)]


def _read_shards(folder: Location, columns: list[str]) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in columns}
    for f in folder.files(".parquet"):
        try:
            table = pq.read_table(f, columns=columns, filesystem=folder.fs)
        except Exception as exc:  # pyarrow raises several types for truncated/foreign files
            raise MSMError(f"{f}: unreadable or wrong schema for a {posixpath.basename(folder.path)} shard ({exc}); "
                           "re-run `msm mine` to rewrite the output") from exc
        for c in columns:
            cols[c] += table.column(c).to_pylist()
    return cols


def code_switched(folder: Location, kept: dict[str, list[str]], all_docs: dict[str, list[str]], docs: dict,
                  cfg: PretrainConfig) -> list[tuple[str, list[str], str]]:
    """Our cross-lingual variant: for each kept document with an aligned partner, a copy whose sentences are
    replaced, each with probability ``data.cross_lingual``, by the partner sentence of a 1-1 link (same position
    in the other language). The copy keeps the document's language label (its memory bank). Returns
    (document id, sentences, language) per copy."""
    lang_of = dict(zip(docs["doc_id"], docs["lang"]))
    pairs = _read_shards(folder.join("pairs"), ["src_doc_id", "tgt_doc_id", "links"])
    g = torch.Generator().manual_seed(cfg.run.seed)
    out = []
    for src, tgt, links in zip(pairs["src_doc_id"], pairs["tgt_doc_id"], pairs["links"]):
        for a, b, flip in ((src, tgt, False), (tgt, src, True)):
            if a not in kept:
                continue
            mapping = {(ln["tgt"] if flip else ln["src"])[0]: (ln["src"] if flip else ln["tgt"])[0]
                       for ln in links or [] if len(ln["src"]) == 1 and len(ln["tgt"]) == 1}
            sents = list(kept[a])
            draws = torch.rand(len(sents), generator=g).tolist()
            for i in range(len(sents)):
                if i in mapping and draws[i] < cfg.data.cross_lingual and mapping[i] < len(all_docs[b]):
                    sents[i] = all_docs[b][mapping[i]]
            out.append((a, sents, lang_of[a]))
    return out
