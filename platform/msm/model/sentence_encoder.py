"""Sentence encoder: any Hugging Face encoder, pooled to one vector per sentence (CLS or mean)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from msm.encoders.tokenizer import load_tokenizer
from msm.errors import MSMError


def length_groups(lengths: list[int], n: int) -> list[tuple[list[int], int]]:
    """Split items into at most ``n`` groups of consecutive lengths (sorted), each padded to its own longest.

    The cut points minimise the padded token count, ``Σ_group size × longest`` (dynamic programming over the
    distinct lengths). Returns (item indices, group width) pairs."""
    widths = sorted(set(lengths))
    count = [lengths.count(w) for w in widths]
    m, n = len(widths), max(1, min(n, len(widths)))
    size = [0]
    for c in count:
        size.append(size[-1] + c)
    inf = float("inf")
    # cost[g][j]: fewest padded tokens for the j shortest widths in g groups; cut[g][j]: start of the last group
    cost = [[0.0] + [inf] * m] + [[inf] * (m + 1) for _ in range(n)]
    cut = [[0] * (m + 1) for _ in range(n + 1)]
    for g in range(1, n + 1):
        for j in range(1, m + 1):
            for i in range(g - 1, j):
                c = cost[g - 1][i] + (size[j] - size[i]) * widths[j - 1]
                if c < cost[g][j]:
                    cost[g][j], cut[g][j] = c, i
    g = min(range(1, n + 1), key=lambda k: cost[k][m])
    bounds, j = [], m
    while j > 0:
        bounds.append((cut[g][j], j))
        j, g = cut[g][j], g - 1
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups = []
    for i, j in reversed(bounds):
        groups.append((order[size[i]:size[j]], widths[j - 1]))
    return groups


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
        from transformers import AutoModel, AutoModelForMaskedLM  # lazy: transformers


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
                mlm_positions: torch.Tensor | None = None,
                length_buckets: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (pooled [N, H], MLM logits [M, V] at the M true entries of ``mlm_positions`` [N, T], or None).

        The vocabulary projection runs only at those positions: at the paper's shape (~16k tokens, 250k
        vocabulary) logits for every token would take tens of GB. A model whose head cannot be told apart from
        its base model falls back to the full forward, then selects the same rows (always padded).
        ``length_buckets`` > 0: see :meth:`token_states`."""
        head = self.mlm_head() if mlm_positions is not None and self.with_mlm_head else None
        if mlm_positions is not None and self.with_mlm_head and head is None:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return pool(out.hidden_states[-1], attention_mask, self.pooling), out.logits[mlm_positions]
        hidden = self.token_states(input_ids, attention_mask, length_buckets)
        return pool(hidden, attention_mask, self.pooling), head(hidden[mlm_positions]) if head is not None else None

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     length_buckets: int = 0) -> torch.Tensor:
        """[N, T, H] last hidden states of the base model.

        ``length_buckets`` > 0: the N sentences run sorted by length in at most that many groups
        (:func:`length_groups`), each cut to its own longest sentence, so no layer works on the padding beyond
        it; their states come back in input order (padding positions hold no meaningful state, as when padded).
        Needs right padding (real tokens first: position ids then do not depend on the width); other masks run
        padded."""
        base = self.model.base_model
        lengths = attention_mask.sum(1)
        steps = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        if length_buckets <= 0 or not torch.equal(attention_mask.bool(), steps < lengths[:, None]):
            return base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        width = attention_mask.shape[1]
        # one word-embedding lookup for all: its backward writes a dense [vocabulary, H] gradient per call
        words = self.model.get_input_embeddings()(input_ids)
        parts, order = [], []
        for idx, longest in length_groups(lengths.tolist(), length_buckets):
            rows = torch.tensor(idx, device=input_ids.device)
            longest = max(longest, 1)
            out = base(inputs_embeds=words[rows, :longest], attention_mask=attention_mask[rows, :longest])
            parts.append(F.pad(out.last_hidden_state, (0, 0, 0, width - longest)))
            order.extend(idx)
        inverse = torch.empty(len(order), dtype=torch.long, device=input_ids.device)
        inverse[torch.tensor(order, device=input_ids.device)] = torch.arange(len(order), device=input_ids.device)
        return torch.cat(parts)[inverse]

    def save(self, out_dir: str | Path) -> None:
        self.model.save_pretrained(str(out_dir), safe_serialization=True)
        self.tokenizer.save_pretrained(str(out_dir))
