"""Mr.TyDi v1.1 (Zhang et al., 2021; ``castorini/mr.tydi``): monolingual passage retrieval in 11 languages.

Data: ``mrtydi/mrtydi-v1.1-<language>/`` as unpacked from the release tarball ``mrtydi-v1.1-<language>.tar.gz``:
``collection/docs.jsonl.gz`` (Pyserini JsonCollection, ``{"id", "contents"}``; the Hugging Face
``castorini/mr-tydi-corpus`` file ``corpus.jsonl.gz`` with ``{"docid", "title", "text"}`` is read as well, title
and text joined by a space), ``topic.test.tsv`` (``qid<TAB>query``; or ``castorini/mr-tydi``'s ``test.jsonl.gz``,
``{"query_id", "query", ...}``) and ``qrels.test.txt`` (TREC: ``qid Q0 docid relevance``).

Protocol of the release README (``pyserini.eval.trec_eval -c -mrecip_rank -mrecall.100``): each test query that
has a relevant passage (relevance > 0) retrieves the top 100 from its language's whole collection; MRR@100 and
Recall@100 per language and their means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from msm.errors import MSMError
from msm.eval.metrics import mean, recall, reciprocal_rank
from msm.eval.report import Result
from msm.eval.tasks.common import find, jsonl, lines, retrieve

LANGS = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian", "ja": "japanese",
         "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu", "th": "thai"}
FIX = "re-download and unpack mrtydi-v1.1-<language>.tar.gz into <data-dir>/mrtydi/ (docs/evaluation.md)"


@dataclass
class MrTyDiData:
    doc_ids: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    queries: list[tuple[str, str]] = field(default_factory=list)  # (query id, text)
    relevant: dict[str, set[str]] = field(default_factory=dict)  # query id → relevant doc ids


def language_folder(root: Path, lang: str) -> Path:
    if lang not in LANGS:
        raise MSMError(f"mrtydi: unknown language {lang!r}; Mr.TyDi has {', '.join(LANGS)}")
    return root / f"mrtydi-v1.1-{LANGS[lang]}"


def languages(root: Path) -> list[str]:
    return [code for code in LANGS if language_folder(root, code).is_dir()]


def read_corpus(path: Path) -> tuple[list[str], list[str]]:
    ids, docs = [], []
    for n, obj in jsonl(path, (), FIX):
        if "docid" in obj and "text" in obj:
            doc_id, text = obj["docid"], f"{obj.get('title') or ''} {obj['text']}".strip()
        elif "id" in obj and "contents" in obj:
            doc_id, text = obj["id"], str(obj["contents"]).strip()
        else:
            raise MSMError(f'{path}:{n}: expected {{"docid", "title", "text"}} or {{"id", "contents"}}; {FIX}')
        if not text:
            raise MSMError(f"{path}:{n}: passage {doc_id!r} has no text; {FIX}")
        ids.append(str(doc_id))
        docs.append(text)
    return ids, docs


def read_topics(path: Path) -> list[tuple[str, str]]:
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        topics = [(str(o["query_id"]), str(o["query"])) for _, o in jsonl(path, ("query_id", "query"), FIX)]
    else:
        topics = []
        for n, line in lines(path, FIX):
            parts = line.split("\t")
            if len(parts) != 2 or not parts[1].strip():
                raise MSMError(f"{path}:{n}: expected 'qid<TAB>query', got {line[:80]!r}; {FIX}")
            topics.append((parts[0], parts[1]))
    return topics


def read_qrels(path: Path) -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = {}
    for n, line in lines(path, FIX):
        parts = line.split()
        if len(parts) != 4 or not parts[3].lstrip("-").isdigit():
            raise MSMError(f"{path}:{n}: expected TREC qrels 'qid Q0 docid relevance', got {line[:80]!r}; {FIX}")
        if int(parts[3]) > 0:
            relevant.setdefault(parts[0], set()).add(parts[2])
    return relevant


def load(folder: Path, limit: int | None = None) -> MrTyDiData:
    corpus = find(folder, ["collection/docs.jsonl.gz", "collection/docs.jsonl", "corpus.jsonl.gz", "corpus.jsonl"], FIX)
    topics_path = find(folder, ["topic.test.tsv", "test.jsonl.gz", "test.jsonl"], FIX)
    qrels_path = find(folder, ["qrels.test.txt"], FIX)
    relevant = read_qrels(qrels_path)
    queries = [(qid, text) for qid, text in read_topics(topics_path) if qid in relevant][:limit]
    if not queries:
        raise MSMError(f"mrtydi: no topic of {topics_path} has a relevant passage in {qrels_path}; the two files "
                       f"come from different languages or splits ({FIX})")
    ids, docs = read_corpus(corpus)
    return MrTyDiData(ids, docs, queries, {qid: relevant[qid] for qid, _ in queries})


def evaluate(encoder, data_dir: Path, langs: list[str] | None = None, limit: int | None = None,
             show_progress: bool = False, k: int = 100) -> list[Result]:
    root = Path(data_dir) / "mrtydi"
    found = languages(root) if root.is_dir() else []
    if not found:
        raise MSMError(f"mrtydi: no mrtydi-v1.1-<language>/ folder in {root}; {FIX}")
    results: list[Result] = []
    for lang in langs or found:
        folder = language_folder(root, lang)
        if not folder.is_dir():
            raise MSMError(f"mrtydi: {folder} not found (have {', '.join(found)}); {FIX}")
        data = load(folder, limit)
        ranked = retrieve(encoder, data.docs, data.doc_ids, [q for _, q in data.queries], k, show_progress)
        pairs = [(row, data.relevant[qid]) for row, (qid, _) in zip(ranked, data.queries)]
        results += [Result("mrtydi", lang, f"MRR@{k}", mean([reciprocal_rank(r, s, k) for r, s in pairs]), len(pairs)),
                    Result("mrtydi", lang, f"Recall@{k}", mean([recall(r, s, k) for r, s in pairs]), len(pairs))]
    for metric in (f"MRR@{k}", f"Recall@{k}"):
        per_lang = [r.value for r in results if r.metric == metric]
        results.append(Result("mrtydi", "mean", metric, mean(per_lang), len(per_lang)))
    return results
