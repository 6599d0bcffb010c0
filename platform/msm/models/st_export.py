"""Export an encoder folder as a sentence-transformers model (Transformer → Pooling → Normalize).

Written in the classic layout every sentence-transformers release reads (``modules.json`` with
``sentence_transformers.models.*`` types, ``0_Transformer/``, ``1_Pooling/``, ``2_Normalize/``), so the export
needs no sentence-transformers install and the folder loads with ``SentenceTransformer(out_dir)``.
Prefixes from ``msm_model.json`` become prompts (``encode(texts, prompt_name="query")``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from msm.errors import MSMError
from msm.io import atomic_dir
from msm.models.resolve import read_model_meta, resolve_model

log = logging.getLogger(__name__)
POOLING_MODES = ("mean", "cls")
_SKIP = {"msm_model.json"}  # MSM metadata: carried over as prompts/pooling instead


def _max_seq_length(hf_dir: Path) -> int:
    config = json.loads((hf_dir / "config.json").read_text())
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in ("xlm-roberta", "roberta"):
        limit -= config.get("pad_token_id", 1) + 1  # RoBERTa positions start after the padding index
    tok_file = hf_dir / "tokenizer_config.json"
    if tok_file.is_file():
        limit = min(limit, int(json.loads(tok_file.read_text()).get("model_max_length", limit)))
    return limit


def write_sentence_transformers_folder(hf_dir: str | Path, out_dir: str | Path, pooling: str | None = None,
                                       normalize: bool = True, overwrite: bool = False) -> Path:
    """Write a sentence-transformers folder for the encoder at ``hf_dir`` (a folder, MSM checkpoint or alias).

    ``pooling`` defaults to the model's ``msm_model.json`` (else mean). The HF weights/tokenizer files are copied
    into ``0_Transformer/``; query/passage prefixes become the prompts "query"/"passage".
    """
    src = Path(resolve_model(str(hf_dir)))
    if not src.is_dir():
        raise MSMError(f"{hf_dir}: not a local model folder; pass an HF model folder, an MSM checkpoint or 'e5-small'")
    meta = read_model_meta(src)
    pooling = pooling or meta["pooling"]
    if pooling not in POOLING_MODES:
        raise MSMError(f"pooling {pooling!r} is not supported; use one of {', '.join(POOLING_MODES)}")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise MSMError(f"{out}: already exists; choose another --out or pass --force to replace it")
    hidden = int(json.loads((src / "config.json").read_text())["hidden_size"])
    prompts = {kind: meta[f"{kind}_prefix"] for kind in ("query", "passage") if meta.get(f"{kind}_prefix")}

    modules = [{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    pooling_config = {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "0_Transformer").mkdir()
        for file in sorted(src.iterdir()):
            if file.is_file() and file.name not in _SKIP:
                shutil.copyfile(file, tmp / "0_Transformer" / file.name)
        _write_json(tmp / "0_Transformer" / "sentence_bert_config.json",
                    {"max_seq_length": _max_seq_length(src), "do_lower_case": False})
        (tmp / "1_Pooling").mkdir()
        _write_json(tmp / "1_Pooling" / "config.json", pooling_config)
        if normalize:
            (tmp / "2_Normalize").mkdir()
        _write_json(tmp / "modules.json", modules)
        _write_json(tmp / "config_sentence_transformers.json",
                    {"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    log.info("wrote sentence-transformers folder %s (%s pooling%s, prompts %s)", out, pooling,
             ", normalised" if normalize else "", sorted(prompts) or "none")
    return out


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")
