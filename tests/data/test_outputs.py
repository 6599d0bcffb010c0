"""msm.data.outputs, the row functions of mining's write stage, against references computed from the records:
the two sides of the document/pair join and its merge (every pair in both of its documents, in pair-id order),
quarantine rows, and the counts (input = kept + quarantined, partials summed over any split into batches)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msm.data.outputs import (
    EMBEDDINGS_COLUMNS,
    MERGE,
    DuplicateDocumentId,
    count_rows,
    document_side,
    membership_side,
    merge_document,
    quarantine_rows,
    summarise_counts,
)
from msm.data.schema import DOCUMENTS, QUARANTINE
from msm.errors import MSMError

from factories import summed_counts

FEW = settings(max_examples=40, deadline=None)
LIST = pa.list_(pa.string())


def staged_documents(ids: list[str]) -> pa.Table:
    """Kept staged rows as mining reads them back: the document columns in looser types (large strings, float64,
    a dictionary-encoded language) and columns the write stage does not keep."""
    n = len(ids)
    return pa.table({
        "doc_id": pa.array(ids, pa.large_string()),
        "lang": pa.array(["de" if i % 2 else "en" for i in range(n)], pa.string()).dictionary_encode(),
        "declared_lang": pa.array([None if i % 3 == 0 else "deu" for i in range(n)], pa.string()),
        "detected_lang": pa.array([f"d{i}" for i in range(n)], pa.string()),
        "detected_confidence": pa.array([0.25 + i / 1000 for i in range(n)], pa.float64()),
        "fallback_lang": pa.array([None if i % 2 else f"f{i}" for i in range(n)], pa.string()),
        "lang_confidence": pa.array([0.5 + i / 1000 for i in range(n)], pa.float64()),
        "flags": pa.array([["f"] * (i % 2) for i in range(n)], LIST),
        "source": [f"txt:/in/{d}" for d in ids],
        "url": [None] * n,
        "sentences": pa.array([[f"{d} s{j}" for j in range(i % 3 + 1)] for i, d in enumerate(ids)], LIST),
        "text": [""] * n, "reason": pa.nulls(n, pa.string()), "n_sentences": pa.array(range(n), pa.int32()),
    })


def expected_document(table: pa.Table, i: int) -> dict:
    row = {f.name: table.column(f.name)[i].as_py() for f in DOCUMENTS if f.name not in ("pair_ids", "aligned_doc_ids")}
    for name in ("lang_confidence", "detected_confidence"):  # stored as float32
        row[name] = pa.scalar(row[name], pa.float32()).as_py()
    return row


# ---- the two sides of the join -----------------------------------------------------------------------------------

def test_document_side_keeps_the_document_columns_in_their_types_without_pairs():
    staged = staged_documents(["b", "a", "c"])
    side = document_side(staged)
    assert side.schema == MERGE and MERGE.names == [*DOCUMENTS.names, "is_document"]
    assert side.to_pylist() == [{**expected_document(staged, i), "pair_ids": [], "aligned_doc_ids": [],
                                 "is_document": True} for i in range(3)]
    assert side.column("lang_confidence").to_pylist()[1] == pytest.approx(0.501, rel=1e-6)
    assert document_side(staged.slice(0, 0)).num_rows == 0 and document_side(staged.slice(0, 0)).schema == MERGE


def test_membership_side_puts_each_pair_in_both_of_its_documents():
    pairs = pa.table({"pair_id": ["a|b", "a|c"], "src_doc_id": ["a", "a"], "tgt_doc_id": ["b", "c"],
                      "pair_score": pa.array([1.2, 1.1], pa.float32())})
    side = membership_side(pairs)
    assert side.schema == MERGE
    nothing = {f.name: None for f in DOCUMENTS}
    assert side.to_pylist() == [
        {**nothing, "doc_id": "a", "pair_ids": ["a|b"], "aligned_doc_ids": ["b"], "is_document": False},
        {**nothing, "doc_id": "a", "pair_ids": ["a|c"], "aligned_doc_ids": ["c"], "is_document": False},
        {**nothing, "doc_id": "b", "pair_ids": ["a|b"], "aligned_doc_ids": ["a"], "is_document": False},
        {**nothing, "doc_id": "c", "pair_ids": ["a|c"], "aligned_doc_ids": ["a"], "is_document": False}]
    empty = membership_side(pairs.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == MERGE


def test_the_embeddings_columns_are_the_embeddings_schemas():
    from msm.data.schema import embeddings_schema

    assert list(EMBEDDINGS_COLUMNS) == embeddings_schema(4).names


# ---- the merge, as Ray's groupby + map_groups runs it ------------------------------------------------------------

IDS = st.lists(st.sampled_from([f"doc{i}" for i in range(8)]), min_size=1, max_size=8, unique=True)


@st.composite
def corpus(draw):
    """Documents, the pairs between them (each unordered couple at most once, either direction), the pairs split
    into batches, and a shuffle for every group."""
    ids = draw(IDS)
    couples = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
    chosen = draw(st.lists(st.sampled_from(couples), unique=True, max_size=len(couples))) if couples else []
    pairs = [(b, a) if draw(st.booleans()) else (a, b) for a, b in chosen]
    cuts = sorted(draw(st.lists(st.integers(0, len(pairs)), max_size=3)))
    return ids, pairs, cuts, draw(st.randoms(use_true_random=False))


def groups_by_doc(table: pa.Table, rng) -> dict[str, pa.Table]:
    """Ray's groupby on doc_id: every row of one id together, in no particular order."""
    out = {}
    ids = table.column("doc_id").to_pylist()
    for doc_id in dict.fromkeys(ids):
        rows = [i for i, d in enumerate(ids) if d == doc_id]
        rng.shuffle(rows)
        out[doc_id] = table.take(pa.array(rows, pa.int64()))
    return out


@FEW
@given(corpus())
def test_every_pair_lands_in_both_documents_in_pair_id_order(case):
    ids, pairs, cuts, rng = case
    staged = staged_documents(ids)
    pair_table = pa.table({"pair_id": [f"{s}|{t}" for s, t in pairs], "src_doc_id": [s for s, _ in pairs],
                           "tgt_doc_id": [t for _, t in pairs]}, schema=pa.schema(
        [("pair_id", pa.string()), ("src_doc_id", pa.string()), ("tgt_doc_id", pa.string())]))
    bounds = [0, *cuts, len(pairs)]
    sides = [document_side(staged)] + [membership_side(pair_table.slice(a, b - a)) for a, b in zip(bounds, bounds[1:])]
    merged = [merge_document(g) for g in groups_by_doc(pa.concat_tables(sides), rng).values()]
    assert all(m.schema == DOCUMENTS and m.num_rows == 1 for m in merged)
    rows = {m.column("doc_id")[0].as_py(): m.to_pylist()[0] for m in merged}
    assert sorted(rows) == sorted(ids)
    for i, doc_id in enumerate(ids):  # the reference: every pair the document is in, with the other document
        links = sorted((f"{s}|{t}", t if s == doc_id else s) for s, t in pairs if doc_id in (s, t))
        assert rows[doc_id] == {**expected_document(staged, i), "pair_ids": [p for p, _ in links],
                                "aligned_doc_ids": [d for _, d in links]}
    memberships = sum(len(r["pair_ids"]) for r in rows.values())
    assert memberships == 2 * len(pairs)  # symmetric: each pair in exactly its two documents
    for r in rows.values():
        for p, other in zip(r["pair_ids"], r["aligned_doc_ids"]):
            assert p in rows[other]["pair_ids"] and rows[other]["aligned_doc_ids"][rows[other]["pair_ids"].index(p)] \
                == r["doc_id"]


def test_a_duplicate_document_id_is_a_user_error_even_with_distinct_rows():
    staged = staged_documents(["x", "x"])  # two different documents (other sentences, sources) under one id
    group = pa.concat_tables([document_side(staged), membership_side(pa.table(
        {"pair_id": ["x|y"], "src_doc_id": ["x"], "tgt_doc_id": ["y"]}))])
    with pytest.raises(DuplicateDocumentId) as err:
        merge_document(group.filter(pc.equal(group.column("doc_id"), "x")))
    assert isinstance(err.value, MSMError)
    assert str(err.value) == ("duplicate document id 'x' (2 documents): give every document a unique id within its "
                              "input")
    with pytest.raises(MSMError) as err:  # memberships, no document: the pipeline's inconsistency, not a duplicate
        merge_document(group.filter(pc.equal(group.column("doc_id"), "y")))
    assert not isinstance(err.value, DuplicateDocumentId)
    assert str(err.value) == ("a pair names document id 'y', but no kept document has it: the staged pairs and "
                              "documents disagree; re-run msm mine (and report it if it happens again)")


# ---- quarantine --------------------------------------------------------------------------------------------------

def test_quarantine_rows_keep_the_reason_and_the_first_200_characters():
    long = "ü" * 150 + "x" * 100  # characters, not bytes
    batch = pa.table({
        "doc_id": ["a", "b", "c", "d", "e"],
        "lang": pa.array(["de", None, "en", "en", "de"]).dictionary_encode(),
        "source": ["s1", "s2", "s3", "s4", "s5"],
        "reason": ["empty: no text", "too_few_sentences: 0 < 1", "bad", "x: y", "z"],
        "text": [long, "", None, "short", ""],
        "sentences": pa.array([["ignored"], ["one", "two"], None, [], ["s" * 120, "t" * 120]], LIST),
        "n_sentences": [0, 0, 0, 0, 0]})
    out = quarantine_rows(batch)
    assert out.schema == QUARANTINE
    assert out.to_pylist() == [
        {"doc_id": "a", "lang": "de", "source": "s1", "reason": "empty: no text", "text_prefix": "ü" * 150 + "x" * 50},
        {"doc_id": "b", "lang": None, "source": "s2", "reason": "too_few_sentences: 0 < 1", "text_prefix": "one two"},
        {"doc_id": "c", "lang": "en", "source": "s3", "reason": "bad", "text_prefix": ""},
        {"doc_id": "d", "lang": "en", "source": "s4", "reason": "x: y", "text_prefix": "short"},
        {"doc_id": "e", "lang": "de", "source": "s5", "reason": "z", "text_prefix": "s" * 120 + " " + "t" * 79}]
    wide = batch.set_column(0, "doc_id", batch.column("doc_id").cast(pa.large_string())) \
        .set_column(2, "source", batch.column("source").cast(pa.large_string()))
    assert quarantine_rows(wide).schema == QUARANTINE  # whatever string type the staged rows were read back in
    assert quarantine_rows(wide).to_pylist() == out.to_pylist()


# ---- the counts --------------------------------------------------------------------------------------------------

LANGS = ["de", "en", "id"]
REASONS = [None, None, None, "empty: no text", "lang_mismatch: declared 'en', detected 'de' (0.90)",
           "too_few_sentences: 0 < 1", "no_language"]
RECORDS = st.lists(st.tuples(st.sampled_from(LANGS), st.sampled_from(REASONS),
                             st.sampled_from([None, "", "de", "en", "ms"]), st.integers(0, 50)), max_size=40)


def prepared(records: list[tuple]) -> pa.Table:
    """Staged rows as the count reads them: ``part`` dictionary-encoded (a Hive partition), int32 sentences."""
    part = [lang if reason is None else "_quarantine" for lang, reason, _, _ in records]
    return pa.table({"part": pa.array(part, pa.string()).dictionary_encode(),
                     "reason": pa.array([r for _, r, _, _ in records], pa.string()),
                     "detected_lang": pa.array([d for _, _, d, _ in records], pa.string()),
                     "n_sentences": pa.array([n for *_, n in records], pa.int32())})


@FEW
@given(RECORDS, st.lists(st.integers(0, 40), max_size=4))
def test_counts_add_up_over_any_split_into_batches(records, cuts):
    table = prepared(records)
    bounds = [0, *sorted(min(c, len(records)) for c in cuts), len(records)]
    batches = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    for batch in batches:  # one partial row per (part, code, detected) of the batch, holding its rows and sentences
        got = {(r["part"], r["code"], r["detected"]): (r["rows"], r["sentences"])
               for r in count_rows(batch).to_pylist()}
        want: dict = {}
        for part, reason, det, n in zip(*(batch.column(c).to_pylist() for c in
                                          ("part", "reason", "detected_lang", "n_sentences"))):
            key = (part, "kept" if reason is None else reason.split(":")[0], det or "")
            rows, sentences = want.get(key, (0, 0))
            want[key] = (rows + 1, sentences + n)
        assert got == want
    counts = summarise_counts(summed_counts(batches))
    kept = [(lang, det, n) for lang, reason, det, n in records if reason is None]
    assert counts["input"] == len(records) == counts["kept"] + counts["quarantined"]
    assert counts["kept"] == len(kept) and counts["sentences"] == sum(n for *_, n in kept)
    assert counts["documents_by_lang"] == dict(sorted(Counter(lang for lang, _, _ in kept).items()))
    assert counts["quarantine_reasons"] == dict(sorted(Counter(
        reason.split(":")[0] for _, reason, _, _ in records if reason is not None).items()))
    assert counts["langid_relabelled"] == dict(sorted(Counter(
        f"{det}->{lang}" for lang, det, _ in kept if det and det != lang).items()))
    for key in ("documents_by_lang", "quarantine_reasons", "langid_relabelled"):
        assert list(counts[key]) == sorted(counts[key])  # stable manifests: keys sorted


def test_count_rows_of_any_batch_have_one_schema():
    """Ray Data concatenates the partials of every block: an empty block's must have the same types."""
    want = pa.schema([("part", pa.string()), ("code", pa.string()), ("detected", pa.string()), ("rows", pa.int64()),
                      ("sentences", pa.int64())])
    assert count_rows(prepared([])).schema == want
    assert count_rows(prepared([("de", None, None, 3), ("en", "empty: x", "en", 0)])).schema == want


def test_summarise_counts_by_hand():
    groups = {("de", "kept", "de"): {"rows": 2, "sentences": 7}, ("de", "kept", "ms"): {"rows": 1, "sentences": 3},
              ("id", "kept", "ms"): {"rows": 4, "sentences": 10}, ("id", "kept", ""): {"rows": 1, "sentences": 2},
              ("_quarantine", "empty", "de"): {"rows": 3, "sentences": 0},
              ("_quarantine", "lang_mismatch", "en"): {"rows": 2, "sentences": 5},
              ("_quarantine", "empty", ""): {"rows": 1, "sentences": 0}}
    assert summarise_counts(groups) == {
        "input": 14, "kept": 8, "quarantined": 6, "quarantine_reasons": {"empty": 4, "lang_mismatch": 2},
        "documents_by_lang": {"de": 3, "id": 5}, "langid_relabelled": {"ms->de": 1, "ms->id": 4}, "sentences": 22}
    assert summarise_counts({}) == {"input": 0, "kept": 0, "quarantined": 0, "quarantine_reasons": {},
                                    "documents_by_lang": {}, "langid_relabelled": {}, "sentences": 0}
