"""Language-specific memory bank of detached keys (reference: MSM's ``EmbeddingQueue`` with queue ids).

One FIFO ring of ``size`` keys, each tagged with its language; a query only sees keys of its own language.
Empty slots carry language -1 and are never used.
"""

from __future__ import annotations

import torch
from torch import nn


class LanguageMemoryBank(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("langs", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, langs: torch.Tensor) -> None:
        """Write keys at the ring pointer, overwriting the oldest entries; only the newest ``size`` are kept."""
        if self.size == 0 or keys.shape[0] == 0:
            return
        keys, langs = keys.detach()[-self.size:], langs[-self.size:]
        n = keys.shape[0]
        idx = (self.ptr + torch.arange(n, device=keys.device)) % self.size
        self.keys[idx] = keys.to(self.keys.dtype)
        self.langs[idx] = langs.to(self.langs.device)
        self.ptr.copy_((self.ptr + n) % self.size)

    def ordered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and languages from oldest to newest (filled slots only)."""
        order = (self.ptr + torch.arange(self.size, device=self.keys.device)) % self.size
        keys, langs = self.keys[order], self.langs[order]
        filled = langs >= 0
        return keys[filled], langs[filled]
