"""Masked language modelling (Devlin et al., 2019): 15% of tokens, replaced 80% [MASK] / 10% random / 10% kept."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special: torch.Tensor, mask_token_id: int,
                vocab_size: int, probability: float, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (corrupted input ids, labels with -100 where no prediction is made)."""
    device = input_ids.device
    rand = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    candidates = attention_mask.bool() & ~special
    chosen = candidates & (rand < probability)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device="cpu").to(device)
    corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_token_id), input_ids)
    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
    """Mean cross-entropy over masked tokens (``labels`` -100 elsewhere); None when nothing was masked.

    ``logits`` [..., V] and ``labels`` [...] may cover every token or, as ``MSMModel`` passes them, only the
    masked ones."""
    if not (labels != -100).any():
        return None
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
