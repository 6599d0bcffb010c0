"""Run outputs in the documented formats, written by the UI tests (helpers shared by the test modules)."""

from __future__ import annotations

import json
from pathlib import Path

E5_NTREX_LANGS = ["deu", "rus", "zho-CN"]
E5_NTREX_LINES = 16


def write_mined(out: Path) -> dict:
    """A small ``msm mine`` output (schema of ``msm.data.schema``): one en-de pair with 1:1, 2:1 and 1:1 links."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from msm.data.schema import DOCUMENTS, PAIRS

    src = ["The <b>cat</b> sat.", "It was tired.", "Then it slept.", "The end."]
    tgt = ["Die Katze saß.", "Sie war müde und schlief dann.", "Ende."]
    links = [{"src": [0], "tgt": [0], "score": 0.9}, {"src": [1, 2], "tgt": [1], "score": 0.8},
             {"src": [3], "tgt": [2], "score": 0.7}]
    pair = {"pair_id": "a:en|a:de", "src_doc_id": "a:en", "src_lang": "en", "tgt_doc_id": "a:de", "tgt_lang": "de",
            "pair_score": 1.3, "links": links, "align_score": 0.8}
    docs = [{"doc_id": d, "lang": lang, "declared_lang": lang, "detected_lang": lang, "lang_confidence": 0.9, "flags": [],
             "source": "test", "url": None, "sentences": s, "pair_ids": [pair["pair_id"]], "aligned_doc_ids": [o]}
            for d, lang, s, o in (("a:en", "en", src, "a:de"), ("a:de", "de", tgt, "a:en"))]
    for name, rows, schema in (("documents", docs, DOCUMENTS), ("pairs", [pair], PAIRS)):
        (out / name).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / name / "part-00000.parquet")
    (out / "manifest.json").write_text(json.dumps({"config": {"embed": {"model": "tiny-random"}},
                                                   "counts": {"pairs_by_lang_pair": {"en-de": 1}}}))
    return {"src": src, "tgt": tgt, "pair": pair}


def write_training_run(out: Path, steps: int = 5) -> list[dict]:
    """``metrics.jsonl`` as ``msm pretrain`` writes it, plus a torn last line (a run still writing)."""
    out.mkdir(parents=True)
    rows = [{"step": s, "loss": 5.0 / s, "doc_loss": 4.0 / s, "mlm_loss": 1.0 / s, "acc_same_doc": 0.1 * s,
             "acc_other_doc": 0.05 * s, "lr": 1e-3, "sentences_per_s": 100.0 + s, "tokens_per_s": 2000.0 + s}
            for s in range(1, steps + 1)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 6, "lo')
    return rows


def write_sweep(out: Path) -> None:
    """A Tune sweep table (``config/<knob>`` columns) and one PNG plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True)
    (out / "results.csv").write_text("trial_id,config/lr,config/mask_ratio,acc_same_doc,loss\n"
                                     "t1,0.001,0.15,0.5,2.0\nt2,0.0001,0.3,0.4,2.5\nt3,0.0005,0.5,0.6,1.8\n")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 3], [0.5, 0.4, 0.6])
    fig.savefig(out / "lr_vs_acc.png")
    plt.close(fig)
