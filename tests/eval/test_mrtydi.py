"""Mr.TyDi on hand-written files in both release formats (tarball and Hugging Face), with oracle rankings: MRR@k and
Recall@k by hand, the error messages naming file, line and fix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import mrtydi

from eval_fakes import copy_task, FIXTURES, Oracle, values


MRTYDI_RANKINGS = {  # query id → oracle ranking
    "1": ["5#0", "31#0", "5#1", "12#0", "47#0"],  # relevant 5#0, 5#1: RR 1, R@2 1/2
    "2": ["47#0", "12#0", "5#0", "5#1", "31#0"],  # relevant 12#0: RR 1/2, R@2 1
    "3": ["5#0", "12#0", "5#1", "47#0", "31#0"],  # relevant 31#0 (47#0 has relevance 0): RR 1/5, R@2 0
    "7": ["102#0", "101#0", "103#0", "104#0"],  # relevant 102#0: RR 1
    "9": ["104#0", "103#0", "101#0", "102#0"],  # relevant 101#0: RR 1/3, R@2 0
}


def mrtydi_oracle(root: Path) -> Oracle:
    passages, rankings = {}, {}
    for lang in mrtydi.languages(root):
        data = mrtydi.load(mrtydi.language_folder(root, lang))
        passages.update(zip(data.docs, data.doc_ids))
        rankings.update({text: MRTYDI_RANKINGS[qid] for qid, text in data.queries})
    return Oracle(passages, rankings)


FIX = r"re-download and unpack mrtydi-v1.1-<language>\.tar\.gz into <data-dir>/mrtydi/ \(docs/evaluation\.md\)"


FI_DOCS = {"p1": "fi doc one", "p2": "fi doc two", "p3": "fi doc three", "p4": "fi doc four"}


TE_DOCS = {"t1": "A te doc one", "t2": "te doc two", "t3": "te doc three", "t4": "te doc four"}


RANKINGS = {  # query text → the ranking the encoder produces
    "fi query a": ["p1", "p2", "p3", "p4"],  # relevant p2, p4: RR 1/2, R@2 1/2, R@100 1
    "fi query b": ["p3", "p4", "p2", "p1"],  # relevant p1 (p3 has relevance 0): RR 1/4, R@2 0, R@100 1
    "te query x": ["t2", "t3", "t1", "t4"],  # relevant t3: RR 1/2, R@2 1, R@100 1
    "te query y": ["t1", "t2", "t3", "t4"],  # relevant t1, t9 (not in the corpus): RR 1, R@k 1/2
}


class RankingEncoder:
    """Passage text → its own axis; query text → Σ 2^-r · axis(ranking[r]); records every call."""

    def __init__(self):
        self.axis = {text: i for i, text in enumerate([*FI_DOCS.values(), *TE_DOCS.values()])}
        self.ids = {text: pid for docs in (FI_DOCS, TE_DOCS) for pid, text in docs.items()}
        self.calls = []  # (kind, show_progress, texts)

    def encode(self, texts, kind="passage", show_progress=False):
        self.calls.append((kind, show_progress, list(texts)))
        out = np.zeros((len(texts), len(self.axis)), dtype=np.float32)
        by_id = {pid: self.axis[t] for t, pid in self.ids.items()}
        for row, text in enumerate(texts):
            if kind == "passage":
                out[row, self.axis[text]] = 1
            else:
                for r, pid in enumerate(RANKINGS[text]):
                    out[row, by_id[pid]] = 2.0 ** -r
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl_text(objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def make_root(tmp_path: Path) -> Path:
    """<tmp>/mrtydi with Finnish in the tarball layout and Telugu in the Hugging Face layout (gzipped)."""
    root = tmp_path / "mrtydi"
    fi = root / "mrtydi-v1.1-finnish"
    write(fi / "collection" / "docs.jsonl.gz", jsonl_text({"id": k, "contents": v} for k, v in FI_DOCS.items()))
    write(fi / "topic.test.tsv", "1\tfi query a\n2\tfi query b\n3\tfi query c\n")
    # relevance 0 and -1 are not relevant; topic 3 has only a negative judgement, so it is dropped
    write(fi / "qrels.test.txt", "1 Q0 p2 1\n1 Q0 p4 1\n2 Q0 p1 2\n2 Q0 p3 0\n3 Q0 p3 -1\n")
    te = root / "mrtydi-v1.1-telugu"
    write(te / "corpus.jsonl.gz", jsonl_text([
        {"docid": "t1", "title": "A", "text": "te doc one"},
        {"docid": "t2", "title": "", "text": "te doc two"},
        {"docid": "t3", "title": None, "text": "te doc three"},
        {"docid": "t4", "text": "te doc four"}]))
    write(te / "test.jsonl.gz", jsonl_text([
        {"query_id": 5, "query": "te query x", "positive_passages": []},
        {"query_id": "6", "query": "te query y", "positive_passages": []}]))
    write(te / "qrels.test.txt", "5 Q0 t3 1\n6 Q0 t1 1\n6 Q0 t9 1\n")
    return root


def by_key(results):
    return {(r.language, r.metric): (r.value, r.count) for r in results}


def _folder(tmp_path, corpus=None, topics=None, qrels="1 Q0 p1 1\n", topics_name="topic.test.tsv",
            corpus_name="collection/docs.jsonl"):
    folder = tmp_path / "mrtydi-v1.1-finnish"
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is not None:
        write(folder / corpus_name, corpus)
    if topics is not None:
        write(folder / topics_name, topics)
    if qrels is not None:
        write(folder / "qrels.test.txt", qrels)
    return folder


def test_mrtydi_loads_tarball_and_hf_formats(tmp_path):
    ja = mrtydi.load(FIXTURES / "mrtydi" / "mrtydi-v1.1-japanese")
    assert ja.doc_ids == ["5#0", "5#1", "12#0", "31#0", "47#0"]
    assert ja.docs[2] == "富士山\n富士山は日本で最も高い山で、標高は3776メートルである。"
    assert [q for q, _ in ja.queries] == ["1", "2", "3"]  # topic 4 has no qrels
    assert ja.relevant == {"1": {"5#0", "5#1"}, "2": {"12#0"}, "3": {"31#0"}}  # relevance 0 is not relevant
    sw = mrtydi.load(FIXTURES / "mrtydi" / "mrtydi-v1.1-swahili")
    assert sw.docs[1] == "Nairobi Nairobi ni mji mkuu wa Kenya na mji mkubwa zaidi nchini humo."
    assert sw.queries == [("7", "Mji mkuu wa Kenya ni upi?"), ("9", "Mlima mrefu zaidi barani Afrika ni upi?")]
    assert mrtydi.load(FIXTURES / "mrtydi" / "mrtydi-v1.1-japanese", limit=1).queries == [
        ("1", "東京はどんな都市ですか")]
    folder = copy_task(tmp_path, "mrtydi") / "mrtydi-v1.1-japanese" / "collection"
    with gzip.open(folder / "docs.jsonl.gz", "wb") as fh:  # the release ships it gzipped
        fh.write((folder / "docs.jsonl").read_bytes())
    (folder / "docs.jsonl").unlink()
    assert mrtydi.load(folder.parent) == ja


def test_mrtydi_metrics_by_hand():
    oracle = mrtydi_oracle(FIXTURES / "mrtydi")
    got = values(mrtydi.evaluate(oracle, FIXTURES))
    assert got[("ja", "MRR@100")] == pytest.approx((1 + 1 / 2 + 1 / 5) / 3)
    assert got[("sw", "MRR@100")] == pytest.approx((1 + 1 / 3) / 2)
    assert got[("mean", "MRR@100")] == pytest.approx(((1 + 1 / 2 + 1 / 5) / 3 + (1 + 1 / 3) / 2) / 2)
    assert got[("ja", "Recall@100")] == got[("sw", "Recall@100")] == 1.0  # every passage is within the top 100
    at2 = values(mrtydi.evaluate(oracle, FIXTURES, langs=["ja"], k=2))
    assert at2[("ja", "MRR@2")] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert at2[("ja", "Recall@2")] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_loads_gzipped_hf_corpus_and_topics_and_negative_relevance(tmp_path):
    """corpus.jsonl.gz and test.jsonl.gz (HF layout) are found and parsed as JSON lines; an empty or missing
    title adds nothing to the text; relevance -1 parses and is not relevant."""
    root = make_root(tmp_path)
    te = mrtydi.load(root / "mrtydi-v1.1-telugu")
    assert te.doc_ids == ["t1", "t2", "t3", "t4"]
    assert te.docs == ["A te doc one", "te doc two", "te doc three", "te doc four"]
    assert te.queries == [("5", "te query x"), ("6", "te query y")]
    assert te.relevant == {"5": {"t3"}, "6": {"t1", "t9"}}
    fi = mrtydi.load(root / "mrtydi-v1.1-finnish")
    assert fi.queries == [("1", "fi query a"), ("2", "fi query b")]
    assert fi.relevant == {"1": {"p2", "p4"}, "2": {"p1"}}
    assert mrtydi.read_qrels(root / "mrtydi-v1.1-finnish" / "qrels.test.txt") == {
        "1": {"p2", "p4"}, "2": {"p1"}}


def test_evaluate_metrics_counts_task_names_and_encoder_arguments(tmp_path):
    """MRR@100 / Recall@100 per language and their means, by hand; every row is task 'mrtydi' with its query
    count; passages and queries are encoded with show_progress=False by default."""
    make_root(tmp_path)
    enc = RankingEncoder()
    results = mrtydi.evaluate(enc, tmp_path)
    mrr_fi, mrr_te = (1 / 2 + 1 / 4) / 2, (1 / 2 + 1) / 2
    rec_fi, rec_te = (1 + 1) / 2, (1 + 1 / 2) / 2
    assert [(r.task, r.language, r.metric) for r in results] == [
        ("mrtydi", "fi", "MRR@100"), ("mrtydi", "fi", "Recall@100"),
        ("mrtydi", "te", "MRR@100"), ("mrtydi", "te", "Recall@100"),
        ("mrtydi", "mean", "MRR@100"), ("mrtydi", "mean", "Recall@100")]
    got = by_key(results)
    assert got[("fi", "MRR@100")] == pytest.approx((mrr_fi, 2))
    assert got[("fi", "Recall@100")] == pytest.approx((rec_fi, 2))
    assert got[("te", "MRR@100")] == pytest.approx((mrr_te, 2))
    assert got[("te", "Recall@100")] == pytest.approx((rec_te, 2))
    assert got[("mean", "MRR@100")] == pytest.approx(((mrr_fi + mrr_te) / 2, 2))
    assert got[("mean", "Recall@100")] == pytest.approx(((rec_fi + rec_te) / 2, 2))
    assert all(isinstance(r.count, int) for r in results)
    assert [(kind, progress) for kind, progress, _ in enc.calls] == [
        ("passage", False), ("query", False), ("passage", False), ("query", False)]
    assert all(progress is False for _, progress, _ in enc.calls)
    assert enc.calls[0][2] == list(FI_DOCS.values()) and enc.calls[1][2] == ["fi query a", "fi query b"]


def test_evaluate_at_k2_show_progress_and_limit(tmp_path):
    """k=2 cuts both metrics at rank 2; show_progress=True reaches every encode call; limit keeps the first
    judged topics of each language (and the counts follow)."""
    make_root(tmp_path)
    enc = RankingEncoder()
    got = by_key(mrtydi.evaluate(enc, tmp_path, k=2, show_progress=True))
    assert got[("fi", "MRR@2")] == pytest.approx(((1 / 2 + 0) / 2, 2))
    assert got[("fi", "Recall@2")] == pytest.approx(((1 / 2 + 0) / 2, 2))
    assert got[("te", "MRR@2")] == pytest.approx(((1 / 2 + 1) / 2, 2))
    assert got[("te", "Recall@2")] == pytest.approx(((1 + 1 / 2) / 2, 2))
    assert [progress for _, progress, _ in enc.calls] == [True, True, True, True]
    enc = RankingEncoder()
    results = mrtydi.evaluate(enc, tmp_path, limit=1)
    got = by_key(results)
    assert got[("fi", "MRR@100")] == pytest.approx((1 / 2, 1))
    assert got[("te", "MRR@100")] == pytest.approx((1 / 2, 1))
    assert got[("te", "Recall@100")] == pytest.approx((1.0, 1))
    assert got[("mean", "MRR@100")] == pytest.approx((1 / 2, 2))
    assert [texts for kind, _, texts in enc.calls if kind == "query"] == [["fi query a"], ["te query x"]]
    assert {r.task for r in results} == {"mrtydi"}


def test_missing_corpus_names_the_candidates_and_the_fix(tmp_path):
    """No passage file: the message lists the four accepted names and says how to fix it."""
    folder = _folder(tmp_path, topics="1\tq\n")
    with pytest.raises(MSMError, match=r"mrtydi-v1.1-finnish: none of collection/docs.jsonl.gz, collection/docs"
                                       r".jsonl, corpus.jsonl.gz, corpus.jsonl found; " + FIX):
        mrtydi.load(folder)


def test_missing_topics_names_the_candidates_and_the_fix(tmp_path):
    """No topic file: the message lists topic.test.tsv, test.jsonl.gz, test.jsonl and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n')
    with pytest.raises(MSMError, match=r"mrtydi-v1.1-finnish: none of topic.test.tsv, test.jsonl.gz, test.jsonl "
                                       r"found; " + FIX):
        mrtydi.load(folder)


def test_topics_and_qrels_without_overlap(tmp_path):
    """No topic has a judged relevant passage: both files are named, with the likely cause and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n', topics="2\tq\n")
    with pytest.raises(MSMError, match=r"mrtydi: no topic of .*mrtydi-v1.1-finnish/topic.test.tsv has a relevant "
                                       r"passage in .*mrtydi-v1.1-finnish/qrels.test.txt; the two files come from "
                                       r"different languages or splits \(" + FIX + r"\)"):
        mrtydi.load(folder)


def test_corpus_bad_json_line_names_file_line_and_fix(tmp_path):
    """A corpus line that is not JSON: path:line and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n{"id": "p2",\n', topics="1\tq\n")
    with pytest.raises(MSMError, match=r"collection/docs.jsonl:2: not JSON .*; " + FIX):
        mrtydi.load(folder)


def test_corpus_passage_without_text(tmp_path):
    """A passage whose text is blank: path:line, its id and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n{"id": "p2", "contents": "  "}\n',
                     topics="1\tq\n")
    with pytest.raises(MSMError, match=r"collection/docs.jsonl:2: passage 'p2' has no text; " + FIX):
        mrtydi.load(folder)


def test_corpus_text_without_docid_is_a_key_error_message(tmp_path):
    """"text" without "docid" is neither format: the message names both key sets (not a KeyError)."""
    folder = _folder(tmp_path, corpus='{"docid": "p1", "text": "x"}\n{"text": "orphan"}\n', topics="1\tq\n",
                     corpus_name="corpus.jsonl")
    with pytest.raises(MSMError, match=r'corpus.jsonl:2: expected \{"docid", "title", "text"\} or '
                                       r'\{"id", "contents"\}; ' + FIX):
        mrtydi.load(folder)


def test_qrels_unreadable_utf8(tmp_path):
    """qrels.test.txt that is not UTF-8: the file and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n', topics="1\tq\n", qrels=None)
    (folder / "qrels.test.txt").write_bytes(b"1 Q0 p1 1\n\xff\xfe 1\n")
    with pytest.raises(MSMError, match=r"qrels.test.txt: unreadable .*; " + FIX):
        mrtydi.load(folder)


def test_qrels_relevance_not_an_integer(tmp_path):
    """Relevance 'X1' is rejected with the file, line, expected format, the line and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n', topics="1\tq\n",
                     qrels="1 Q0 p1 1\n1 Q0 p2 X1\n")
    with pytest.raises(MSMError, match=r"qrels.test.txt:2: expected TREC qrels 'qid Q0 docid relevance', "
                                       r"got '1 Q0 p2 X1'; " + FIX):
        mrtydi.load(folder)


def test_qrels_long_bad_line_is_cut_at_80_characters(tmp_path):
    """A bad qrels line is quoted by its first 80 characters only."""
    line = "1 Q0 " + "d" * 90 + " 1 extra"
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n', topics="1\tq\n", qrels=line + "\n")
    with pytest.raises(MSMError, match=r"qrels.test.txt:1: expected TREC qrels 'qid Q0 docid relevance', "
                                       r"got '1 Q0 " + "d" * 75 + "'; " + FIX):
        mrtydi.load(folder)


def test_topics_unreadable_utf8(tmp_path):
    """topic.test.tsv that is not UTF-8: the file and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n')
    (folder / "topic.test.tsv").write_bytes(b"1\tq\n2\t\xff\n")
    with pytest.raises(MSMError, match=r"topic.test.tsv: unreadable .*; " + FIX):
        mrtydi.load(folder)


def test_topics_long_line_without_tab_is_cut_at_80_characters(tmp_path):
    """A topic line without a tab is quoted by its first 80 characters, with file:line and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n', topics="1\tq\n3 " + "x" * 100 + "\n")
    with pytest.raises(MSMError, match=r"topic.test.tsv:2: expected 'qid<TAB>query', got '3 " + "x" * 78
                                       + "'; " + FIX):
        mrtydi.load(folder)


def test_hf_topics_missing_key(tmp_path):
    """A test.jsonl line without "query": file:line, the missing and expected keys, and the fix."""
    folder = _folder(tmp_path, corpus='{"id": "p1", "contents": "x"}\n', topics='{"query_id": "1"}\n',
                     topics_name="test.jsonl")
    with pytest.raises(MSMError, match=r"test.jsonl:1: missing query \(expected keys query_id, query\); " + FIX):
        mrtydi.load(folder)
