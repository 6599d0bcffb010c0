"""XOR-Retrieve (Asai et al., 2021; ``AkariAsai/XORQA``): questions in 7 languages retrieve English passages.

Data: ``xor_retrieve/xor_dev_retrieve_eng_span_v1_1.jsonl`` (or the v1.0 ``xor_dev_retrieve_eng_span.jsonl``), one
question a line ``{"id", "question", "answers": [...], "lang"}``, and the English Wikipedia passages of the XOR
DPR baseline, ``xor_retrieve/enwiki_20190201_w100.tsv`` (DPR's ``psgs_w100.tsv`` format and name are read too:
``id<TAB>text<TAB>title``, an optional header line of those names, text csv-quoted as DPR writes it). Passages
are encoded as "title text"; each question retrieves the top ``depth`` passages (100 passages of 100 words hold
~10,000 words, well over the 5,000-token budget).

Metric as the release's ``evals/eval_xor_retrieve.py``: R@2kt / R@5kt = share of questions for which an answer
string occurs in the ranked passage texts cut to their first 2,000 / 5,000 tokens; "yes"/"no" answers are
ignored and questions left without an answer are skipped; per language and the macro mean over languages.
Tokens are whitespace tokens (:func:`msm.eval.metrics.answer_recall_at_tokens`); the released script counts
NLTK ``word_tokenize`` tokens, which split punctuation off words, so its budget ends a little earlier in the
ranking and our values can be slightly higher.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from msm.errors import MSMError
from msm.eval.metrics import answer_recall_at_tokens, mean
from msm.eval.report import Result
from msm.eval.tasks.common import find, jsonl, lines, retrieve

QUESTIONS = ["xor_dev_retrieve_eng_span_v1_1.jsonl", "xor_dev_retrieve_eng_span.jsonl"]
PASSAGES = ["enwiki_20190201_w100.tsv", "psgs_w100.tsv", "psgs_w100.tsv.gz"]
BUDGETS = (2000, 5000)
FIX = ("download the XOR-Retrieve dev questions and enwiki_20190201_w100.tsv into <data-dir>/xor_retrieve/ "
       "(docs/evaluation.md)")


@dataclass
class XORData:
    questions: list[tuple[str, str, str, list[str]]] = field(default_factory=list)  # (lang, id, text, answers)
    passage_ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)


def read_questions(path: Path, langs: list[str] | None, limit: int | None) -> list[tuple[str, str, str, list[str]]]:
    questions, per_lang, seen = [], {}, set()
    for n, obj in jsonl(path, ("id", "question", "answers", "lang"), FIX):
        answers = obj["answers"]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise MSMError(f"{path}:{n}: 'answers' must be a list of strings; {FIX}")
        if not isinstance(obj["question"], str) or not obj["question"].strip():
            raise MSMError(f"{path}:{n}: empty 'question'; {FIX}")
        seen.add(obj["lang"])
        spans = [a for a in answers if a not in ("yes", "no")]
        if not spans or (langs and obj["lang"] not in langs):
            continue
        per_lang[obj["lang"]] = per_lang.get(obj["lang"], 0) + 1
        if limit is None or per_lang[obj["lang"]] <= limit:
            questions.append((obj["lang"], str(obj["id"]), obj["question"], spans))
    if not questions:
        raise MSMError(f"xor_retrieve: no question with a span answer in {path} for languages {langs or 'any'} "
                       f"(the file has {', '.join(sorted(seen)) or 'none'})")
    return questions


def read_passages(path: Path) -> tuple[list[str], list[str], list[str]]:
    ids, texts, titles = [], [], []
    for n, line in lines(path, FIX):
        row = next(csv.reader([line], delimiter="\t"))
        if row == ["id", "text", "title"]:
            continue
        if len(row) != 3 or not row[1].strip():
            raise MSMError(f"{path}:{n}: expected 'id<TAB>text<TAB>title' with a text, got {line[:80]!r}; {FIX}")
        ids.append(row[0])
        texts.append(row[1])
        titles.append(row[2])
    return ids, texts, titles


def load(folder: Path, langs: list[str] | None = None, limit: int | None = None) -> XORData:
    questions_path, passages_path = find(folder, QUESTIONS, FIX), find(folder, PASSAGES, FIX)
    questions = read_questions(questions_path, langs, limit)
    return XORData(questions, *read_passages(passages_path))


def evaluate(encoder, data_dir: Path, langs: list[str] | None = None, limit: int | None = None,
             show_progress: bool = False, depth: int = 100) -> list[Result]:
    folder = Path(data_dir) / "xor_retrieve"
    if not folder.is_dir():
        raise MSMError(f"xor_retrieve: {folder} not found; {FIX}")
    data = load(folder, langs, limit)
    passages = [f"{title} {text}".strip() for title, text in zip(data.titles, data.texts)]
    ranked = retrieve(encoder, passages, data.passage_ids, [q for _, _, q, _ in data.questions], depth, show_progress)
    text_of = dict(zip(data.passage_ids, data.texts))
    results: list[Result] = []
    for budget in BUDGETS:
        metric, hits = f"R@{budget // 1000}kt", {}
        for (lang, _, _, answers), row in zip(data.questions, ranked):
            hits.setdefault(lang, []).append(answer_recall_at_tokens([text_of[p] for p in row], answers, budget))
        results += [Result("xor_retrieve", lang, metric, mean(v), len(v)) for lang, v in sorted(hits.items())]
        results.append(Result("xor_retrieve", "mean", metric, mean([mean(v) for v in hits.values()]), len(hits)))
    return results
