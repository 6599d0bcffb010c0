"""MSM model behaviour: masking, leakage, memory bank, learning, persistence, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from msm.config import ConfigError, config_from_dict
from msm.errors import MSMError
from msm.losses.memory_bank import LanguageMemoryBank
from msm.model.config import MSMModelConfig
from msm.model.msm import MSMModel


def test_every_sentence_predicted_exactly_once(tiny_cfg, batch):
    model = MSMModel.from_config(tiny_cfg)
    out = model(batch)
    pairs = [tuple(p) for p in out.positions.tolist()]
    real = [tuple(p) for p in batch["sentence_mask"].nonzero().tolist()]
    assert sorted(pairs) == sorted(real) and len(set(pairs)) == len(pairs)
    assert out.num_predictions == int(batch["sentence_mask"].sum())


def test_mask_ratio_predicts_a_subset_once(tiny_cfg, batch):
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mask_ratio=0.5))
    pairs = [tuple(p) for p in model(batch).positions.tolist()]
    per_doc = [sum(1 for d, _ in pairs if d == b) for b in range(3)]
    assert per_doc == [round(0.5 * n) for n in (5, 4, 6)] and len(set(pairs)) == len(pairs)


@pytest.mark.parametrize("doc_encoder", [True, False], ids=["document-encoder", "mean-ablation"])
def test_masked_position_cannot_see_its_own_sentence(tiny_cfg, batch, tokenizer, doc_encoder):
    """Replacing sentence (0, 2) leaves its own prediction unchanged; kills a context that includes the masked
    sentence (e.g. the ablation's ``total = sentences.sum(1)[doc_index]`` without subtracting it)."""
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, doc_encoder=doc_encoder)).eval()
    before = model(batch, update_memory=False)
    changed = {k: v.clone() for k, v in batch.items()}
    other = tokenizer(["Completely different words about astronomy."], truncation=True, max_length=12,
                      padding="max_length", return_tensors="pt")
    changed["input_ids"][0, 2] = other["input_ids"][0]
    changed["attention_mask"][0, 2] = other["attention_mask"][0]
    after = model(changed, update_memory=False)
    rows = [i for i, (d, s) in enumerate(before.positions.tolist()) if (d, s) == (0, 2)]
    assert torch.allclose(before.predictions[rows], after.predictions[rows], atol=1e-5)
    # ...while its target, and the predictions of its neighbours, do change
    neighbour = [i for i, (d, s) in enumerate(before.positions.tolist()) if (d, s) == (0, 3)]
    assert not torch.allclose(before.predictions[neighbour], after.predictions[neighbour], atol=1e-4)


def test_memory_bank_fifo_bound_and_language_filter():
    bank = LanguageMemoryBank(size=4, dim=2)
    for i in range(6):
        bank.enqueue(torch.tensor([[float(i), 0.0]]), torch.tensor([i % 2]))
    keys, langs = bank.ordered()
    assert keys[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0] and langs.tolist() == [0, 1, 0, 1]
    bank.enqueue(torch.tensor([[10.0, 0], [11.0, 0], [12.0, 0], [13.0, 0], [14.0, 0]]), torch.tensor([0] * 5))
    keys, _ = bank.ordered()
    assert keys[:, 0].tolist() == [11.0, 12.0, 13.0, 14.0]


def test_other_language_bank_entries_are_never_negatives(tiny_cfg, batch):
    from msm.losses.hierarchical_contrastive import hierarchical_contrastive_loss

    model = MSMModel.from_config(tiny_cfg).eval()
    out = model(batch, update_memory=False)
    docs, _ = out.positions.T
    key_doc = batch["sentence_mask"].nonzero()[:, 0]
    flat = torch.cumsum(batch["sentence_mask"].flatten().long(), 0) - 1
    positive = flat[out.positions[:, 0] * 6 + out.positions[:, 1]]
    q_lang = batch["lang"][docs]
    args = (out.predictions, out.targets, positive, docs, key_doc, 0.1, 0.5, q_lang)
    plain = hierarchical_contrastive_loss(*args).loss
    foreign = torch.nn.functional.normalize(torch.randn(20, out.targets.shape[1]), dim=-1)
    with_foreign = hierarchical_contrastive_loss(*args, foreign, torch.full((20,), 7)).loss
    assert torch.allclose(plain, with_foreign)
    own = hierarchical_contrastive_loss(*args, foreign, torch.zeros(20, dtype=torch.long)).loss
    assert own > plain


def test_training_updates_memory_bank_with_languages(tiny_cfg, batch):
    model = MSMModel.from_config(tiny_cfg)
    model(batch)
    _, langs = model.memory_bank.ordered()
    assert sorted(langs.tolist()) == sorted([0] * 5 + [1] * 4 + [2] * 6)


def test_gradients_reach_every_part(tiny_cfg, batch):
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mlm_weight=0.5))
    out = model(batch)
    out.loss.backward()
    parts = {"sentence_encoder": model.sentence_encoder, "document_encoder": model.document_encoder,
             "prediction_head": model.prediction_head, "target_head": model.target_head}
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert out.mlm_loss is not None and out.mlm_loss > 0


def test_masked_sentence_loss_alone_trains_the_sentence_encoder(tiny_cfg, batch):
    """With MLM on, the masked-sentence loss by itself, and each of its two sides (predictions via the document
    encoder, targets via the target head), still reach the sentence encoder. Kills ``vectors.detach()`` in
    ``MSMModel.forward`` (MLM alone would then feed the encoder, which the test above cannot tell apart)."""
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mlm_weight=0.5))
    out = model(batch)
    params = [p for p in model.sentence_encoder.parameters() if p.requires_grad]
    for name, value in (("doc_loss", out.doc_loss), ("predictions", out.predictions.sum()),
                        ("targets", out.targets.sum())):
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, name


def test_fifty_steps_halve_the_loss(tiny_cfg, batch):
    torch.manual_seed(0)
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, memory_bank_size=0))
    model.seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_save_load_round_trip_and_hf_folder(tiny_cfg, batch, tmp_path):
    from transformers import AutoModel

    model = MSMModel.from_config(tiny_cfg)
    model(batch)  # fills the memory bank and BatchNorm statistics
    model.save(tmp_path / "ckpt")
    loaded = MSMModel.load(tmp_path / "ckpt")
    model.eval(), loaded.eval()
    a, b = model(batch, update_memory=False), loaded(batch, update_memory=False)
    assert torch.equal(a.predictions, b.predictions) and torch.equal(a.targets, b.targets)
    assert torch.equal(a.loss, b.loss)
    hf = AutoModel.from_pretrained(tmp_path / "ckpt" / "encoder")
    assert hf.config.hidden_size == 32
    exported = model.export_encoder(tmp_path / "export")
    assert (exported / "msm_model.json").is_file() and (exported / "tokenizer.json").is_file()


def test_zero_sentence_document_is_a_clear_error(tiny_cfg, batch):
    batch["sentence_mask"][1] = False
    with pytest.raises(MSMError, match=r"document 1 has zero sentences \(sentence_mask all False\); drop empty "
                                       r"documents before batching \(the data pipeline quarantines them\)$"):
        MSMModel.from_config(tiny_cfg)(batch)


def test_from_config_resolves_the_configured_encoder(tiny_cfg, tiny_model_dir):
    asked = []
    model = MSMModel.from_config(tiny_cfg, resolver=lambda name: asked.append(name) or str(tiny_model_dir))
    assert asked == [tiny_cfg.encoder] and str(model.encoder_path) == str(tiny_model_dir)


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_masking_every_sentence_draws_nothing_from_the_generator(tiny_cfg, batch, ratio):
    """mask_ratio 1.0 predicts every sentence without a random draw (the seeded draws that follow, negatives and MLM
    tokens, stay those of the seed); a smaller ratio draws its subset from the generator."""
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, mask_ratio=ratio))
    model.seed(0)
    before = model.generator.get_state()
    docs, pos = model._choose_positions(batch["sentence_mask"].bool())
    assert torch.equal(model.generator.get_state(), before) == (ratio == 1.0)
    if ratio == 1.0:
        assert len(docs) == int(batch["sentence_mask"].sum())


def test_corrupt_or_missing_state_file(tiny_cfg, tmp_path):
    model = MSMModel.from_config(tiny_cfg)
    model.save(tmp_path / "ckpt")
    state = tmp_path / "ckpt" / "msm_state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(MSMError, match="corrupt safetensors file"):
        MSMModel.load(tmp_path / "ckpt")
    state.unlink()
    with pytest.raises(MSMError, match="msm_state.safetensors: missing"):
        MSMModel.load(tmp_path / "ckpt")


def test_bad_config_values_are_named():
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        config_from_dict({"temperature": 0}, MSMModelConfig, "cfg.yaml")
    with pytest.raises(ConfigError, match=r"cfg.yaml: memory_bank_size: expected int, got str"):
        config_from_dict({"memory_bank_size": "big"}, MSMModelConfig, "cfg.yaml")
    with pytest.raises(ConfigError, match=r"cfg.yaml: temprature: unknown key for MSMModelConfig"):
        config_from_dict({"temprature": 0.1}, MSMModelConfig, "cfg.yaml")


@pytest.mark.parametrize("short_docs", [False, True], ids=["4-6-sentences", "2-3-sentences"])
def test_no_document_encoder_ablation_runs(tiny_cfg, batch, batch_of, short_docs):
    """The ablation's context is the mean of the document's *other* sentence vectors (recomputed here from the
    sentence encoder): kills a leak of the masked sentence itself into its context, or a wrong denominator
    (a two-sentence document has one other sentence: ``clamp(min=2)`` would halve it)."""
    if short_docs:
        batch = batch_of([["The river rose.", "Schools closed."],
                          ["Le marché ouvre.", "Les prix ont baissé.", "Les clients sont contents."]], (0, 1))
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, doc_encoder=False))
    out = model(batch)
    out.loss.backward()
    assert model.document_encoder is None and torch.isfinite(out.loss)
    model.eval()
    out = model(batch, update_memory=False)
    smask = batch["sentence_mask"]
    with torch.no_grad():
        vectors, _ = model.sentence_encoder(batch["input_ids"][smask], batch["attention_mask"][smask])
        doc_of = smask.nonzero()[:, 0].tolist()
        rows = {tuple(p): i for i, p in enumerate(smask.nonzero().tolist())}
        context = torch.stack([
            torch.stack([vectors[j] for j, d2 in enumerate(doc_of) if d2 == d and j != rows[(d, s)]]).mean(0)
            for d, s in out.positions.tolist()])
        want = model.prediction_head(context)
    assert torch.allclose(out.predictions, want, atol=1e-5)


def test_loss_weights_mlm_only_ablation(tiny_cfg, batch):
    """loss = doc_weight · doc_loss + mlm_weight · mlm_loss; doc_weight 0 leaves only MLM, and nothing at all fails."""
    model = MSMModel.from_config(dataclasses.replace(tiny_cfg, doc_weight=0.0, mlm_weight=2.0))
    out = model(batch)
    assert out.loss.item() == pytest.approx(2.0 * out.mlm_loss.item(), rel=1e-6) and out.doc_loss.item() > 0
    with pytest.raises(ValueError, match="something must be trained"):
        dataclasses.replace(tiny_cfg, doc_weight=0.0, mlm_weight=0.0)
