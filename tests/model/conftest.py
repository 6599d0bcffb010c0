"""Tiny MSM batches built with the real XLM-R tokenizer."""

from __future__ import annotations

import pytest
import torch

SENTENCES = [
    ["The river rose overnight.", "Schools closed early.", "Volunteers filled sandbags.", "The mayor thanked them.",
     "Rain is expected again."],
    ["Le marché ouvre à huit heures.", "Les fruits viennent de la région.", "Les prix ont baissé.",
     "Les clients sont contents."],
    ["Der Zug hatte Verspätung.", "Viele Pendler warteten.", "Die Bahn entschuldigte sich.",
     "Ein Ersatzbus fuhr.", "Am Abend lief alles wieder.", "Morgen gibt es Bauarbeiten."],
]


def make_batch(tokenizer, docs=SENTENCES, max_sentences: int = 6, max_tokens: int = 12, langs=(0, 1, 2)):
    b = len(docs)
    ids = torch.full((b, max_sentences, max_tokens), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((b, max_sentences, max_tokens), dtype=torch.long)
    smask = torch.zeros((b, max_sentences), dtype=torch.bool)
    for i, doc in enumerate(docs):
        enc = tokenizer(doc, truncation=True, max_length=max_tokens, padding="max_length", return_tensors="pt")
        ids[i, : len(doc)] = enc["input_ids"]
        mask[i, : len(doc)] = enc["attention_mask"]
        smask[i, : len(doc)] = True
    return {"input_ids": ids, "attention_mask": mask, "sentence_mask": smask, "lang": torch.tensor(langs[:b])}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture()
def batch(tokenizer):
    return make_batch(tokenizer)


@pytest.fixture()
def batch_of(tokenizer):
    """``batch_of(docs, langs)``: a batch of other documents (S = 6, T = 12)."""
    return lambda docs, langs: make_batch(tokenizer, docs, langs=langs)


@pytest.fixture()
def tiny_cfg(tiny_model_dir):
    from msm.model.config import MSMModelConfig

    return MSMModelConfig(encoder=str(tiny_model_dir), max_sentences=6, max_tokens=12, memory_bank_size=32,
                          doc_heads=2, dropout=0.0)


@pytest.fixture()
def uneven_batch(tokenizer):
    """Sentences of 3 to 40 tokens (T = 40): short ones beside ones that fill the budget."""
    long = "The committee met for many hours to discuss the new budget, the roads, the schools and the river " * 2
    docs = [["Yes.", long, "The river rose.", "No.", "Schools closed early because of the storm last night."],
            ["Oui.", "Le marché ouvre à huit heures et ferme tard le soir pendant tout l'été.", long, "Non."],
            ["Ja.", "Nein.", long, "Der Zug hatte Verspätung.", "Viele Pendler warteten.", "Gut."]]
    return make_batch(tokenizer, docs, max_sentences=6, max_tokens=40)
