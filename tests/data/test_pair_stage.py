"""The pair stage (msm.data.pair_stage) on hand-made staged partitions: documents of uncertain language."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msm.data.config import AlignConfig, PairConfig
from msm.data.embed import document_embeddings, nested_vectors
from msm.data.pair_stage import pair_language_pair, uncertain_language
from msm.uri import resolve

N, DIM = 30, 16


def write_part(root, lang: str, sentences: np.ndarray, flags: list[list[str]], declared: list[str | None]) -> None:
    """One staged ``part=<lang>`` file: doc ``<lang>-<i>`` holds ``sentences[i]`` (2, DIM), keys as in prepare."""
    emb = sentences.reshape(-1, DIM).astype(np.float32)
    offsets = np.arange(0, 2 * len(sentences) + 1, 2)
    docs = document_embeddings(emb, offsets)
    table = pa.table({
        "doc_id": [f"{lang}-{i:02d}" for i in range(len(sentences))], "declared_lang": pa.array(declared, pa.string()),
        "flags": pa.array(flags, pa.list_(pa.string())),
        "sentences": [["x" * 40, "y" * 30]] * len(sentences),
        "sentence_embeddings": nested_vectors(emb, offsets),
        "doc_embedding": pa.FixedSizeListArray.from_arrays(pa.array(docs.reshape(-1), pa.float32()), DIM)})
    (root / f"part={lang}").mkdir(parents=True)
    pq.write_table(table, root / f"part={lang}" / "0.parquet")


@pytest.fixture
def staged(tmp_path):
    """en and de translations (noisy copies); en-03 and de-07 detected below langid.min_confidence with no
    language declared; de-11 flagged the same but declared."""
    rng = np.random.default_rng(0)
    src = rng.normal(size=(N, 2, DIM))
    tgt = src + 0.1 * rng.normal(size=src.shape)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    low = ["low_lang_confidence"]
    write_part(tmp_path, "en", unit(src), [low if i == 3 else [] for i in range(N)], [None] * N)
    write_part(tmp_path, "de", unit(tgt), [low if i in (7, 11) else ["lang_relabelled"] if i == 5 else []
                                           for i in range(N)], ["de" if i == 11 else None for i in range(N)])
    return tmp_path


def pairs_of(root, **pair):
    out = root / "pairs.parquet"
    summary = pair_language_pair(resolve(root), "en", "de", PairConfig(**pair), AlignConfig(), resolve(out))
    got = pq.read_table(out, columns=["src_doc_id", "tgt_doc_id"]).to_pydict()
    return set(zip(got["src_doc_id"], got["tgt_doc_id"])), summary


def test_uncertain_language_needs_the_flag_and_no_declared_language():
    flags = pa.array([["low_lang_confidence"], ["low_lang_confidence"], [], None, ["lang_relabelled"]],
                     pa.list_(pa.string()))
    declared = pa.array([None, "de", None, None, None], pa.string())
    assert uncertain_language(declared, flags).tolist() == [True, False, False, False, False]


def test_documents_of_uncertain_language_are_not_paired(staged):
    truth = {(f"en-{i:02d}", f"de-{i:02d}") for i in range(N)}
    kept, summary = pairs_of(staged)
    assert kept == truth - {("en-03", "de-03"), ("en-07", "de-07")}  # the declared de-11 is paired
    assert summary["uncertain_language_left_out"] == {"en": 1, "de": 1}
    assert (summary["src_documents"], summary["tgt_documents"]) == (N - 1, N - 1)
    every, summary = pairs_of(staged, skip_uncertain_language=False)
    assert every == truth and "uncertain_language_left_out" not in summary
