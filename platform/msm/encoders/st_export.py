"""Export an encoder folder as a sentence-transformers model (Transformer → Pooling → Normalize).

Written in the layout ``SentenceTransformer.save()`` of sentence-transformers 6.2 writes: the Transformer in the
folder's root (the HF files, ``sentence_bert_config.json``, the maximum sequence length as the tokenizer's
``model_max_length``), ``1_Pooling/config.json``, ``2_Normalize/config.json``, and ``modules.json`` with the current
class paths (the ``sentence_transformers.models.*`` ones are deprecated aliases since 5.4/6.0). The export needs no
sentence-transformers install; the folder loads with ``SentenceTransformer(out_dir)`` (sentence-transformers >= 6.2)
and, being an HF folder too, with ``AutoModel.from_pretrained(out_dir)``. Prefixes from ``msm_model.json`` become
prompts (``encode(texts, prompt_name="query")``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from msm.encoders.resolve import MODEL_FILES, read_model_meta, resolve_model
from msm.errors import MSMError
from msm.io import atomic_dir

log = logging.getLogger(__name__)
POOLING_MODES = ("mean", "cls")
# msm_model.json: MSM metadata, carried over as prompts/pooling instead; the others are written here (a source that is
# itself an export is re-exported, not copied)
_SKIP = {"msm_model.json", "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"}
# modules.json "type"s as sentence-transformers 6.2 saves them (the module path of each class, then its name)
TRANSFORMER = "sentence_transformers.base.modules.transformer.Transformer"
POOLING = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
NORMALIZE = "sentence_transformers.base.modules.normalize.Normalize"


def _max_seq_length(hf_dir: Path) -> int:
    config = json.loads((hf_dir / "config.json").read_text())
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in ("xlm-roberta", "roberta"):
        limit -= config.get("pad_token_id", 1) + 1  # RoBERTa positions start after the padding index
    tok_file = hf_dir / "tokenizer_config.json"
    if tok_file.is_file():
        limit = min(limit, int(json.loads(tok_file.read_text()).get("model_max_length", limit)))
    return limit


ST_FILES = frozenset({"modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "README.md",
                      "added_tokens.json", "sentencepiece.bpe.model", "vocab.txt", "merges.txt", "vocab.json"})


def claim_st_folder(out: Path, overwrite: bool) -> None:
    """The output contract (:mod:`msm.output`) for ``--out``: nothing there, an empty folder, or (``overwrite``) a
    sentence-transformers folder holding only a model's files: its modules' folders, the model and tokenizer files
    (:data:`ST_FILES`, :data:`msm.encoders.resolve.MODEL_FILES`). Anything else, a user's file beside a model
    included, is refused: nothing is changed."""

    if out.exists() and not out.is_dir():
        raise MSMError(f"{out}: a file, not a folder; nothing was changed: choose a new or empty --out")
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not names:
        return
    modules_file = out / "modules.json"
    module_dirs: set[str] = set()
    if modules_file.is_file():
        try:
            module_dirs = {m["path"].split("/")[0] for m in json.loads(modules_file.read_text()) if m.get("path")}
        except (ValueError, KeyError, TypeError, AttributeError):
            module_dirs = set()
    foreign = [n for n in names if n not in ST_FILES | MODEL_FILES | module_dirs]
    if not modules_file.is_file() or foreign:
        held = ", ".join((foreign or names)[:5])
        what = (f"a sentence-transformers folder with other files beside it (it holds {held})" if modules_file.is_file()
                else f"not empty and not a sentence-transformers folder (it holds {held})")
        raise MSMError(f"{out}: {what}; nothing was changed: choose a new or empty --out (--overwrite replaces only a "
                       "sentence-transformers folder)")
    if not overwrite:
        raise MSMError(f"{out}: a sentence-transformers folder; nothing was changed: pass --overwrite to replace it, "
                       "or choose another --out")


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
    claim_st_folder(out, overwrite)
    hidden = int(json.loads((src / "config.json").read_text())["hidden_size"])
    prompts = {kind: meta[f"{kind}_prefix"] for kind in ("query", "passage") if meta.get(f"{kind}_prefix")}

    modules = [{"idx": 0, "name": "0", "path": "", "type": TRANSFORMER},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": POOLING}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": NORMALIZE})
    tok_file = src / "tokenizer_config.json"
    tokenizer_config = json.loads(tok_file.read_text()) if tok_file.is_file() else {}
    tokenizer_config["model_max_length"] = _max_seq_length(src)  # where 6.2 keeps max_seq_length
    with atomic_dir(out, overwrite=True) as tmp:  # checked above: nothing there, empty, or an ST folder to replace
        for file in sorted(src.iterdir()):
            if file.is_file() and file.name not in _SKIP:
                shutil.copyfile(file, tmp / file.name)
        _write_json(tmp / "tokenizer_config.json", tokenizer_config)
        _write_json(tmp / "sentence_bert_config.json", {
            "transformer_task": "feature-extraction",
            "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
            "module_output_name": "token_embeddings",
        })
        (tmp / "1_Pooling").mkdir()
        _write_json(tmp / "1_Pooling" / "config.json",
                    {"embedding_dimension": hidden, "pooling_mode": pooling, "include_prompt": True})
        if normalize:
            (tmp / "2_Normalize").mkdir()
            _write_json(tmp / "2_Normalize" / "config.json",
                        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"})
        _write_json(tmp / "modules.json", modules)
        _write_json(tmp / "config_sentence_transformers.json",
                    {"model_type": "SentenceTransformer", "prompts": prompts, "default_prompt_name": None,
                     "similarity_fn_name": "cosine"})
    log.info("wrote sentence-transformers folder %s (%s pooling%s, prompts %s)", out, pooling,
             ", normalised" if normalize else "", sorted(prompts) or "none")
    return out


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")
