"""Sentence segmentation for every language of our data, and chunking to the encoder's token budget.

``sentencex`` handles Latin, Cyrillic, Greek, Arabic, Indic and CJK punctuation; Thai has no sentence
punctuation (spaces separate phrases), so Thai text is split at spaces and pieces shorter than
``THAI_MIN_CHARS`` are merged. The comparison that led to this choice is in docs/mining.md.
"""

from __future__ import annotations

import re

import sentencex

THAI_MIN_CHARS = 20
_WS = re.compile(r"\s+")


def segment(text: str, lang: str | None) -> list[str]:
    """Split ``text`` (one document, ISO 639-1 ``lang``) into sentences; line breaks always end a sentence."""
    out: list[str] = []
    for para in text.split("\n"):
        para = para.strip()
        if not para:
            continue
        if lang == "th":
            pieces: list[str] = []
            for p in _WS.split(para):
                if pieces and len(pieces[-1]) < THAI_MIN_CHARS:
                    pieces[-1] += " " + p
                else:
                    pieces.append(p)
            out.extend(pieces)
        else:
            out.extend(s.strip() for s in sentencex.segment(lang or "en", para) if s.strip())
    return out


def chunk_to_budget(sentences: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Cut every sentence longer than ``max_tokens`` tokens into consecutive pieces of at most that many tokens,
    preferring cuts at a space (no word is split unless a single word exceeds the budget)."""
    if not sentences:
        return []
    enc = tokenizer(sentences, add_special_tokens=False, return_offsets_mapping=True)
    out: list[str] = []
    for sent, offsets in zip(sentences, enc["offset_mapping"]):
        if len(offsets) <= max_tokens:
            out.append(sent)
            continue
        cuts, start = [0], 0
        while len(offsets) - start > max_tokens:
            end = start + max_tokens
            # first token of a word (SentencePiece may emit a lone "▁" sharing the word's start offset)
            at_space = [k for k in range(end, start, -1) if offsets[k][0] > 0 and sent[offsets[k][0] - 1].isspace()
                        and offsets[k - 1][0] != offsets[k][0]]
            start = at_space[0] if at_space else end
            cuts.append(offsets[start][0])
        cuts.append(len(sent))
        out.extend(p for p in (sent[a:b].strip() for a, b in zip(cuts, cuts[1:])) if p)
    return out
