"""Readers, cleaning, language ID and segmentation on real and deliberately bad input (no Ray)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msm.config import ConfigError, config_from_dict
from msm.data.clean import normalise
from msm.data.config import CleanConfig, InputConfig, MineConfig
from msm.data.langid import LangID, to_iso1
from msm.data.pipeline import validate_config
from msm.data.prepare import prepare_records
from msm.data.readers import read_input
from msm.data.segment import chunk_to_budget, segment
from msm.errors import MSMError

GERMAN = "Der schnelle braune Fuchs springt über den faulen Hund. Danach schläft er lange im warmen Gras."
THAI = "สวัสดีครับ วันนี้อากาศดีมาก เราจะไปเที่ยวทะเลกันพรุ่งนี้ตอนเช้า"


@pytest.fixture
def bad_inputs(tmp_path):
    """A folder of .txt files and a JSONL file holding every kind of bad record, plus a truncated Parquet file."""
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "good.txt").write_text(GERMAN, encoding="utf-8")
    (txt / "latin1.txt").write_bytes("Größe und Übermaß sind schön, sagte der Bäcker.".encode("latin-1"))
    (txt / "empty.txt").write_bytes(b"")
    (txt / "huge.txt").write_text("a" * 10_000_000, encoding="utf-8")
    jsonl = tmp_path / "docs.jsonl"
    lines = [json.dumps({"id": "de1", "text": GERMAN, "lang": "deu"}).encode(),
             json.dumps({"id": "th-declared-de", "text": THAI, "lang": "de"}).encode(),
             json.dumps({"id": "ctrl", "text": "Cafe\u0301\x00 au lait\x07 ist ein Getränk aus Kaffee und Milch.", "lang": "de"}).encode(),
             b'{"id": "broken", "text": "\xff\xfe not utf8"}',
             b'{"id": "no-text"}',
             json.dumps({"id": "short", "text": "Hi."}).encode()]
    jsonl.write_bytes(b"\n".join(lines) + b"\n")
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    pq.write_table(pa.table({"id": ["p1"], "text": [GERMAN]}), pq_dir / "ok.parquet")
    pq.write_table(pa.table({"id": ["p2"], "text": [GERMAN * 50]}), pq_dir / "cut.parquet")
    data = (pq_dir / "cut.parquet").read_bytes()
    (pq_dir / "cut.parquet").write_bytes(data[: len(data) // 2])
    return [InputConfig(kind="txt_dir", path=str(txt), lang="de"), InputConfig(kind="jsonl", path=str(jsonl)),
            InputConfig(kind="parquet", path=str(pq_dir), lang="de")]


def test_bad_input_is_quarantined_with_reasons_and_counts_reconcile(bad_inputs, tiny_model_dir, tmp_path) -> None:
    cfg = MineConfig(inputs=bad_inputs, clean=CleanConfig(min_chars=20, max_chars=1_000_000))
    cfg.embed.model = str(tiny_model_dir)
    records = [r for i, inp in enumerate(cfg.inputs) for r in read_input(inp, i, tmp_path)]
    rows = prepare_records(records, cfg)
    reasons = {r["doc_id"]: (r["reason"] or "kept").split(":")[0] for r in rows}
    assert reasons == {
        "in0:empty": "empty", "in0:good": "kept", "in0:huge": "oversized", "in0:latin1": "invalid_utf8",
        "in1:de1": "kept", "in1:th-declared-de": "lang_mismatch", "in1:ctrl": "kept",
        "in1:line4": "invalid_utf8", "in1:line5": "bad_record", "in1:short": "too_short",
        "in2:cut.parquet": "unreadable_parquet", "in2:p1": "kept",
    }
    assert len(rows) == len(records) == 12
    ctrl = next(r for r in rows if r["doc_id"] == "in1:ctrl")
    assert ctrl["sentences"][0].startswith("Café au lait ist")  # NFC-composed, controls removed
    assert all(r["lang"] == "de" and r["sentences"] for r in rows if r["reason"] is None)


def test_missing_path_and_unhandled_language_fail_with_clear_message(tmp_path) -> None:
    with pytest.raises(MSMError, match=r"inputs\[0\] \(jsonl\): path .*nope.jsonl does not exist"):
        list(read_input(InputConfig(kind="jsonl", path="nope.jsonl"), 0, tmp_path))
    cfg = MineConfig(inputs=[InputConfig(kind="jsonl", path="x.jsonl")], languages=["de", "tlh"])
    with pytest.raises(MSMError, match=r"languages: \['tlh'\] cannot be handled by the encoder.*remove them"):
        validate_config(cfg)
    with pytest.raises(ConfigError, match=r"inputs\[0\].kind: expected one of"):
        config_from_dict({"inputs": [{"kind": "csv", "path": "x"}]}, MineConfig)


def test_readers_yield_the_same_schema_for_real_corpora(shared_data) -> None:
    ntrex = list(read_input(InputConfig(kind="ntrex", path="ntrex", langs=["zho-CN"], max_documents=2), 0, shared_data))
    bible = list(read_input(InputConfig(kind="bible", langs=["s"], book_range=(43, 43), max_documents=3), 1, shared_data))
    assert [r["doc_id"] for r in ntrex] == ["in0:zho-CN:bbc.381790", "in0:zho-CN:rt.com.91337"]
    assert [len(r["sentences"]) for r in ntrex] == [16, 6]  # uniq -c DOCUMENT_IDS.tsv
    assert [r["doc_id"] for r in bible] == ["in1:s:43.1", "in1:s:43.2", "in1:s:43.3"]
    assert bible[2]["sentences"][15].startswith("Denn Gott hat die Welt so geliebt")  # John 3:16
    assert {tuple(sorted(r)) for r in ntrex + bible} == {("doc_id", "error", "lang", "sentences", "source", "text", "url")}


def test_langid_and_iso_mapping() -> None:
    assert [to_iso1(c) for c in ["deu", "zho-CN", "arb", "pt_BR", "en", None]] == ["de", "zh", "ar", "pt", "en", None]
    codes, conf = LangID().predict([GERMAN, THAI, "Быстрая коричневая лиса прыгает через ленивую собаку.", "这是一个关于天气的句子。"])
    assert codes == ["de", "th", "ru", "zh"]
    assert (conf > 0.8).all()


def test_segmentation_cjk_thai_and_chunking(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    assert segment("今日は晴れです。明日は雨でしょう。", "ja") == ["今日は晴れです。", "明日は雨でしょう。"]
    assert segment("我们今天去公园。你来吗？好的！", "zh") == ["我们今天去公园。", "你来吗？", "好的！"]
    assert segment("यह पहला वाक्य है। यह दूसरा वाक्य है।", "hi") == ["यह पहला वाक्य है।", "यह दूसरा वाक्य है।"]
    assert segment(THAI, "th") == ["สวัสดีครับ วันนี้อากาศดีมาก", "เราจะไปเที่ยวทะเลกันพรุ่งนี้ตอนเช้า"]
    assert segment(GERMAN + "\nNeue Zeile ohne Punkt", "de")[-1] == "Neue Zeile ohne Punkt"
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    long = " ".join(f"wort{i}" for i in range(300))
    pieces = chunk_to_budget(["kurz.", long], tok, max_tokens=50)
    assert pieces[0] == "kurz."
    assert all(len(tok(p, add_special_tokens=False)["input_ids"]) <= 50 for p in pieces[1:])
    assert " ".join(pieces[1:]).split() == long.split()


def test_normalise() -> None:
    assert normalise("  a\u0301\u00a0 b\r\n\x0bc\ufeff ") == "\u00e1 b\nc"


@pytest.mark.parametrize("name", ["tiny-cpu", "ntrex-e5-small", "bible-e5-small"])
def test_shipped_configs_load_and_validate(name: str) -> None:
    from pathlib import Path

    from msm.config import load_config

    cfg = load_config(Path(__file__).parents[2] / "configs" / "mine" / f"{name}.yaml", MineConfig)
    validate_config(cfg)
    assert cfg.inputs and cfg.embed.batch_size > 0
