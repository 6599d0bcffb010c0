"""Length-bucketed sentence encoding (``model.length_buckets``): the padded path's loss and gradients, less work."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import random

import pytest
import torch

from msm.model.msm import MSMModel
from msm.model.sentence_encoder import length_groups


def brute_force_cost(lengths: list[int], n: int) -> int:
    """Fewest padded tokens over every split of the sorted lengths into at most n consecutive groups."""
    ordered = sorted(lengths)
    best = len(ordered) * ordered[-1]
    for k in range(1, min(n, len(ordered))):
        for cuts in itertools.combinations(range(1, len(ordered)), k):
            bounds = (0, *cuts, len(ordered))
            best = min(best, sum((b - a) * ordered[b - 1] for a, b in zip(bounds, bounds[1:])))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_length_groups_are_a_minimal_cost_partition(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(2, 20) for _ in range(rng.randint(1, 9))]
    n = rng.randint(1, 4)
    groups = length_groups(lengths, n)
    assert len(groups) <= n
    assert sorted(i for idx, _ in groups for i in idx) == list(range(len(lengths)))
    assert all(width == max(lengths[i] for i in idx) for idx, width in groups)
    assert sum(len(idx) * width for idx, width in groups) == brute_force_cost(lengths, n)


def _no_dropout(model: MSMModel) -> MSMModel:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


@pytest.mark.parametrize("mlm_weight", [0.0, 0.5], ids=["msm", "msm+mlm"])
def test_buckets_give_the_padded_loss_and_gradients(tiny_cfg, uneven_batch, mlm_weight):
    """Two training steps from the same state, generator and memory bank: every loss term and every
    parameter's gradient of the bucketed path equal the path that pads each sentence to T (fp32, 1e-5 of each tensor's scale)."""
    cfg = dataclasses.replace(tiny_cfg, max_tokens=40, mlm_weight=mlm_weight, mlm_probability=0.3, mask_ratio=0.6,
                              num_cross_doc_negatives=4, length_buckets=0)
    padded = _no_dropout(MSMModel.from_config(cfg)).train()
    bucketed = copy.deepcopy(padded)
    bucketed.cfg = dataclasses.replace(cfg, length_buckets=3)
    widths = []
    bucketed.sentence_encoder.model.base_model.register_forward_hook(
        lambda _m, _a, kw, _o: widths.append(kw["inputs_embeds"].shape[1]), with_kwargs=True)
    for step in range(2):  # the second step scores against the memory bank filled by the first
        for model in (padded, bucketed):
            model.seed(step)
            model.zero_grad(set_to_none=True)
        ref, out = padded(uneven_batch), bucketed(uneven_batch)
        ref.loss.backward()
        out.loss.backward()
        for name in ("loss", "doc_loss", "mlm_loss", "predictions", "targets", "positions"):
            a, b = getattr(ref, name), getattr(out, name)
            assert (a is None) == (b is None) == (name == "mlm_loss" and not mlm_weight), name
            if a is not None:
                assert torch.allclose(a.float(), b.float(), atol=1e-5, rtol=0), name
        grads = {n: p.grad for n, p in bucketed.named_parameters()}
        for name, p in padded.named_parameters():
            if p.grad is None:
                assert grads[name] is None or not grads[name].any(), name
            else:
                # a gradient sums many positions in another order per path: fp32 rounding scales with the
                # tensor, not with each element (observed max 3e-5 on gradients of size 5-25, one thread)
                scale = max(1.0, p.grad.abs().max().item())
                assert torch.allclose(p.grad, grads[name], atol=1e-5 * scale, rtol=1e-4), name
    assert len(padded.memory_bank.ordered()[0]) > 0
    lengths = uneven_batch["attention_mask"][uneven_batch["sentence_mask"]].sum(1)
    assert len(widths) == 2 * 3 and min(widths) < 8 and max(widths) == int(lengths.max())


def test_left_padding_runs_padded(tiny_cfg, batch):
    """A mask that is not right-padded cannot be cut per group: the encoder runs it at full width."""
    model = MSMModel.from_config(tiny_cfg).eval()
    ids, mask = batch["input_ids"][batch["sentence_mask"]], batch["attention_mask"][batch["sentence_mask"]]
    flipped_ids, flipped_mask = ids.flip(1), mask.flip(1)
    widths = []
    model.sentence_encoder.model.base_model.register_forward_hook(
        lambda _m, _a, kw, _o: widths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    with torch.no_grad():
        states = model.sentence_encoder.token_states(flipped_ids, flipped_mask, length_buckets=3)
        ref = model.sentence_encoder.token_states(flipped_ids, flipped_mask, length_buckets=0)
    assert widths == [ids.shape[1]] * 2 and torch.equal(states, ref)
