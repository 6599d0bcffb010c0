"""Linear warm-up then polynomial decay to zero (fairseq ``polynomial_decay``, the reference schedule)."""

from __future__ import annotations


def lr_factor(step: int, warmup: int, total: int, power: float = 1.0) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if step >= total:
        return 0.0
    return ((total - step) / max(1, total - warmup)) ** power
