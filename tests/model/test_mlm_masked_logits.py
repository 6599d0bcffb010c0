"""MLM logits only at masked positions: the same loss and gradients as Hugging Face's full-vocabulary forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from msm.losses.mlm import mask_tokens, mlm_loss
from msm.model.sentence_encoder import SentenceEncoder


def test_masked_positions_only_equal_the_full_vocabulary_forward(tiny_model_dir, tokenizer, batch) -> None:
    enc = SentenceEncoder(tiny_model_dir, "mean", with_mlm_head=True)
    real = batch["sentence_mask"]
    batch = {"input_ids": batch["input_ids"][real], "attention_mask": batch["attention_mask"][real]}
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    ids, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], special, tokenizer.mask_token_id,
                              enc.model.config.vocab_size, 0.3, torch.Generator().manual_seed(1))
    masked = labels != -100
    assert 0 < int(masked.sum()) < int(batch["attention_mask"].sum())

    # reference: the HF model's own forward, logits for every token, cross-entropy that ignores -100
    full = enc.model(input_ids=ids, attention_mask=batch["attention_mask"]).logits
    assert full.shape[-1] == 250002
    ref = F.cross_entropy(full.reshape(-1, full.shape[-1]), labels.reshape(-1), ignore_index=-100)
    ref_grads = torch.autograd.grad(ref, list(enc.parameters()), allow_unused=True)

    pooled, logits = enc(ids, batch["attention_mask"], masked)
    assert logits.shape == (int(masked.sum()), 250002)
    ours = mlm_loss(logits, labels[masked])
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)
    grads = torch.autograd.grad(ours, list(enc.parameters()), allow_unused=True)
    for (name, _), g, r in zip(enc.named_parameters(), grads, ref_grads):
        if r is None:
            assert g is None or not g.any(), name
        else:
            assert torch.allclose(g, r, atol=1e-5, rtol=1e-4), name
    # the pooled vector is the base model's, with or without the head
    base = enc.model.base_model(input_ids=ids, attention_mask=batch["attention_mask"]).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(pooled, (base * m).sum(1) / m.sum(1), atol=1e-6)
