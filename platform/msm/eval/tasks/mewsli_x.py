"""Mewsli-X (XTREME-R, Ruder et al., 2021): link entity mentions in WikiNews articles in 11 languages to WikiData
entities, retrieved by their Wikipedia description (in any of 50 languages) from a fixed candidate set.

Data, as ``get-mewsli-x.sh`` of ``google-research/google-research`` (``dense_representations_for_entity_retrieval/
mel/mewsli-x.md``) writes them to ``mewsli_x/output/dataset/``: ``mewsli_x/wikinews_mentions-test.jsonl``, one
article a line, ``{"context": {"language", "text", "sentence_spans": [{"start", "end"}], ...}, "mentions":
[{"example_id", "entity_id", "mention_span": {"start", "end", "text"}}, ...]}``, and
``mewsli_x/candidate_set_entities.jsonl``, ``{"entity_id", "description", "sentence_spans", ...}``. The archive's
``wikinews_mentions_no_text-*.jsonl`` lack the article text that the script restores, and are refused.

Protocol of XTREME-R's baseline (``google-research/xtreme``, ``third_party/utils_mewslix.py``): the query is the
sentence holding the mention, marked and prefixed by it, ``"<mention>: <left> { <mention> } <right>"`` (braces
already in the sentence become parentheses); an entity is its description's sentences joined. Metric mAP@20,
which with one gold entity is its reciprocal rank within the top 20, per article language and the macro mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from msm.errors import MSMError
from msm.eval.metrics import average_precision, mean
from msm.eval.report import Result
from msm.eval.tasks.common import find, jsonl, retrieve

MENTIONS = "wikinews_mentions-test.jsonl"
ENTITIES = "candidate_set_entities.jsonl"
FIX = "run get-mewsli-x.sh and copy mewsli_x/output/dataset/*.jsonl into <data-dir>/mewsli_x/ (docs/evaluation.md)"
_BRACES = re.compile(r"\{(.*?)\}")


@dataclass
class MewsliData:
    mentions: list[tuple[str, str, str, str]] = field(default_factory=list)  # (lang, example id, query, gold entity)
    entity_ids: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def mention_query(text: str, sentences: list[tuple[int, int]], start: int, end: int) -> str | None:
    """The baseline query string, or None when no sentence holds the whole mention."""
    hit = next(((s, e) for s, e in sentences if s <= start < e and s < end <= e), None)
    if hit is None:
        return None
    left, right = _BRACES.sub(r"(\1)", text[hit[0]:start]), _BRACES.sub(r"(\1)", text[end:hit[1]])
    mention = text[start:end]
    return normalise(f"{mention}: {left} {{ {mention} }} {right}")


def sentence_spans(obj: dict) -> list[tuple[int, int]]:
    return [(int(s["start"]), int(s["end"])) for s in obj.get("sentence_spans") or []]


def read_mentions(path: Path, langs: list[str] | None, limit: int | None) -> list[tuple[str, str, str, str]]:
    mentions, per_lang = [], {}
    for n, obj in jsonl(path, ("context", "mentions"), FIX):
        try:
            context, lang = obj["context"], obj["context"]["language"]
            text, sentences = context["text"], sentence_spans(context)
            if not text:
                raise MSMError(f"{path}:{n}: empty context.text: this is the released no-text file; {FIX}")
            for m in obj["mentions"]:
                span = m["mention_span"]
                start, end = int(span["start"]), int(span["end"])
                if text[start:end] != span["text"]:
                    raise MSMError(f"{path}:{n}: mention {m['example_id']} {span['text']!r} != context.text[{start}:"
                                   f"{end}] {text[start:end]!r}: text restored from another WikiNews dump? {FIX}")
                query = mention_query(text, sentences, start, end)
                if query is None:
                    raise MSMError(f"{path}:{n}: mention {m['example_id']} lies in no single sentence_span; {FIX}")
                if langs and lang not in langs:
                    continue
                per_lang[lang] = per_lang.get(lang, 0) + 1
                if limit is None or per_lang[lang] <= limit:
                    mentions.append((lang, str(m["example_id"]), query, str(m["entity_id"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MSMError(f"{path}:{n}: malformed Mewsli-X article ({type(exc).__name__}: {exc}); {FIX}") from exc
    if not mentions:
        raise MSMError(f"mewsli_x: no mention in {path} for languages {langs or 'any'}")
    return mentions


def read_entities(path: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    for n, obj in jsonl(path, ("entity_id", "description"), FIX):
        try:
            description = str(obj["description"])
            text = normalise(" ".join(description[s:e] for s, e in sentence_spans(obj))) or normalise(description)
        except (KeyError, TypeError, ValueError) as exc:
            raise MSMError(f"{path}:{n}: malformed sentence_spans ({exc}); {FIX}") from exc
        if not text:
            raise MSMError(f"{path}:{n}: entity {obj['entity_id']} has no description; {FIX}")
        ids.append(str(obj["entity_id"]))
        texts.append(text)
    return ids, texts


def load(folder: Path, langs: list[str] | None = None, limit: int | None = None) -> MewsliData:
    mentions_path, entities_path = find(folder, [MENTIONS], FIX), find(folder, [ENTITIES], FIX)
    mentions = read_mentions(mentions_path, langs, limit)
    ids, texts = read_entities(entities_path)
    missing = {gold for *_, gold in mentions} - set(ids)
    if missing:
        raise MSMError(f"mewsli_x: gold entities {', '.join(sorted(missing)[:5])} of {mentions_path.name} are not in "
                       f"{entities_path}; the two files come from different releases ({FIX})")
    return MewsliData(mentions, ids, texts)


def evaluate(encoder, data_dir: Path, langs: list[str] | None = None, limit: int | None = None,
             show_progress: bool = False, k: int = 20) -> list[Result]:
    folder = Path(data_dir) / "mewsli_x"
    if not folder.is_dir():
        raise MSMError(f"mewsli_x: {folder} not found; {FIX}")
    data = load(folder, langs, limit)
    ranked = retrieve(encoder, data.descriptions, data.entity_ids, [q for _, _, q, _ in data.mentions], k,
                      show_progress)
    per_lang: dict[str, list[float]] = {}
    for (lang, _, _, gold), row in zip(data.mentions, ranked):
        per_lang.setdefault(lang, []).append(average_precision(row, {gold}, k))
    results = [Result("mewsli_x", lang, f"mAP@{k}", mean(v), len(v)) for lang, v in sorted(per_lang.items())]
    results.append(Result("mewsli_x", "mean", f"mAP@{k}", mean([r.value for r in results]), len(results)))
    return results
