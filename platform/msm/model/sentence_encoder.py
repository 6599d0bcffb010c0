"""Sentence encoder: any Hugging Face encoder, pooled to one vector per sentence (CLS or mean)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from msm.errors import MSMError


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[N, T, H] token states → [N, H] sentence vectors."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class SentenceEncoder(nn.Module):
    """Wraps an HF model; with ``with_mlm_head`` it loads ``AutoModelForMaskedLM`` (head initialised if absent)."""

    def __init__(self, path: str | Path, pooling: str = "mean", with_mlm_head: bool = False) -> None:
        super().__init__()
        from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

        try:
            cls = AutoModelForMaskedLM if with_mlm_head else AutoModel
            self.model = cls.from_pretrained(str(path))
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError) as exc:
            raise MSMError(
                f"{path}: cannot load a Hugging Face encoder ({exc}); pass a model folder with config.json, "
                "weights and tokenizer files, a hub id (online), or 'e5-small'"
            ) from exc
        self.pooling = pooling
        self.with_mlm_head = with_mlm_head
        self.hidden_size = int(self.model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (pooled [N, H], MLM logits [N, T, V] or None)."""
        if self.with_mlm_head:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return pool(out.hidden_states[-1], attention_mask, self.pooling), out.logits
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return pool(out.last_hidden_state, attention_mask, self.pooling), None

    def save(self, out_dir: str | Path) -> None:
        self.model.save_pretrained(str(out_dir), safe_serialization=True)
        self.tokenizer.save_pretrained(str(out_dir))
