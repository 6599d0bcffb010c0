"""LAReQA on XQuAD-R (Roy et al., 2020), official protocol of ``google-research-datasets/lareqa``.

Candidates: every sentence (``sentence_breaks``) of every paragraph in all 11 languages, encoded with its
paragraph as context (a sentence/context pair). Each question (in each language) retrieves from the pooled
multilingual candidates; the relevant candidates are the sentences containing the answer in every language
(same question id). Metric: mAP@20 per question language and the mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msm.errors import MSMError
from msm.eval.metrics import average_precision, mean
from msm.eval.report import Result

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


@dataclass
class LAReQAData:
    questions: list[tuple[str, str, str]] = field(default_factory=list)  # (lang, question id, text)
    candidates: list[tuple[str, str, str]] = field(default_factory=list)  # (uid, sentence, context)
    candidate_lang: list[str] = field(default_factory=list)
    relevant: dict[str, set[str]] = field(default_factory=dict)  # question id → candidate uids


def load(folder: Path, langs: list[str] | None = None, max_questions: int | None = None) -> LAReQAData:
    data = LAReQAData()
    for lang in langs or LANGS:
        path = folder / f"{lang}.json"
        if not path.is_file():
            raise MSMError(f"lareqa: {path} not found (known languages: {', '.join(LANGS)}); check --data-dir / --langs")
        try:
            squad = json.loads(path.read_text(encoding="utf-8"))
            articles = squad["data"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise MSMError(f"{path}: not SQuAD-format XQuAD-R JSON ({exc}); re-download the file") from exc
        n_par, n_q = 0, 0
        for article in articles:
            for paragraph in article["paragraphs"]:
                n_par += 1
                context, breaks = paragraph["context"], paragraph["sentence_breaks"]
                for pos, (start, end) in enumerate(breaks):
                    data.candidates.append((f"{lang}_{n_par}_{pos}", context[start:end], context))
                    data.candidate_lang.append(lang)
                for qa in paragraph["qas"]:
                    answer = qa["answers"][0]["answer_start"]
                    hit = next((p for p, (s, e) in enumerate(breaks) if s <= answer < e), None)
                    if hit is None or (max_questions is not None and n_q >= max_questions):
                        continue
                    n_q += 1
                    data.questions.append((lang, qa["id"], qa["question"]))
                    data.relevant.setdefault(qa["id"], set()).add(f"{lang}_{n_par}_{hit}")
    return data


def rank(encoder, data: LAReQAData, k: int = 20, show_progress: bool = False) -> np.ndarray:
    """The top ``k`` candidates (indices into ``data.candidates``) of every question, best first: candidates
    encoded with their paragraph as passages, questions as queries, inner product (cosine: unit vectors)."""
    cand = encoder.encode([(s, c) for _, s, c in data.candidates], kind="passage", show_progress=show_progress)
    ques = encoder.encode([q for _, _, q in data.questions], kind="query", show_progress=show_progress)
    return np.argsort(-(ques @ cand.T), axis=1)[:, :k]


def score(data: LAReQAData, top: np.ndarray, k: int = 20) -> list[Result]:
    """mAP@k per question language and their mean, from :func:`rank`'s top candidates."""
    uids = [u for u, _, _ in data.candidates]
    per_lang: dict[str, list[float]] = {}
    for (lang, qid, _), row in zip(data.questions, top):
        per_lang.setdefault(lang, []).append(average_precision([uids[j] for j in row], data.relevant[qid], k))
    results = [Result("lareqa", lang, f"mAP@{k}", mean(v), len(v)) for lang, v in per_lang.items()]
    results.append(Result("lareqa", "mean", f"mAP@{k}", mean([r.value for r in results]), len(results)))
    return results


def language_bias(data: LAReQAData, top: np.ndarray) -> dict[str, float]:
    """The language-bias diagnostic (every language's answer is relevant, so an unbiased retriever puts its top-1 in
    the question's own language about 1/n_languages of the time): the share of questions whose top-1 candidate is in
    their own language, and that share among the questions whose top-1 is relevant."""
    uids = [u for u, _, _ in data.candidates]
    own_hits = hits = own_top1 = 0
    for (lang, qid, _), row in zip(data.questions, top):
        same = data.candidate_lang[row[0]] == lang
        own_top1 += same
        if uids[row[0]] in data.relevant[qid]:
            hits += 1
            own_hits += same
    return {"own-language share of top-1 hits": own_hits / hits if hits else 0.0,
            "own-language share of top-1": own_top1 / len(data.questions) if data.questions else 0.0}


def evaluate(encoder, data_dir: Path, langs: list[str] | None = None, limit: int | None = None,
             show_progress: bool = False, k: int = 20) -> list[Result]:
    folder = Path(data_dir) / "xquad-r"
    if not folder.is_dir():
        raise MSMError(f"lareqa: {folder} not found; pass --data-dir with an xquad-r/ folder")
    data = load(folder, langs, limit)
    return score(data, rank(encoder, data, k, show_progress), k)
