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
        from transformers import AutoModel, AutoModelForMaskedLM

        from msm.models.tokenizer import load_tokenizer

        try:
            cls = AutoModelForMaskedLM if with_mlm_head else AutoModel
            self.model = cls.from_pretrained(str(path))
            self.tokenizer = load_tokenizer(path)
        except (OSError, ValueError) as exc:
            raise MSMError(
                f"{path}: cannot load a Hugging Face encoder ({exc}); pass a model folder with config.json, "
                "weights and tokenizer files, a hub id (online), or 'e5-small'"
            ) from exc
        self.pooling = pooling
        self.with_mlm_head = with_mlm_head
        self.hidden_size = int(self.model.config.hidden_size)

    def mlm_head(self) -> nn.Module | None:
        """The MLM model's head (RoBERTa/XLM-R ``lm_head``, BERT ``cls``, ...): its one child besides the base model."""
        heads = [m for m in self.model.children() if m is not self.model.base_model]
        return heads[0] if len(heads) == 1 else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                mlm_positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (pooled [N, H], MLM logits [M, V] at the M true entries of ``mlm_positions`` [N, T], or None).

        The vocabulary projection runs only at those positions: at the paper's shape (~16k tokens, 250k
        vocabulary) logits for every token would take tens of GB. A model whose head cannot be told apart from
        its base model falls back to the full forward, then selects the same rows."""
        if mlm_positions is None or not self.with_mlm_head:
            out = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask)
            return pool(out.last_hidden_state, attention_mask, self.pooling), None
        head = self.mlm_head()
        if head is None:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return pool(out.hidden_states[-1], attention_mask, self.pooling), out.logits[mlm_positions]
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.pooling), head(hidden[mlm_positions])

    def save(self, out_dir: str | Path) -> None:
        self.model.save_pretrained(str(out_dir), safe_serialization=True)
        self.tokenizer.save_pretrained(str(out_dir))
