"""``msm experiment results`` on a tiny model: jobs, seeds, the cache, the table and its Markdown section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def mined_output(root: Path) -> Path:
    """A minimal `msm mine` output: two German and two English documents, aligned pairwise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from msm.data.schema import DOCUMENTS, PAIRS

    (root / "documents").mkdir(parents=True)
    (root / "pairs").mkdir()
    (root / "manifest.json").write_text("{}")
    base = {"declared_lang": None, "detected_lang": None, "lang_confidence": None, "flags": [], "source": "t",
            "url": None}
    de = [["Eins.", "Zwei.", "Drei.", "Vier."], ["Der Hund schläft.", "Die Katze auch.", "Es regnet."]]
    en = [["One.", "Two.", "Three.", "Four."], ["The dog sleeps.", "So does the cat.", "It rains."]]
    docs, pairs = [], []
    for i in range(2):
        docs += [dict(base, doc_id=f"de{i}", lang="de", sentences=de[i], aligned_doc_ids=[f"en{i}"], pair_ids=[f"p{i}"]),
                 dict(base, doc_id=f"en{i}", lang="en", sentences=en[i], aligned_doc_ids=[f"de{i}"], pair_ids=[f"p{i}"])]
        links = [{"src": [j], "tgt": [j], "score": 0.9} for j in range(len(en[i]))]
        pairs.append({"pair_id": f"p{i}", "src_doc_id": f"de{i}", "src_lang": "de", "tgt_doc_id": f"en{i}",
                      "tgt_lang": "en", "pair_score": 1.2, "links": links, "align_score": 0.9})
    pq.write_table(pa.Table.from_pylist(docs, schema=DOCUMENTS), root / "documents" / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(pairs, schema=PAIRS), root / "pairs" / "part-00000.parquet")
    return root


def tatoeba_by_hand(model: str, folder: Path, pairs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Per language, acc@1 xxx→eng and eng→xxx from mean-pooled, L2-normalised HF hidden states (no msm encoder)."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from msm.encoders.resolve import resolve_model

    path = resolve_model(model)
    tok, net = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def embed(lines: list[str]) -> np.ndarray:
        enc = tok(lines, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = net(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        vec = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
        return vec / np.linalg.norm(vec, axis=1, keepdims=True)

    to_eng, from_eng = {}, {}
    for src in sorted(folder.glob("tatoeba.*-eng.*")):
        lang = src.name.split(".")[-1]
        if lang == "eng":
            continue
        x = embed(src.read_text(encoding="utf-8").splitlines()[:pairs])
        y = embed((folder / f"tatoeba.{lang}-eng.eng").read_text(encoding="utf-8").splitlines()[:pairs])
        sims = x @ y.T
        to_eng[lang] = float(np.mean([np.argmax(sims[i]) == i for i in range(pairs)]))
        from_eng[lang] = float(np.mean([np.argmax(sims[:, j]) == j for j in range(pairs)]))
    return to_eng, from_eng


@pytest.mark.timeout(600)
def test_experiment_runs_variants_caches_and_writes_its_section(tmp_path, shared_data, monkeypatch, capsys):
    from msm.experiments.results import main

    monkeypatch.setenv("MSM_DATA_DIR", str(shared_data))
    md = tmp_path / "RESULTS.md"
    md.write_text("intro\n<!-- exp:start -->\nold\n<!-- exp:end -->\noutro\n")
    args = ["--config", str(REPO / "configs" / "pretrain" / "tiny-cpu.yaml"), "--variants", "reference,no-bank",
            "--seeds", "0,1", "--steps", "2", "--pairs", "3", "--mined", str(mined_output(tmp_path / "mined")),
            "--out", str(tmp_path / "out"), "--section", "exp", "--results-md", str(md)]
    assert main(args) == 0
    done = json.loads((tmp_path / "out" / "results.json").read_text())
    runs = sorted((r["model"], r["seed"]) for r in done.values())
    assert runs == [("no-bank", 0), ("reference", 0), ("reference", 1), ("tiny-random (start)", 0)]
    # the start model's scores against Tatoeba accuracy computed here with plain HF + NumPy (first 3 pairs)
    start = next(r for r in done.values() if r["model"] == "tiny-random (start)")["scores"]
    to_eng, from_eng = tatoeba_by_hand("tiny-random", shared_data / "tatoeba", pairs=3)
    assert start["mean acc@1 xxx->eng"] == pytest.approx(sum(to_eng.values()) / len(to_eng), abs=1e-9)
    assert start["mean acc@1 eng->xxx"] == pytest.approx(sum(from_eng.values()) / len(from_eng), abs=1e-9)
    assert start["deu acc@1 xxx->eng"] == pytest.approx(to_eng["deu"], abs=1e-9)
    text = md.read_text()
    assert text.startswith("intro\n<!-- exp:start -->\n2 steps × 2 documents × 8 sentences × 16 tokens on `mined`")
    assert text.endswith("<!-- exp:end -->\noutro\n") and "old" not in text
    ref = re.search(r"\| reference \| 2 \| ([0-9.]+) ± ([0-9.]+) \|", text)
    vals = [r["scores"]["mean acc@1 xxx->eng"] for r in done.values() if r["model"] == "reference"]
    assert ref and float(ref.group(1)) == pytest.approx(sum(vals) / 2, abs=5e-4)
    # a re-run trains and evaluates nothing; --report-only rebuilds the same table from results.json
    capsys.readouterr()
    assert main(args) == 0 and " seed 0:" not in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == done
    table = text[text.index("| model"):text.index("<!-- exp:end")]
    md.write_text("<!-- exp:start -->\n<!-- exp:end -->\n")
    assert main(args + ["--report-only"]) == 0
    assert table in md.read_text()
    assert main(args[:-4] + ["--variants", "nope"]) == 2
