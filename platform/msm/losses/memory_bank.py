"""Language-specific memory bank of detached keys (reference: MSM's ``EmbeddingQueue`` with queue ids).

One FIFO ring of ``size`` keys, each tagged with its language; a query only sees keys of its own language.
Empty slots carry language -1 and are never used.

**Data-parallel training.** When ``torch.distributed`` is initialised with a world size > 1, :meth:`enqueue` is a
collective: every rank all-gathers the (keys, languages) of every rank and writes them in rank order (rank 0's
first), so all ranks hold the same bank, filled from the whole global batch, as the reference does
(``MultiTaskGather.gather`` → ``EmbeddingQueue.push``). Ranks may contribute different numbers of keys (documents
have different sentence counts): the counts are gathered first and the rows padded to the largest. Every rank
must therefore call ``enqueue`` the same number of times (it does: once per training forward). Because the banks
are kept identical by the gather, DDP must not broadcast them (``broadcast_buffers=False``, see
``msm.train.loop.DDP_KWARGS``): broadcasting would be redundant at best.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def all_gather_rows(keys: torch.Tensor, langs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys [n_r, D], langs [n_r]) of every rank r, concatenated in rank order; ``n_r`` may differ per rank.

    Two collectives: the counts, then keys and languages packed into one float tensor (language ids are small
    integers, exact in float32) padded to the largest count. Identity without an initialised process group."""
    world = _world_size()
    if world == 1:
        return keys, langs

    n = torch.tensor([keys.shape[0]], dtype=torch.long, device=keys.device)
    counts = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(counts, n)
    counts = [int(c) for c in counts]
    rows = max(counts)
    packed = keys.new_zeros((rows, keys.shape[1] + 1), dtype=torch.float32)
    packed[: keys.shape[0], :-1] = keys.float()
    packed[: keys.shape[0], -1] = langs.to(packed.device, torch.float32)
    gathered = [torch.empty_like(packed) for _ in range(world)]
    dist.all_gather(gathered, packed)
    out = torch.cat([g[:c] for g, c in zip(gathered, counts)])
    return out[:, :-1].to(keys.dtype), out[:, -1].round().long().to(langs.device)


class LanguageMemoryBank(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("langs", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, langs: torch.Tensor) -> None:
        """Write keys at the ring pointer, overwriting the oldest entries; only the newest ``size`` are kept.

        Under ``torch.distributed`` (world size > 1) the keys of all ranks are gathered first (a collective:
        every rank must call this, even with no keys) and written in rank order."""
        if self.size == 0:
            return
        keys, langs = all_gather_rows(keys.detach().to(self.keys.dtype), langs.to(self.langs.device))
        if keys.shape[0] == 0:
            return
        keys, langs = keys[-self.size:], langs[-self.size:]
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
