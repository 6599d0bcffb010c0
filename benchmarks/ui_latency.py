"""UI query latency on CPU: encode + search + render over a ~10k-sentence NTREX index, median over 50 queries.

Two measurements with the same index (built once with the model, saved, then loaded by the app):

* ``core``: ``msm.ui.search.search`` (encode the query, faiss search) + formatting the hits as the page does;
* ``app``: one full Streamlit script rerun of the Search page (``AppTest``, the encoder and index cached by
  ``st.cache_resource``), i.e. what a user waits for after pressing Enter, minus the browser's paint.

    HF_HUB_OFFLINE=1 python benchmarks/ui_latency.py [--model e5-small] [--n 10000]   # → benchmarks/results/ui_latency.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from msm.data.readers import default_data_dir
from msm.retrieval.encoder import Encoder
from msm.ui.corpus import Corpus, load_ntrex
from msm.ui.render import clip, hit_header
from msm.ui.search import build_index, search
from harness import write_results

REPO = Path(__file__).resolve().parents[1]
LANGS = ["eng", "deu", "fra", "spa", "rus", "zho-CN", "arb", "hin", "jpn", "tur", "vie", "ell", "ita", "kor", "pol",
         "por", "swa", "tha"]


def corpus_of(n: int, data_dir: Path) -> Corpus:
    per_lang = -(-n // len(LANGS))
    full = load_ntrex(data_dir / "ntrex", LANGS, per_lang)
    return Corpus(f"ntrex-{n}", full.passages[:n])


def queries_of(count: int, data_dir: Path) -> list[str]:
    """Lines past those indexed (unseen text), cycling through languages."""
    pool = load_ntrex(data_dir / "ntrex", LANGS, None).passages
    unseen = [p.text for p in pool if int(p.id.rsplit(":", 1)[1]) >= 1500]
    return [unseen[(i * 97) % len(unseen)] for i in range(count)]


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--n", type=int, default=10_000, help="sentences in the index")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kind", default="flat", choices=["flat", "hnsw", "ivf"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ui_latency.json"))
    args = parser.parse_args()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()

    t0 = time.perf_counter()
    encoder = Encoder(args.model)
    load_s = time.perf_counter() - t0
    corpus = corpus_of(args.n, data_dir)
    t0 = time.perf_counter()
    with tqdm(total=len(corpus.passages), desc="index", unit="sent") as bar:
        cindex = build_index(encoder, corpus, args.model, kind=args.kind,
                             progress=lambda done, total: bar.update(done - bar.n))
    build_s = time.perf_counter() - t0
    queries = queries_of(args.queries, data_dir)
    encoder.encode(["warm-up"], kind="query")

    core = {"encode_ms": [], "search_ms": [], "render_ms": [], "total_ms": []}
    for q in queries:
        hits, timing = search(encoder, cindex, q, args.k)
        t0 = time.perf_counter()
        _ = [(hit_header(h), clip(h.text, 1000)) for h in hits]
        render = 1000 * (time.perf_counter() - t0)
        for key, value in (("encode_ms", timing["encode_ms"]), ("search_ms", timing["search_ms"]),
                           ("render_ms", render)):
            core[key].append(value)
        core["total_ms"].append(timing["encode_ms"] + timing["search_ms"] + render)

    app_ms = []
    with tempfile.TemporaryDirectory() as tmp:
        from streamlit.testing.v1 import AppTest

        saved = cindex.save(Path(tmp) / "index")
        os.environ.update(MSM_UI_DATA_ROOTS=tmp, MSM_UI_MODEL=args.model, HF_HUB_OFFLINE="1")
        at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=600)
        at.run()
        at.radio(key="source").set_value("Saved index").run()
        at.text_input(key="saved_path").input(str(saved)).run()
        at.selectbox(key="kind").set_value(args.kind).run()
        at.button(key="build").click().run()
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        at.number_input(key="k").set_value(args.k).run()
        for q in queries:
            t0 = time.perf_counter()
            at.text_input(key="query").input(q).run()
            app_ms.append(1000 * (time.perf_counter() - t0))
            assert len(at.text) == 2 * args.k, "the page did not show k hits"

    rows = {name: {"median": statistics.median(v), "p90": pct(v, 0.9)} for name, v in core.items()}
    rows["app_rerun_ms"] = {"median": statistics.median(app_ms), "p90": pct(app_ms, 0.9)}
    print(f"model {args.model}, index {args.kind} over {len(cindex.passages)} NTREX sentences in {len(LANGS)} languages, "
          f"{len(queries)} queries, k={args.k}, CPU threads {torch.get_num_threads()}")
    print(f"model load {load_s:.1f} s; index build {build_s:.1f} s ({len(cindex.passages) / build_s:.0f} sentences/s)")
    print(f"{'stage':<16}{'median ms':>12}{'p90 ms':>10}")
    for name, r in rows.items():
        print(f"{name:<16}{r['median']:>12.2f}{r['p90']:>10.2f}")
    write_results(args.out, {
        "benchmark": "ui_latency", "model": args.model, "index_kind": args.kind, "index_size": len(cindex.passages),
        "languages": len(LANGS), "queries": len(queries), "k": args.k, "model_load_s": round(load_s, 2),
        "index_build_s": round(build_s, 2), "latency_ms": {n: {k: round(v, 2) for k, v in r.items()} for n, r in rows.items()},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": torch.cuda.is_available(),
                    "python": sys.version.split()[0], "platform": platform.platform(),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
