"""Row functions of the write stage of ``msm mine`` (Arrow in, Arrow out, for ``map_batches``): the staged
documents become ``documents/`` (with the pairs each takes part in), ``embeddings/`` and ``quarantine/``."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from msm.data.schema import DOCUMENTS, QUARANTINE
from msm.errors import MSMError

EMBEDDINGS_COLUMNS = ("doc_id", "lang", "doc_embedding", "sentence_embeddings")
MERGE = DOCUMENTS.append(pa.field("is_document", pa.bool_()))  # documents and pair memberships, one shuffle


class DuplicateDocumentId(MSMError):
    pass


def document_side(batch: pa.Table) -> pa.Table:
    """Kept staged documents as :data:`MERGE` rows (no pairs yet)."""
    n = batch.num_rows
    cols = {f.name: (pa.array([[]] * n, f.type) if f.name in ("pair_ids", "aligned_doc_ids")
                     else batch.column(f.name).cast(f.type)) for f in DOCUMENTS}
    return pa.table({**cols, "is_document": pa.array([True] * n)}, schema=MERGE)


def membership_side(batch: pa.Table) -> pa.Table:
    """Two :data:`MERGE` rows per pair, one for each document, holding ``[pair_id]`` and ``[other doc_id]``."""
    pid, src, tgt = (batch.column(c).to_pylist() for c in ("pair_id", "src_doc_id", "tgt_doc_id"))
    n = 2 * len(pid)
    cols = {f.name: pa.nulls(n, f.type) for f in DOCUMENTS}
    cols.update(doc_id=pa.array(src + tgt, pa.string()), pair_ids=pa.array([[p] for p in pid + pid], MERGE.field("pair_ids").type),
                aligned_doc_ids=pa.array([[t] for t in tgt] + [[s] for s in src], MERGE.field("aligned_doc_ids").type))
    return pa.table({**cols, "is_document": pa.array([False] * n)}, schema=MERGE)


def merge_document(group: pa.Table) -> pa.Table:
    """``map_groups`` over one ``doc_id``: its document row with every pair it takes part in (pair-id order).
    Two document rows with one id is a user error: ids must be unique within an input."""
    is_doc = group.column("is_document").to_pylist()
    if sum(is_doc) == 0:  # a pair names a document the run did not keep: a bug of the pipeline, not of the input
        doc_id = group.column("doc_id")[0].as_py()
        raise MSMError(f"a pair names document id {doc_id!r}, but no kept document has it: the staged pairs and "
                       "documents disagree; re-run msm mine (and report it if it happens again)")
    if sum(is_doc) > 1:
        doc_id = group.column("doc_id")[0].as_py()
        raise DuplicateDocumentId(f"duplicate document id {doc_id!r} ({sum(is_doc)} documents): give every document "
                                  "a unique id within its input")
    links = sorted(zip(pc.list_flatten(group.column("pair_ids")).to_pylist(),
                       pc.list_flatten(group.column("aligned_doc_ids")).to_pylist()))
    doc = group.filter(pa.array(is_doc)).drop_columns(["pair_ids", "aligned_doc_ids", "is_document"])
    return doc.append_column("pair_ids", pa.array([[p for p, _ in links]], DOCUMENTS.field("pair_ids").type)) \
              .append_column("aligned_doc_ids", pa.array([[d for _, d in links]], DOCUMENTS.field("aligned_doc_ids").type)) \
              .select(DOCUMENTS.names).cast(DOCUMENTS)


def quarantine_rows(batch: pa.Table) -> pa.Table:
    """Quarantined rows → :data:`QUARANTINE` (reason and the first 200 characters of the text)."""
    prefix = [(t or " ".join(s or []))[:200] for t, s in zip(batch.column("text").to_pylist(),
                                                               batch.column("sentences").to_pylist())]
    return pa.table({"doc_id": batch.column("doc_id"), "lang": batch.column("lang").cast(pa.string()),
                     "source": batch.column("source"), "reason": batch.column("reason"), "text_prefix": prefix},
                    schema=QUARANTINE)


def count_rows(batch: pa.Table) -> pa.Table:
    """Partial counts of one batch: rows and sentences per ``(part, code, detected)``, the code being the
    quarantine reason's (``kept`` for kept rows), ``detected`` fastText's own label ("" without language ID).
    The driver sums these partials: one small row per group and block."""
    codes = [r.split(":")[0] if r is not None else "kept" for r in batch.column("reason").to_pylist()]
    t = pa.table({"part": batch.column("part").cast(pa.string()), "code": pa.array(codes, pa.string()),
                  "detected": pc.fill_null(batch.column("detected_lang").cast(pa.string()), ""),
                  "n_sentences": batch.column("n_sentences").cast(pa.int64())})
    return t.group_by(["part", "code", "detected"]).aggregate(
        [("n_sentences", "count"), ("n_sentences", "sum")]).rename_columns(
        ["part", "code", "detected", "rows", "sentences"])


def summarise_counts(groups: dict[tuple[str, str, str], dict[str, int]]) -> dict:
    """The manifest's document counts from the summed :func:`count_rows` groups: input, kept (by language),
    quarantined (by reason), sentences, and ``langid_relabelled`` (``"label->lang"``: kept documents whose
    language is not fastText's top label: moved by ``langid.merge`` / ``allow``, or a declared language kept
    over a mismatch with ``langid.on_mismatch: flag``)."""
    kept_by_lang: dict[str, int] = {}
    reasons: dict[str, int] = {}
    relabelled: dict[str, int] = {}
    for (part, code, detected), g in groups.items():
        if code != "kept":
            reasons[code] = reasons.get(code, 0) + g["rows"]
            continue
        kept_by_lang[part] = kept_by_lang.get(part, 0) + g["rows"]
        if detected and detected != part:
            relabelled[f"{detected}->{part}"] = relabelled.get(f"{detected}->{part}", 0) + g["rows"]
    return {"input": sum(g["rows"] for g in groups.values()), "kept": sum(kept_by_lang.values()),
            "quarantined": sum(reasons.values()), "quarantine_reasons": dict(sorted(reasons.items())),
            "documents_by_lang": dict(sorted(kept_by_lang.items())),
            "langid_relabelled": dict(sorted(relabelled.items())),
            "sentences": sum(g["sentences"] for (_, code, _), g in groups.items() if code == "kept")}
