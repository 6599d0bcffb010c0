"""Hierarchical contrastive loss of MSM (Zhu et al., ICLR 2023, Eq. 3-5; reference ``ContrastiveLossWithQueue``).

InfoNCE over, for each masked-sentence prediction q_i with target key k_i:
  * same-document negatives  k_j, j ≠ i in the same document,
  * other-document negatives k_j of other documents in the batch (optionally a random sample per query),
  * memory-bank negatives    m of the query's language (detached keys of earlier steps).
Balance correction (reference ``enable_balance``): the same-document negative logits are lowered by
``bias × (mean same-doc negative logit − mean other-doc negative logit)`` (detached), so the many easy
other-document negatives do not drown the hard in-document ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ContrastiveResult:
    loss: torch.Tensor
    acc_same_doc: torch.Tensor  # argmax over {positive} ∪ same-doc keys hits the positive
    acc_other_doc: torch.Tensor  # argmax over {positive} ∪ other-doc keys hits the positive


def hierarchical_contrastive_loss(
    queries: torch.Tensor,
    keys: torch.Tensor,
    positive: torch.Tensor,
    query_doc: torch.Tensor,
    key_doc: torch.Tensor,
    temperature: float = 0.1,
    balance_bias: float = 0.5,
    query_lang: torch.Tensor | None = None,
    bank_keys: torch.Tensor | None = None,
    bank_langs: torch.Tensor | None = None,
    cross_doc_keep: torch.Tensor | None = None,
) -> ContrastiveResult:
    """queries [Q, D] and keys [K, D] (L2-normalised); ``positive`` [Q] indexes each query's key.

    ``query_doc`` [Q] / ``key_doc`` [K] are document ids; ``cross_doc_keep`` [Q, K] (bool) selects which
    other-document keys a query uses (None: all). Bank keys [M, D] count for queries of the same language.
    """
    q = queries.shape[0]
    rows = torch.arange(q, device=queries.device)
    logits = _at_least_fp32(queries @ keys.T) / temperature  # [Q, K]
    is_pos = torch.zeros_like(logits, dtype=torch.bool)
    is_pos[rows, positive] = True
    same_doc = (query_doc[:, None] == key_doc[None, :]) & ~is_pos
    other_doc = query_doc[:, None] != key_doc[None, :]
    used_other = other_doc if cross_doc_keep is None else other_doc & cross_doc_keep

    if balance_bias:
        with torch.no_grad():
            n_same = same_doc.sum(1)
            n_other = used_other.sum(1)
            mean_same = (logits * same_doc).sum(1) / n_same.clamp(min=1)
            mean_other = (logits * used_other).sum(1) / n_other.clamp(min=1)
            shift = torch.where((n_same > 0) & (n_other > 0), balance_bias * (mean_same - mean_other), 0.0)
        logits = logits - shift[:, None] * same_doc

    neg_inf = torch.finfo(logits.dtype).min
    batch_logits = logits.masked_fill(~(is_pos | same_doc | used_other), neg_inf)
    parts = [batch_logits]
    if bank_keys is not None and bank_keys.shape[0] > 0:
        bank_logits = _at_least_fp32(queries @ bank_keys.T) / temperature
        bank_logits = bank_logits.masked_fill(query_lang[:, None] != bank_langs[None, :], neg_inf)
        parts.append(bank_logits)
    all_logits = torch.cat(parts, dim=1)
    loss = F.cross_entropy(all_logits, positive)

    with torch.no_grad():
        raw = queries @ keys.T
        pos_score = raw[rows, positive]
        best_same = raw.masked_fill(~same_doc, float("-inf")).max(1).values
        best_other = raw.masked_fill(~other_doc, float("-inf")).max(1).values
        acc_same = (pos_score > best_same).float().mean()
        acc_other = (pos_score > best_other).float().mean()
    return ContrastiveResult(loss=loss, acc_same_doc=acc_same, acc_other_doc=acc_other)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Logits in fp32 under bf16/fp16 autocast: the masking value and the balance shift need its range."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
