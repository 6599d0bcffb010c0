"""``MSMModel`` wiring, checked against references built in the test: which keys are positives, which loss
settings and memory-bank keys reach the loss, which cross-document negatives are kept, how the total loss is
weighted, when the bank is written, and what the config sets up. Written to kill the mutants of
``model/msm.py`` that the behaviour tests in ``test_msm.py`` let through (``make mutation``, docs/testing.md)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import msm.model.msm as msm_module
from msm.errors import MSMError
from msm.losses.hierarchical_contrastive import hierarchical_contrastive_loss
from msm.model.msm import MSMModel


def _real_sentences(sentence_mask: torch.Tensor) -> list[tuple[int, int]]:
    """(document, position) of every real sentence, in the order the model flattens them (row-major)."""
    return [(d, s) for d in range(sentence_mask.shape[0]) for s in range(sentence_mask.shape[1])
            if bool(sentence_mask[d, s])]


def _key_doc(sentence_mask: torch.Tensor) -> torch.Tensor:
    """The document of every real sentence (= of every target key), in the same order."""
    return torch.tensor([d for d, _ in _real_sentences(sentence_mask)])


def _special(ids: torch.Tensor, tokenizer) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(sorted(set(tokenizer.all_special_ids))))


def _reference_loss(out, batch, cfg, bank=None, keep=None):
    """The hierarchical contrastive loss of the model's own predictions and targets, with the positives, documents
    and languages derived here from the batch (not from the model's index arithmetic)."""
    real = _real_sentences(batch["sentence_mask"])
    row_of = {p: i for i, p in enumerate(real)}
    positions = [tuple(p) for p in out.positions.tolist()]
    positive = torch.tensor([row_of[p] for p in positions])
    query_doc = torch.tensor([d for d, _ in positions])
    key_doc = _key_doc(batch["sentence_mask"])
    bank_keys, bank_langs = bank if bank is not None else (None, None)
    return hierarchical_contrastive_loss(
        out.predictions, out.targets, positive, query_doc, key_doc, temperature=cfg.temperature,
        balance_bias=cfg.balance_bias, query_lang=batch["lang"][query_doc], bank_keys=bank_keys,
        bank_langs=bank_langs, cross_doc_keep=keep)


@pytest.mark.parametrize("mask_ratio", [1.0, 0.5], ids=["every-sentence", "half"])
def test_doc_loss_is_the_contrastive_loss_of_its_outputs_with_the_bank(tiny_cfg, batch, mask_ratio):
    """Non-default temperature, balance bias and doc weight; the second step's loss must use the bank as it was
    before the step, and the step then appends its own targets and languages to the bank."""
    cfg = dataclasses.replace(tiny_cfg, temperature=0.07, balance_bias=0.3, doc_weight=1.5, mask_ratio=mask_ratio)
    model = MSMModel.from_config(cfg)
    model(batch)  # fills the bank with this batch's 15 targets
    bank = tuple(t.clone() for t in model.memory_bank.ordered())
    assert bank[0].shape[0] == 15
    out = model(batch)
    ref = _reference_loss(out, batch, cfg, bank=bank)
    assert out.doc_loss.item() == pytest.approx(ref.loss.item(), rel=1e-6)
    no_bank = _reference_loss(out, batch, cfg)
    assert abs(no_bank.loss.item() - ref.loss.item()) > 1e-4  # the bank matters to this loss
    assert torch.equal(out.acc_same_doc, ref.acc_same_doc) and torch.equal(out.acc_other_doc, ref.acc_other_doc)
    assert out.loss.item() == pytest.approx(1.5 * out.doc_loss.item(), rel=1e-6)  # mlm_weight 0: nothing added
    keys, langs = model.memory_bank.ordered()
    key_doc = _key_doc(batch["sentence_mask"])
    assert torch.allclose(keys[-15:], out.targets.detach()) and torch.equal(langs[-15:], batch["lang"][key_doc])


def test_without_a_bank_the_loss_has_no_bank_keys(tiny_cfg, batch):
    cfg = dataclasses.replace(tiny_cfg, memory_bank_size=0, temperature=0.2)
    model = MSMModel.from_config(cfg)
    model(batch)
    out = model(batch)
    assert out.doc_loss.item() == pytest.approx(_reference_loss(out, batch, cfg).loss.item(), rel=1e-6)


def test_total_loss_adds_the_weighted_mlm_loss(tiny_cfg, batch):
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, doc_weight=1.5, mlm_weight=0.25))
    out = model(batch)
    assert out.loss.item() == pytest.approx(1.5 * out.doc_loss.item() + 0.25 * out.mlm_loss.item(), rel=1e-6)


@pytest.fixture()
def recorded_keep(monkeypatch):
    """The ``cross_doc_keep`` each forward passes to the loss (the real loss still runs)."""
    calls: list = []

    def recording(*args, **kwargs):
        calls.append(kwargs.get("cross_doc_keep"))
        return hierarchical_contrastive_loss(*args, **kwargs)

    monkeypatch.setattr(msm_module, "hierarchical_contrastive_loss", recording)
    return calls


@pytest.mark.parametrize("k", [3, 100])
def test_cross_doc_negatives_are_k_random_other_document_sentences(tiny_cfg, batch, recorded_keep, k):
    cfg = dataclasses.replace(tiny_cfg, num_cross_doc_negatives=k, memory_bank_size=0)
    model = MSMModel.from_config(cfg)
    model.seed(5)
    out = model(batch)
    keep = recorded_keep[-1]
    key_doc = _key_doc(batch["sentence_mask"])
    query_doc = out.positions[:, 0]
    other = query_doc[:, None] != key_doc[None, :]  # [Q, K]
    assert keep is not None and keep.shape == other.shape and keep.dtype == torch.bool
    assert not (keep & ~other).any(), "a kept cross-document negative is in the query's own document"
    assert keep.sum(1).tolist() == [min(k, n) for n in other.sum(1).tolist()]
    assert out.doc_loss.item() == pytest.approx(_reference_loss(out, batch, cfg, keep=keep).loss.item(), rel=1e-6)
    if k == 3:  # a random subset: queries of one document do not all keep the same three
        rows = keep[query_doc == 0]
        assert len({tuple(r.tolist()) for r in rows}) > 1
        assert abs(_reference_loss(out, batch, cfg).loss.item() - out.doc_loss.item()) > 1e-4
        # the model's own generator draws them: the same seed gives the same subset whatever the global RNG did
        torch.manual_seed(1234)
        torch.rand(100)
        model.seed(5)
        model(batch)
        assert torch.equal(recorded_keep[-1], keep)


def test_mask_ratio_predicts_at_least_one_sentence_per_document(tiny_cfg, batch):
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mask_ratio=0.05))
    docs = model(batch).positions[:, 0].tolist()
    assert [docs.count(b) for b in range(3)] == [1, 1, 1]


def test_a_fresh_model_samples_as_seed_zero(tiny_cfg, batch):
    cfg = dataclasses.replace(tiny_cfg, mask_ratio=0.5)
    fresh = MSMModel.from_config(cfg)(batch).positions
    seeded = MSMModel.from_config(cfg)
    seeded.seed(1)
    seeded(batch)
    seeded.seed(0)
    assert torch.equal(fresh, seeded(batch).positions)


def test_too_many_sentences_names_the_limit_and_the_fix(tiny_cfg, batch):
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, max_sentences=5))
    with pytest.raises(MSMError, match=r"batch has 6 sentences per document, model max_sentences is 5; cut blocks"):
        model(batch)


def test_mlm_tokens_come_from_the_model_generator(tiny_cfg, batch):
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mlm_weight=1.0, memory_bank_size=0))
    model.seed(3)
    first = model(batch).mlm_loss.item()
    torch.manual_seed(4321)
    torch.rand(1000)
    model.seed(3)
    assert model(batch).mlm_loss.item() == first


@pytest.fixture()
def encoder_calls(monkeypatch):
    """The (mlm_positions, length_buckets) arguments of each sentence-encoder call."""
    calls: list = []
    real = msm_module.SentenceEncoder.forward

    def recording(self, input_ids, attention_mask, mlm_positions=None, length_buckets=0):
        calls.append((input_ids, attention_mask, mlm_positions, length_buckets))
        return real(self, input_ids, attention_mask, mlm_positions, length_buckets)

    monkeypatch.setattr(msm_module.SentenceEncoder, "forward", recording)
    return calls


def test_mlm_logits_only_at_corrupted_tokens_and_only_in_training(tiny_cfg, batch, encoder_calls):
    """The vocabulary projection runs at the masked tokens only (never at padding or special tokens), with the
    configured length buckets; in eval mode MLM is off and no positions are passed."""
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mlm_weight=1.0, mlm_probability=0.5,
                                                     length_buckets=3))
    tok = model.sentence_encoder.tokenizer
    model(batch)
    _, attention, positions, buckets = encoder_calls[-1]
    smask = batch["sentence_mask"]
    original = batch["input_ids"][smask]
    special = _special(original, tok)
    assert buckets == 3 and positions.dtype == torch.bool and positions.any()
    assert not (positions & (special | ~attention.bool())).any()
    candidates = int((~special & attention.bool()).sum())
    assert 0.3 < int(positions.sum()) / candidates < 0.7  # about mlm_probability of the candidates
    model.eval()
    out = model(batch, update_memory=False)
    assert encoder_calls[-1][2] is None and out.mlm_loss is None


def test_mlm_loss_counts_a_masked_token_whose_id_is_100(tiny_cfg, tokenizer, batch_of):
    """Labels of the masked tokens are their ids, so ``labels != -100`` (not any other constant) marks them; here
    every real token is id 100 and all are masked."""
    batch = batch_of([["a b c", "d e f"], ["g h i", "j k l"]], (0, 1))
    special = _special(batch["input_ids"], tokenizer)
    batch["input_ids"][~special] = 100
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mlm_weight=1.0, mlm_probability=0.999))
    out = model(batch)
    assert out.mlm_loss is not None and torch.isfinite(out.mlm_loss) and out.mlm_loss.item() > 0


@pytest.mark.parametrize("training, update_memory, written", [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True)])
def test_memory_bank_is_written_in_training_unless_told_otherwise(tiny_cfg, batch, training, update_memory, written):
    model = MSMModel.from_config(tiny_cfg).train(training)
    model(batch, update_memory=update_memory)
    assert (model.memory_bank.ordered()[0].shape[0] == 15) is written


def test_config_reaches_the_encoders(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, pooling="cls", doc_heads=4, doc_ffn=40, dropout=0.05)
    model = MSMModel.from_config(cfg)
    assert model.sentence_encoder.pooling == "cls" and not model.sentence_encoder.with_mlm_head
    layer = model.document_encoder.layers.layers[0]
    assert layer.self_attn.num_heads == 4 and layer.linear1.out_features == 40 and layer.dropout.p == 0.05
    assert model.document_encoder.dropout.p == 0.05
    assert MSMModel.from_config(dataclasses.replace(cfg, mlm_weight=0.1)).sentence_encoder.with_mlm_head
