"""Training data: documents (NTREX, Bible, or ``msm mine`` shards) → sentence blocks → tokenised batches.

Batches are planned on the driver (which blocks go together: one language per batch as the reference, or mixed)
and tokenised in a Ray Data ``map_batches`` stage, so the training loop only moves tensors. One dataset row is
one training batch: ``input_ids``/``attention_mask [B,S,T]``, ``sentence_mask [B,S]``, ``lang [B]``, ``index``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from msm.errors import MSMError
from msm.model.batching import blocks, collate
from msm.model.smoke import BIBLE_TRANSLATIONS, NTREX_LANGS
from msm.train.config import PretrainConfig

TRAIN_BOOKS = (40, 66)  # New Testament; validation uses Old Testament chapters
TOKENIZE_CPUS = 0.25  # the Ray Data tokenizer actor: light, so it fits beside workers holding whole CPUs


def data_dir(cfg: PretrainConfig) -> Path:
    from msm.model.smoke import default_data_dir

    d = Path(cfg.data.data_dir).expanduser() if cfg.data.data_dir else default_data_dir()
    if d is None:
        raise MSMError("no data dir: set data.data_dir (a folder holding ntrex/) or $MSM_DATA_DIR")
    return d


def load_documents(cfg: PretrainConfig) -> list[tuple[list[str], str]]:
    """(sentences, language) per training document."""
    from msm.data.readers import read_bible, read_ntrex

    d = cfg.data
    if d.source == "ntrex":
        ntrex = data_dir(cfg) / "ntrex"
        recs = read_ntrex(ntrex, "train", d.languages or NTREX_LANGS, d.max_docs_per_lang)
    elif d.source == "bible":
        recs = read_bible(None, "train", d.languages or BIBLE_TRANSLATIONS, d.max_docs_per_lang, TRAIN_BOOKS)
    else:
        return _mined_documents(cfg)
    return [(r["sentences"], r["lang"]) for r in recs]


def _mined_documents(cfg: PretrainConfig) -> list[tuple[list[str], str]]:
    """Documents of an ``msm mine`` output (``documents/*.parquet``), at most ``max_docs_per_lang`` per language;
    with ``data.cross_lingual > 0`` their sentences are code-switched through the aligned pairs."""
    if not cfg.data.path:
        raise MSMError("data.source 'mined' needs data.path: the output_dir of an `msm mine` run")
    folder = Path(cfg.data.path).expanduser()
    if not (folder / "manifest.json").is_file() or not list((folder / "documents").glob("*.parquet")):
        raise MSMError(f"{folder}: not an `msm mine` output (need manifest.json and documents/*.parquet); "
                       "run `msm mine --config configs/mine/...` first or fix data.path")
    docs = _read_shards(folder / "documents", ["doc_id", "lang", "sentences"])
    out: list[tuple[list[str], str]] = []
    kept: dict[str, list[str]] = {}
    count: dict[str, int] = {}
    for doc_id, lang, sents in zip(docs["doc_id"], docs["lang"], docs["sentences"]):
        if (cfg.data.languages and lang not in cfg.data.languages) or count.get(lang, 0) >= cfg.data.max_docs_per_lang:
            continue
        count[lang] = count.get(lang, 0) + 1
        kept[doc_id] = sents or []
        out.append((sents or [], lang))
    if cfg.data.cross_lingual > 0:
        out += code_switched(folder, kept, dict(zip(docs["doc_id"], docs["sentences"])), docs, cfg)
    return out


def _read_shards(folder: Path, columns: list[str]) -> dict[str, list]:
    import pyarrow.parquet as pq

    cols: dict[str, list] = {c: [] for c in columns}
    for f in sorted(folder.glob("*.parquet")):
        try:
            table = pq.read_table(f, columns=columns)
        except Exception as exc:  # pyarrow raises several types for truncated/foreign files
            raise MSMError(f"{f}: unreadable or wrong schema for a {folder.name} shard ({exc}); "
                           "re-run `msm mine` to rewrite the output") from exc
        for c in columns:
            cols[c] += table.column(c).to_pylist()
    return cols


def code_switched(folder: Path, kept: dict[str, list[str]], all_docs: dict[str, list[str]], docs: dict,
                  cfg: PretrainConfig) -> list[tuple[list[str], str]]:
    """Our cross-lingual variant: for each kept document with an aligned partner, a copy whose sentences are
    replaced, each with probability ``data.cross_lingual``, by the partner sentence of a 1-1 link (same position
    in the other language). The copy keeps the document's language label (its memory bank)."""
    lang_of = dict(zip(docs["doc_id"], docs["lang"]))
    pairs = _read_shards(folder / "pairs", ["src_doc_id", "tgt_doc_id", "links"])
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
            out.append((sents, lang_of[a]))
    return out


def plan_batches(cfg: PretrainConfig) -> list[dict]:
    """Which sentence blocks form each batch, in a seeded order: ``{"index", "blocks", "langs"}`` per batch."""
    m = cfg.model
    items = [(blk, lang) for doc, lang in load_documents(cfg) for blk in blocks(doc, m.max_sentences)]
    if not items:
        raise MSMError(f"empty dataset: no document of data.source={cfg.data.source!r} has 2 or more sentences; "
                       "check data.source, data.path / data.data_dir and data.languages")
    lang_ids = {lang: i for i, lang in enumerate(sorted({lang for _, lang in items}))}
    groups = ([[it for it in items if it[1] == lang] for lang in sorted(lang_ids)]
              if cfg.data.single_language_batches else [items])
    n = cfg.data.docs_per_batch
    plans = [{"blocks": [b for b, _ in g[i:i + n]], "langs": [lang_ids[lang] for _, lang in g[i:i + n]]}
             for g in groups for i in range(0, len(g) - n + 1, n)]
    if not plans:
        raise MSMError(f"empty dataset: fewer than data.docs_per_batch={n} blocks in every batch group; "
                       "lower docs_per_batch or add documents")
    order = torch.randperm(len(plans), generator=torch.Generator().manual_seed(cfg.run.seed)).tolist()
    return [dict(plans[j], index=i) for i, j in enumerate(order)]


def fingerprint(plans: list[dict]) -> str:
    """SHA-256 of the planned batches (stored in checkpoints: resuming on other data is refused)."""
    h = hashlib.sha256()
    for p in plans:
        h.update(json.dumps([p["blocks"], p["langs"]], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


class Tokenize:
    """Ray Data callable: planned batches → padded token tensors (one tokenizer per actor)."""

    def __init__(self, tokenizer_path: str, max_sentences: int, max_tokens: int) -> None:
        from msm.models.tokenizer import load_tokenizer

        self.tokenizer = load_tokenizer(tokenizer_path)
        self.shape = (max_sentences, max_tokens)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {"index": [], "input_ids": [], "attention_mask": [], "sentence_mask": [], "lang": []}
        for index, plan in zip(rows["index"], rows["plan"]):
            p = json.loads(plan)
            b = collate(p["blocks"], p["langs"], self.tokenizer, *self.shape)
            out["index"].append(int(index))
            for k in ("input_ids", "attention_mask"):
                out[k].append(b[k].numpy().astype(np.int32))
            out["sentence_mask"].append(b["sentence_mask"].numpy())
            out["lang"].append(b["lang"].numpy())
        return {k: np.stack(v) for k, v in out.items()}


def tokenizer_path(cfg: PretrainConfig) -> str:
    from msm.models.resolve import resolve_model

    return resolve_model(cfg.model.encoder)


def build_dataset(cfg: PretrainConfig, plans: list[dict]):
    """The Ray Dataset of tokenised batches (tokenisation runs in Ray Data, not in the training loop)."""
    import ray.data

    rows = [{"index": p["index"], "plan": json.dumps({"blocks": p["blocks"], "langs": p["langs"]}, ensure_ascii=False)}
            for p in plans]
    return ray.data.from_items(rows).map_batches(
        Tokenize, fn_constructor_kwargs={"tokenizer_path": tokenizer_path(cfg), "max_sentences": cfg.model.max_sentences,
                                         "max_tokens": cfg.model.max_tokens},
        batch_size=16, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=TOKENIZE_CPUS)


def to_batch(row: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """One planned batch as tensors (copied: Ray Data hands out read-only arrays)."""
    return {"input_ids": torch.tensor(row["input_ids"], dtype=torch.long),
            "attention_mask": torch.tensor(row["attention_mask"], dtype=torch.long),
            "sentence_mask": torch.tensor(row["sentence_mask"], dtype=torch.bool),
            "lang": torch.tensor(row["lang"], dtype=torch.long)}


def collect_shard(shard) -> list[dict[str, torch.Tensor]]:
    """This worker's batches from its Ray Data shard, in plan order (deterministic across restarts)."""
    rows = []
    for b in shard.iter_batches(batch_size=64, batch_format="numpy"):
        rows.extend({k: v[i] for k, v in b.items()} for i in range(len(b["index"])))
    if not rows:
        raise MSMError("empty dataset shard: fewer planned batches than training workers; "
                       "add documents or lower run.num_workers / data.docs_per_batch")
    rows.sort(key=lambda r: int(r["index"]))
    return [to_batch(r) for r in rows]


def local_batches(cfg: PretrainConfig, plans: list[dict]) -> list[dict[str, torch.Tensor]]:
    """The same batches without Ray (single process: tests, benchmarks)."""
    tok = Tokenize(tokenizer_path(cfg), cfg.model.max_sentences, cfg.model.max_tokens)
    out = tok({"index": np.array([p["index"] for p in plans]),
               "plan": np.array([json.dumps({"blocks": p["blocks"], "langs": p["langs"]}) for p in plans])})
    return [to_batch({k: v[i] for k, v in out.items()}) for i in range(len(plans))]
