"""Documents (lists of sentences) → padded MSM batches ``input_ids [B,S,T]``, ``sentence_mask [B,S]``, ``lang [B]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def blocks(sentences: Sequence[str], max_sentences: int, min_sentences: int = 2) -> list[list[str]]:
    """Cut a document into consecutive blocks of at most ``max_sentences`` (dropping a too-short tail)."""
    out = [list(sentences[i:i + max_sentences]) for i in range(0, len(sentences), max_sentences)]
    return [b for b in out if len(b) >= min_sentences]


def collate(docs: Sequence[Sequence[str]], langs: Sequence[int], tokenizer, max_sentences: int,
            max_tokens: int) -> dict[str, torch.Tensor]:
    """Tokenise and pad a list of sentence blocks into one MSM batch."""
    b = len(docs)
    ids = torch.full((b, max_sentences, max_tokens), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((b, max_sentences, max_tokens), dtype=torch.long)
    smask = torch.zeros((b, max_sentences), dtype=torch.bool)
    for i, doc in enumerate(docs):
        doc = list(doc)[:max_sentences]
        enc = tokenizer(doc, truncation=True, max_length=max_tokens, padding="max_length", return_tensors="pt")
        ids[i, : len(doc)] = enc["input_ids"]
        mask[i, : len(doc)] = enc["attention_mask"]
        smask[i, : len(doc)] = True
    return {"input_ids": ids, "attention_mask": mask, "sentence_mask": smask,
            "lang": torch.tensor(list(langs), dtype=torch.long)}
