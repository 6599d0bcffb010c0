"""Validation during pretraining: cross-lingual sentence retrieval on held-out parallel text.

``val_score`` = mean accuracy@1 of xxx→eng and eng→xxx over the validation languages, with the sentence encoder
being trained (pooled, L2-normalised). The text never overlaps the training documents and is not a test set:
NTREX-128 documents from the end of the file (training takes them from the start), else Old Testament chapters
of the Bible (training uses the New Testament). Tatoeba and XQuAD-R stay untouched for evaluation.
"""

from __future__ import annotations

import torch

from msm.errors import MSMError
from msm.train.config import PretrainConfig

ENGLISH_BIBLE = "k"
VAL_BOOKS = (1, 39)


def validation_pairs(cfg: PretrainConfig) -> dict[str, tuple[list[str], list[str]]]:
    """language → (its sentences, the English sentences at the same positions)."""
    from msm.data.readers import read_bible, read_ntrex  # lazy: pyarrow

    v = cfg.validation
    if v.source == "bible":
        def chapters(code: str) -> dict[str, list[str]]:
            recs = read_bible(None, "val", [code], None, VAL_BOOKS)
            return {r["doc_id"].split(":")[-1]: r["sentences"] for r in recs}

        eng = chapters(ENGLISH_BIBLE)
        out = {}
        for code in v.languages:
            xs, es = [], []
            for key, verses in chapters(code).items():
                if key in eng and len(eng[key]) == len(verses):  # verse-aligned chapters only
                    xs.extend(verses)
                    es.extend(eng[key])
                if len(xs) >= v.max_sentences:
                    break
            out[code] = (xs[: v.max_sentences], es[: v.max_sentences])
        return out
    from msm.train.data import data_dir  # lazy: pyarrow

    ntrex = data_dir(cfg) / "ntrex"
    from msm.train.corpus import load_documents  # lazy: pyarrow

    # NTREX / Bible / mined training data can hold the held-out sentences themselves; a streamed corpus (text,
    # jsonl, parquet) is not loaded to check (web text rarely contains NTREX's translated news)
    small = cfg.data.source in ("ntrex", "bible", "mined")
    seen = {s for doc, _ in load_documents(cfg) for s in doc} if small else set()
    eng_docs = [r["sentences"] for r in read_ntrex(ntrex, "val", ["eng"], None)][-v.docs:]
    out = {}
    for lang in v.languages:
        docs = [r["sentences"] for r in read_ntrex(ntrex, "val", [lang], None)][-v.docs:]
        pairs = list(zip([s for d in docs for s in d], [s for d in eng_docs for s in d]))
        fresh = [(x, e) for x, e in pairs if x not in seen and e not in seen]
        if len(fresh) < len(pairs) / 2:
            raise MSMError(f"validation: {len(pairs) - len(fresh)} of {len(pairs)} held-out NTREX {lang} sentences "
                           "are in the training data, so validation would overlap training; lower "
                           "data.max_docs_per_lang or validation.docs (NTREX has 123 documents)")
        fresh = fresh[: v.max_sentences]
        out[lang] = ([x for x, _ in fresh], [e for _, e in fresh])
    return out


@torch.inference_mode()
def embed(sentence_encoder, texts: list[str], max_tokens: int, batch_size: int = 64) -> torch.Tensor:
    tok = sentence_encoder.tokenizer
    device = next(sentence_encoder.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i:i + batch_size], truncation=True, max_length=max_tokens, padding=True, return_tensors="pt")
        pooled, _ = sentence_encoder(enc["input_ids"].to(device), enc["attention_mask"].to(device))
        out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu())
    return torch.cat(out)


def accuracy_at_1(queries: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of queries whose nearest target (inner product) sits at the same index."""
    hit = (queries @ targets.T).argmax(dim=1) == torch.arange(len(queries))
    return float(hit.float().mean())


def evaluate(sentence_encoder, pairs: dict[str, tuple[list[str], list[str]]], max_tokens: int) -> dict[str, float]:
    """``val_score`` plus ``val_<lang>`` (mean of both directions) for each validation language."""
    was_training = sentence_encoder.training
    sentence_encoder.eval()
    scores = {}
    for lang, (xs, es) in pairs.items():
        x, e = embed(sentence_encoder, xs, max_tokens), embed(sentence_encoder, es, max_tokens)
        scores[f"val_{lang}"] = (accuracy_at_1(x, e) + accuracy_at_1(e, x)) / 2
    sentence_encoder.train(was_training)
    return {"val_score": sum(scores.values()) / len(scores), **scores}
