"""Mewsli-X on hand-written files in the release format: the XTREME-R queries, mAP@k with one gold entity by hand."""

from __future__ import annotations


import json
import re
from pathlib import Path

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import mewsli_x

from eval_fakes import FIXTURES, Oracle, values


MEWSLI_RANKINGS = {  # example id → ranking of entity ids; one gold entity each
    "en-m1": ["Q1757"],  # 1
    "en-m2": ["Q33", "Q1757", "Q47034"],  # 1/3
    "es-m1": ["Q298"],  # 1
    "es-m2": ["Q298", "Q414"],  # 1/2
    "ja-m1": ["Q80011", "Q1490"],  # 1/2
    "ja-m2": ["Q80011"],  # 1
}


FIX = "run get-mewsli-x.sh and copy mewsli_x/output/dataset/"


EN = "Bonn is on the Rhine. Paris is in France. Lyon too."


DE = "Berlin {die Hauptstadt}\nliegt an der Spree."


ENTITIES = [
    {"entity_id": "Q1", "description": "Bonn ist eine Stadt am Rhein.", "sentence_spans": [{"start": 0, "end": 29}]},
    {"entity_id": "Q2", "description": "Paris ist die Hauptstadt\nFrankreichs.",
     "sentence_spans": [{"start": 0, "end": 37}]},
    {"entity_id": "Q3", "description": "Berlin ist die Hauptstadt Deutschlands. Zweiter Satz.",
     "sentence_spans": [{"start": 0, "end": 39}]},
]


# the expected texts, by hand: sentence spans joined, newlines turned into one space
DESCRIPTIONS = ["Bonn ist eine Stadt am Rhein.", "Paris ist die Hauptstadt Frankreichs.",
                "Berlin ist die Hauptstadt Deutschlands."]


Q_BONN = "Bonn: { Bonn } is on the Rhine."


Q_PARIS = "Paris: { Paris } is in France."


Q_LYON = "Lyon: { Lyon } too."


Q_BERLIN = "Berlin: { Berlin } (die Hauptstadt) liegt an der Spree."


def mention(ex: str, text: str, word: str, gold: str) -> dict:
    start = text.index(word)
    return {"example_id": ex, "mention_span": {"start": start, "end": start + len(word), "text": word},
            "entity_id": gold}


def article(lang: str, text: str, spans: list[tuple[int, int]], mentions: list[dict]) -> dict:
    return {"context": {"language": lang, "text": text, "sentence_spans": [{"start": s, "end": e} for s, e in spans]},
            "mentions": mentions}


def articles() -> list[dict]:
    return [
        article("en", EN, [(0, 21), (22, 41), (42, 51)], [mention("en-1", EN, "Bonn", "Q1"),
                                                         mention("en-2", EN, "Paris", "Q2"),
                                                         mention("en-3", EN, "Lyon", "Q2")]),
        article("de", DE, [(0, 43)], [mention("de-1", DE, "Berlin", "Q3")]),
    ]


def write(tmp_path: Path, arts: list, entities: list | None = None) -> Path:
    folder = tmp_path / "mewsli_x"
    folder.mkdir(exist_ok=True)
    for name, rows in (("wikinews_mentions-test.jsonl", arts), ("candidate_set_entities.jsonl", entities or ENTITIES)):
        (folder / name).write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                                           for r in rows), encoding="utf-8")
    return folder


class TableEncoder:
    """Fixed vectors per text (unit rows); records (texts, kind, show_progress) of each call."""

    def __init__(self, table: dict):
        self.table, self.calls = table, []

    def encode(self, texts, kind="passage", show_progress=False):
        self.calls.append((list(texts), kind, show_progress))
        rows = np.array([self.table[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# rankings by design: Bonn → Q2, Q1, Q3 (gold Q1 at rank 2); Paris → Q2 first (gold, rank 1);
# Lyon → Q3, Q1, Q2 (gold Q2 at rank 3); Berlin → Q1, Q2, Q3 (gold Q3 at rank 3)
TABLE = {
    DESCRIPTIONS[0]: [1, 0, 0], DESCRIPTIONS[1]: [0, 1, 0], DESCRIPTIONS[2]: [0, 0, 1],
    Q_BONN: [0.5, 1, 0.25], Q_PARIS: [0.5, 1, 0.25], Q_LYON: [0.5, 0.25, 1], Q_BERLIN: [1, 0.5, 0.25],
}


def rows(results):
    return [(r.task, r.language, r.metric, r.count) for r in results], [r.value for r in results]


def test_mewsli_x_builds_the_xtreme_r_queries():
    data = mewsli_x.load(FIXTURES / "mewsli_x")
    assert [(lang, ex, gold) for lang, ex, _, gold in data.mentions] == [
        ("en", "en-m1", "Q1757"), ("en", "en-m2", "Q47034"), ("es", "es-m1", "Q298"), ("es", "es-m2", "Q414"),
        ("ja", "ja-m1", "Q1490"), ("ja", "ja-m2", "Q80011")]
    # one sentence of context (not the title), the mention marked and prefixed
    assert data.mentions[0][2] == ("Helsinki: In { Helsinki } , the Finnish trade union for bus and truck drivers "
                                   "has gone on strike on Sunday evening.")
    assert data.mentions[5][2] == "千葉県: 気象庁によると、震源は { 千葉県 } の東方沖であった。"
    assert data.descriptions[0] == ("Helsinki ist die Hauptstadt Finnlands. Die Stadt liegt an der Küste des "
                                    "Finnischen Meerbusens.")
    assert mewsli_x.mention_query("Ein {alter} Satz über Bonn.", [(0, 27)], 22, 26) == (
        "Bonn: Ein (alter) Satz über { Bonn } .")


def test_mewsli_x_metrics_by_hand():
    data = mewsli_x.load(FIXTURES / "mewsli_x")
    oracle = Oracle(dict(zip(data.descriptions, data.entity_ids)),
                    {query: MEWSLI_RANKINGS[ex] for _, ex, query, _ in data.mentions})
    got = values(mewsli_x.evaluate(oracle, FIXTURES))
    assert got[("en", "mAP@20")] == pytest.approx((1 + 1 / 3) / 2)
    assert got[("es", "mAP@20")] == got[("ja", "mAP@20")] == pytest.approx((1 + 1 / 2) / 2)
    assert got[("mean", "mAP@20")] == pytest.approx(((1 + 1 / 3) / 2 + 0.75 + 0.75) / 3)
    top1 = values(mewsli_x.evaluate(oracle, FIXTURES, langs=["en", "ja"], k=1))
    assert top1 == {("en", "mAP@1"): 0.5, ("ja", "mAP@1"): 0.5, ("mean", "mAP@1"): 0.5}


def test_load_builds_queries_and_descriptions(tmp_path):
    """Queries are '<m>: <left> { <m> } <right>' (braces → parentheses, newlines → spaces); entities keep spans."""
    data = mewsli_x.load(write(tmp_path, articles()))
    assert data.mentions == [("en", "en-1", Q_BONN, "Q1"), ("en", "en-2", Q_PARIS, "Q2"),
                             ("en", "en-3", Q_LYON, "Q2"), ("de", "de-1", Q_BERLIN, "Q3")]
    assert data.entity_ids == ["Q1", "Q2", "Q3"]
    assert data.descriptions == DESCRIPTIONS


def test_entity_without_spans_uses_its_whole_description(tmp_path):
    """No sentence_spans: the whole description, its line breaks joined by single spaces."""
    folder = write(tmp_path, articles(), ENTITIES + [{"entity_id": "Q4", "description": "Eins\nZwei\n\nDrei"}])
    ids, texts = mewsli_x.read_entities(folder / "candidate_set_entities.jsonl")
    assert ids[-1] == "Q4" and texts[-1] == "Eins Zwei Drei"


def test_mention_query_boundaries():
    """A mention ending at its sentence's end is held; one crossing into the next sentence, or outside all, is not."""
    assert mewsli_x.mention_query("Bonn liegt am Rhein", [(0, 19)], 14, 19) == "Rhein: Bonn liegt am { Rhein }"
    assert mewsli_x.mention_query("Bonn liegt am Rhein", [(0, 10), (10, 19)], 8, 12) is None  # crosses
    assert mewsli_x.mention_query("Bonn liegt am Rhein", [(0, 10)], 14, 19) is None  # in no sentence
    assert mewsli_x.mention_query("Bonn liegt am Rhein", [], 0, 4) is None


def test_mention_query_zero_width_span_at_a_boundary():
    """Spans are half-open: a zero-width span at a sentence's start or end is held by no sentence."""
    assert mewsli_x.mention_query("abcde", [(0, 5)], 5, 5) is None
    assert mewsli_x.mention_query("abcde", [(0, 5)], 0, 0) is None
    assert mewsli_x.mention_query("abcdefghij", [(0, 5), (5, 10)], 5, 5) is None


def test_mention_query_braces_on_the_right():
    """Braces in the context right of the mention also become parentheses."""
    assert mewsli_x.mention_query("Bonn {am Rhein} ist alt.", [(0, 24)], 0, 4) == "Bonn: { Bonn } (am Rhein) ist alt."


def test_evaluate_metrics_tasks_and_counts(tmp_path):
    """mAP@20 = 1/rank of the gold entity, per language (sorted) and the macro mean; task 'mewsli_x', counts."""
    write(tmp_path, articles())
    enc = TableEncoder(TABLE)
    keys, vals = rows(mewsli_x.evaluate(enc, tmp_path))
    assert keys == [("mewsli_x", "de", "mAP@20", 1), ("mewsli_x", "en", "mAP@20", 3), ("mewsli_x", "mean", "mAP@20", 2)]
    en, de = (1 / 2 + 1 + 1 / 3) / 3, 1 / 3
    assert vals == pytest.approx([de, en, (de + en) / 2])
    assert enc.calls == [(DESCRIPTIONS, "passage", False), ([Q_BONN, Q_PARIS, Q_LYON, Q_BERLIN], "query", False)]


def test_evaluate_passes_show_progress_and_limit(tmp_path):
    """show_progress=True reaches both encoder calls; limit keeps the first n mentions of each language."""
    write(tmp_path, articles())
    enc = TableEncoder(TABLE)
    keys, vals = rows(mewsli_x.evaluate(enc, tmp_path, limit=2, show_progress=True))
    assert keys == [("mewsli_x", "de", "mAP@20", 1), ("mewsli_x", "en", "mAP@20", 2), ("mewsli_x", "mean", "mAP@20", 2)]
    assert vals == pytest.approx([1 / 3, (1 / 2 + 1) / 2, (1 / 3 + 3 / 4) / 2])
    assert [(kind, progress) for _, kind, progress in enc.calls] == [("passage", True), ("query", True)]
    assert enc.calls[1][0] == [Q_BONN, Q_PARIS, Q_BERLIN]
    keys, vals = rows(mewsli_x.evaluate(TableEncoder(TABLE), tmp_path, limit=1))
    assert [k[3] for k in keys] == [1, 1, 2] and vals == pytest.approx([1 / 3, 1 / 2, (1 / 3 + 1 / 2) / 2])


def test_limit_counts_per_language(tmp_path):
    """load/read_mentions with limit n keep exactly the first n mentions of each language."""
    folder = write(tmp_path, articles())
    for limit, want in ((1, ["en-1", "de-1"]), (2, ["en-1", "en-2", "de-1"]), (3, ["en-1", "en-2", "en-3", "de-1"])):
        assert [ex for _, ex, _, _ in mewsli_x.load(folder, limit=limit).mentions] == want
        got = mewsli_x.read_mentions(folder / "wikinews_mentions-test.jsonl", None, limit)
        assert [ex for _, ex, _, _ in got] == want
    assert [ex for _, ex, _, _ in mewsli_x.load(folder, langs=["de"], limit=1).mentions] == ["de-1"]


def test_unselected_languages_are_still_checked(tmp_path):
    """Every mention of an unselected language's article is validated, not just its first one."""
    bad = mention("en-2", EN, "Paris", "Q2")
    bad["mention_span"]["text"] = "Pariz"
    arts = [article("en", EN, [(0, 21), (22, 41)], [mention("en-1", EN, "Bonn", "Q1"), bad]), articles()[1]]
    folder = write(tmp_path, arts)
    with pytest.raises(MSMError, match=r"wikinews_mentions-test.jsonl:1: mention en-2 'Pariz' != context.text"):
        mewsli_x.load(folder, langs=["de"])


def test_mention_outside_every_sentence_names_line_and_example(tmp_path):
    """A mention held by no single sentence span: the file, line, example id and the fix."""
    arts = [articles()[1], article("en", EN, [(0, 10), (10, 21)], [mention("en-9", EN, "on the", "Q1")])]
    folder = write(tmp_path, arts)
    path = re.escape(str(folder / "wikinews_mentions-test.jsonl"))
    with pytest.raises(MSMError, match=path + r":2: mention en-9 lies in no single sentence_span; " + FIX):
        mewsli_x.load(folder)


def test_no_mentions_message(tmp_path):
    """No mention left: the file and the languages asked for ('any' when none were given)."""
    folder = write(tmp_path, [article("en", EN, [(0, 21)], [])])
    path = re.escape(str(folder / "wikinews_mentions-test.jsonl"))
    for langs in (None, []):
        with pytest.raises(MSMError, match=r"^mewsli_x: no mention in " + path + r" for languages any$"):
            mewsli_x.read_mentions(folder / "wikinews_mentions-test.jsonl", langs, None)
    write(tmp_path, articles())
    with pytest.raises(MSMError, match=r"^mewsli_x: no mention in " + path + r" for languages \['fr'\]$"):
        mewsli_x.load(folder, langs=["fr"])


def test_missing_keys_name_the_fix(tmp_path):
    """A line lacking a required key names the key, the expected keys and the fix, in both files."""
    folder = write(tmp_path, [{"context": articles()[0]["context"]}])
    with pytest.raises(MSMError, match=r"wikinews_mentions-test.jsonl:1: missing mentions \(expected keys context, "
                                       r"mentions\); " + FIX):
        mewsli_x.load(folder)
    folder = write(tmp_path, articles(), ENTITIES + [{"entity_id": "Q4"}])
    with pytest.raises(MSMError, match=r"candidate_set_entities.jsonl:4: missing description \(expected keys "
                                       r"entity_id, description\); " + FIX):
        mewsli_x.load(folder)


def test_missing_mentions_file_names_the_fix(tmp_path):
    """Without the mentions file: its path and the fix."""
    folder = write(tmp_path, articles())
    (folder / "wikinews_mentions-test.jsonl").unlink()
    with pytest.raises(MSMError, match=r"mewsli_x[/\\]wikinews_mentions-test.jsonl not found; " + FIX):
        mewsli_x.load(folder)


def test_bad_entity_lines(tmp_path):
    """Malformed sentence_spans and an empty description: the file, line, entity id and the fix."""
    path = re.escape(str(tmp_path / "mewsli_x" / "candidate_set_entities.jsonl"))
    write(tmp_path, articles(), ENTITIES + [{"entity_id": "Q4", "description": "x", "sentence_spans": [{"start": 0}]}])
    with pytest.raises(MSMError, match=path + r":4: malformed sentence_spans \('end'\); " + FIX):
        mewsli_x.load(tmp_path / "mewsli_x")
    write(tmp_path, articles(), ENTITIES[:1] + [{"entity_id": "Q9", "description": " \n "}] + ENTITIES[1:])
    with pytest.raises(MSMError, match=path + r":2: entity Q9 has no description; " + FIX):
        mewsli_x.load(tmp_path / "mewsli_x")


def test_missing_gold_entities_lists_the_first_five(tmp_path):
    """Gold entities absent from the candidate set: the first five, sorted, comma-separated."""
    golds = ["E3", "E1", "E6", "E2", "E5", "E4", "E7"]
    text = "a b c d e f g."
    arts = [article("en", text, [(0, 14)], [mention(f"m{i}", text, "abcdefg"[i], g) for i, g in enumerate(golds)])]
    folder = write(tmp_path, arts)
    with pytest.raises(MSMError, match=r"mewsli_x: gold entities E1, E2, E3, E4, E5 of wikinews_mentions-test.jsonl "
                                       r"are not in .*candidate_set_entities.jsonl; the two files come from different"):
        mewsli_x.load(folder)
