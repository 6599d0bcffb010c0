"""Document encoder: a small Transformer over the sequence of sentence vectors of one document.

Every masked copy of a document is built in the document encoder only (sentences are encoded once):
for Q predicted positions the input is [Q, S, H] — the document's sentence vectors with the predicted
position replaced by a learned mask embedding, plus learned sentence-position embeddings.
"""

from __future__ import annotations

import torch
from torch import nn


class DocumentEncoder(nn.Module):
    def __init__(self, hidden: int, layers: int = 2, heads: int | None = None, ffn: int | None = None,
                 max_sentences: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        heads = heads or max(1, hidden // 64)
        self.mask_embedding = nn.Parameter(torch.randn(hidden) * 0.02)
        self.position_embeddings = nn.Embedding(max_sentences, hidden)
        nn.init.normal_(self.position_embeddings.weight, std=0.02)
        self.layer_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(hidden, heads, ffn or 4 * hidden, dropout=dropout, activation="gelu",
                                           batch_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, sentences: torch.Tensor, sentence_mask: torch.Tensor, doc_index: torch.Tensor,
                position: torch.Tensor) -> torch.Tensor:
        """Predict the vector at ``position`` of document ``doc_index`` from its unmasked neighbours.

        sentences [B, S, H], sentence_mask [B, S] (True = real sentence), doc_index/position [Q] → [Q, H].
        """
        q = doc_index.shape[0]
        x = sentences[doc_index]  # [Q, S, H]
        hit = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        hit[torch.arange(q, device=x.device), position] = True
        x = torch.where(hit.unsqueeze(-1), self.mask_embedding.to(x.dtype), x)
        positions = torch.arange(x.shape[1], device=x.device)
        x = self.dropout(self.layer_norm(x + self.position_embeddings(positions)))
        out = self.layers(x, src_key_padding_mask=~sentence_mask[doc_index])
        return out[torch.arange(q, device=x.device), position]
