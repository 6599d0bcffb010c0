"""DocumentEncoder against a per-query reference written from its definition (mask the predicted position, add
sentence-position embeddings, BERT LayerNorm, a Transformer over the document's real sentences only)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from msm.model.document_encoder import DocumentEncoder


def reference(enc: DocumentEncoder, sentences, mask, doc_index, position) -> torch.Tensor:
    """One query at a time; padded sentences are dropped instead of masked."""
    out = []
    for d, p in zip(doc_index.tolist(), position.tolist()):
        real = mask[d].nonzero().flatten().tolist()
        seq = torch.stack([enc.mask_embedding if s == p else sentences[d, s] for s in real])
        seq = seq + enc.position_embeddings.weight[real]
        seq = F.layer_norm(seq, seq.shape[-1:], enc.layer_norm.weight, enc.layer_norm.bias, eps=1e-12)  # BERT's eps
        out.append(enc.layers(seq[None])[0, real.index(p)])
    return torch.stack(out)


def case(seed: int = 0, hidden: int = 16):
    torch.manual_seed(seed)
    enc = DocumentEncoder(hidden, layers=2, heads=2, ffn=24, max_sentences=6, dropout=0.0).eval()
    sentences = torch.randn(3, 6, hidden)  # padded slots hold noise: they must not matter
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], dtype=torch.bool)
    doc_index = torch.tensor([0, 0, 1, 2, 2, 1])
    position = torch.tensor([0, 3, 5, 2, 5, 1])
    return enc, sentences, mask, doc_index, position


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_per_query_reference(seed):
    enc, sentences, mask, doc_index, position = case(seed)
    with torch.no_grad():
        got = enc(sentences, mask, doc_index, position)
        want = reference(enc, sentences, mask, doc_index, position)
    assert got.shape == (6, 16)
    assert torch.allclose(got, want, atol=1e-5)


def test_output_ignores_the_predicted_sentence_and_padding_but_not_the_others():
    enc, sentences, mask, doc_index, position = case()
    with torch.no_grad():
        base = enc(sentences, mask, doc_index, position)
        changed = sentences.clone()
        changed[0, 0] = torch.randn(16)  # predicted by query 0 only
        changed[0, 4:] = 7.0  # padding of document 0
        out = enc(changed, mask, doc_index, position)
    assert torch.allclose(out[0], base[0], atol=1e-6)
    assert not torch.allclose(out[1], base[1], atol=1e-3)  # query 1 (same document) sees sentence 0
    assert torch.allclose(out[2:], base[2:], atol=1e-6)  # other documents are unaffected


def test_sentence_order_matters():
    enc, sentences, mask, doc_index, position = case()
    swapped = sentences.clone()
    swapped[1, [1, 2]] = swapped[1, [2, 1]]
    with torch.no_grad():
        a = enc(sentences, mask, doc_index[2:3], position[2:3])
        b = enc(swapped, mask, doc_index[2:3], position[2:3])
    assert not torch.allclose(a, b, atol=1e-4)


def test_default_sizes_follow_bert():
    """Heads of size 64 (at least one), FFN 4 x hidden, embeddings initialised with std 0.02, dropout 0.1."""
    torch.manual_seed(0)
    big = DocumentEncoder(512)
    layer = big.layers.layers[0]
    assert layer.self_attn.num_heads == 8 and layer.linear1.out_features == 4 * 512
    assert len(big.layers.layers) == 2 and big.position_embeddings.num_embeddings == 32
    assert big.mask_embedding.std().item() == pytest.approx(0.02, rel=0.15)
    assert big.position_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert big.dropout.p == 0.1 and layer.dropout.p == 0.1
    assert DocumentEncoder(32).layers.layers[0].self_attn.num_heads == 1
    small = DocumentEncoder(64, heads=4, ffn=40, layers=1, max_sentences=3, dropout=0.2)
    assert small.layers.layers[0].self_attn.num_heads == 4 and small.layers.layers[0].linear1.out_features == 40
    assert small.dropout.p == 0.2 and small.layers.layers[0].dropout.p == 0.2
    out = small.eval()(torch.randn(1, 3, 64), torch.ones(1, 3, dtype=torch.bool), torch.tensor([0]), torch.tensor([1]))
    assert out.shape == (1, 64)


def test_heads_are_an_integer_count_of_64_wide_heads():
    """Default heads: hidden // 64, at least one (96 -> 1, 128 -> 2); BERT's GELU feed-forward."""
    for hidden, heads in ((96, 1), (128, 2), (32, 1)):
        enc = DocumentEncoder(hidden)
        attn = enc.layers.layers[0].self_attn
        assert attn.num_heads == heads and isinstance(attn.num_heads, int) and attn.head_dim == hidden // heads
    assert all(layer.activation is F.gelu for layer in DocumentEncoder(64).layers.layers)


def test_runs_where_its_inputs_live():
    """Every tensor forward makes is on the inputs' device: on the meta device (shapes only, no data) a tensor
    left on the CPU fails the masking step, as it would on a GPU."""
    enc = DocumentEncoder(16, layers=1, heads=2, max_sentences=6).to("meta").eval()
    sentences = torch.zeros(2, 5, 16, device="meta")
    mask = torch.ones(2, 5, dtype=torch.bool, device="meta")
    out = enc(sentences, mask, torch.tensor([0, 1], device="meta"), torch.tensor([1, 3], device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 16)
