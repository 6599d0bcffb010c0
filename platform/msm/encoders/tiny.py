"""Tiny random encoders with the real XLM-R tokenizer, for tests and CPU demos of the mechanics."""

from __future__ import annotations

from pathlib import Path

from msm.encoders.tokenizer import write_tokenizer
from msm.io import atomic_dir

XLMR_VOCAB_SIZE = 250002


def build_tiny_model(
    out_dir: str | Path,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_position_embeddings: int = 130,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a randomly initialised XLM-R-architecture encoder + tokenizer as an HF folder.

    Idempotent: an existing complete folder is returned as is unless ``overwrite``.
    """
    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file() and not overwrite:
        return out_dir
    import torch  # lazy: torch
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM  # lazy: transformers

    with atomic_dir(out_dir, overwrite=True) as tmp:
        torch.manual_seed(seed)
        config = XLMRobertaConfig(
            vocab_size=XLMR_VOCAB_SIZE,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_position_embeddings,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
        )
        model = XLMRobertaForMaskedLM(config)
        model.save_pretrained(tmp, safe_serialization=True)
        write_tokenizer(tmp, model_max_length=max_position_embeddings - 2)
    return out_dir
