"""msm.losses.mlm against the BERT recipe (Devlin et al., 2019) on large random inputs and a hand-written loss."""

from __future__ import annotations

import pytest
import torch

from msm.losses.mlm import mask_tokens, mlm_loss

MASK, VOCAB = 3, 1000


def corrupt(probability: float, shape=(400, 50), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, VOCAB, shape, generator=g)
    attention = torch.ones(shape, dtype=torch.long)
    attention[:, -10:] = 0  # padding
    special = torch.zeros(shape, dtype=torch.bool)
    special[:, 0] = True  # e.g. <s>
    out, labels = mask_tokens(ids, attention, special, MASK, VOCAB, probability, torch.Generator().manual_seed(seed))
    return ids, attention, special, out, labels


def test_fifteen_percent_of_real_tokens_split_80_10_10():
    ids, attention, special, out, labels = corrupt(0.15)
    candidates = attention.bool() & ~special
    chosen = labels != -100
    assert not (chosen & ~candidates).any()  # never padding or special tokens
    assert torch.equal(labels[chosen], ids[chosen])  # labels are the original ids
    assert torch.equal(out[~chosen], ids[~chosen])  # unchosen tokens untouched
    share = chosen.sum().item() / candidates.sum().item()
    assert share == pytest.approx(0.15, abs=0.01)
    n = chosen.sum().item()
    masked = (out[chosen] == MASK).sum().item() / n
    kept = (out[chosen] == ids[chosen]).sum().item() / n
    random = 1 - masked - kept
    assert masked == pytest.approx(0.8, abs=0.02)
    assert kept == pytest.approx(0.1, abs=0.02)  # 10% kept (+ random draws that hit the same id: ~0.01%)
    assert random == pytest.approx(0.1, abs=0.02)
    replaced = chosen & (out != MASK) & (out != ids)
    assert ((out[replaced] >= 0) & (out[replaced] < VOCAB)).all()
    assert len(torch.unique(out[replaced])) > 100  # spread over the vocabulary, not one id


def test_probability_is_the_share_and_is_reproducible():
    assert (corrupt(0.5)[4] != -100).float().mean().item() == pytest.approx(0.5 * 39 / 50, abs=0.01)
    assert (corrupt(0.0)[4] == -100).all()
    a, b = corrupt(0.15, seed=1), corrupt(0.15, seed=1)
    assert torch.equal(a[3], b[3]) and torch.equal(a[4], b[4])


def test_loss_is_mean_cross_entropy_over_masked_tokens():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 7, generator=g)
    labels = torch.tensor([[-100, 3, -100, 0], [6, -100, -100, -100]])
    picked = [(0, 1, 3), (0, 3, 0), (1, 0, 6)]
    expected = sum(-torch.log_softmax(logits[b, t], -1)[c] for b, t, c in picked) / 3
    assert mlm_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert mlm_loss(logits.bfloat16(), labels).dtype == torch.float32  # computed in fp32 under bf16
    assert mlm_loss(logits, torch.full((2, 4), -100)) is None


def test_draws_come_from_the_cpu_generator_wherever_the_tensors_live():
    """The random numbers are drawn on the CPU (where the seeded generator lives) and moved to the inputs' device:
    with another default device (``meta`` stands in for a GPU) the draws, and so the corruption, are unchanged;
    with inputs on that device every output lands there too (a tensor left on the CPU cannot be combined)."""
    ids, attention, special, out, labels = corrupt(0.15)
    with torch.device("meta"):
        got = mask_tokens(ids, attention, special, MASK, VOCAB, 0.15, torch.Generator(device="cpu").manual_seed(0))
    assert torch.equal(got[0], out) and torch.equal(got[1], labels)
    on_meta = [t.to("meta") for t in (ids, attention, special)]
    for t in mask_tokens(*on_meta, MASK, VOCAB, 0.15, torch.Generator().manual_seed(0)):
        assert t.device.type == "meta" and t.shape == ids.shape and t.dtype == ids.dtype
