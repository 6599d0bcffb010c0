"""Typed configs: YAML files load into dataclasses with precise errors.

Every job config is a (nested) dataclass with defaults. ``load_config(path, Cls)`` reads YAML and
checks every key and type; a mistake fails with a :class:`ConfigError` naming the file, the dotted
key and the expected type, e.g. ``configs/x.yaml: model.temperature: expected float, got str 'hot'``.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from msm.errors import MSMError
from msm.io import atomic_write_text

T = TypeVar("T")


class ConfigError(MSMError, ValueError):
    """A config file or dict does not match its dataclass."""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    def fail() -> ConfigError:
        return ConfigError(
            f"{source}: {key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )

    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise fail()
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise fail()
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ConfigError:
                continue
        raise fail()
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise fail()
        return _from_dict(value, tp, key, source)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise fail()
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise fail()
            return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise fail()
        kt, vt = get_args(tp) or (Any, Any)
        return {
            _convert(k, kt, f"{key}.<key>", source): _convert(v, vt, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail()
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise fail()
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise fail()


def _from_dict(data: dict, cls: type[T], prefix: str, source: str) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(
            f"{source}: {where}: unknown key for {cls.__name__} "
            f"(known keys: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key, source)
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f"{prefix}.{missing[0]}" if prefix else missing[0]
        raise ConfigError(f"{source}: {where}: required key missing ({_type_name(hints[missing[0]])})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise ConfigError(f"{source}: {prefix or cls.__name__}: {exc}") from exc


def config_from_dict(data: dict | None, cls: type[T], source: str = "<config>") -> T:
    """Build ``cls`` from a plain dict, checking keys and types. A key the config class lists in its ``MOVED``
    (``{"old.dotted.key": "new.dotted.key"}``) fails with its new place."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    for old, new in getattr(cls, "MOVED", {}).items():
        node: object = data
        for part in old.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            raise ConfigError(f"{source}: {old}: this key moved to {new}; write `{new}: {node!r}` there instead")
    return _from_dict(data, cls, "", source)


_MISSING = object()


def load_config(path: str | Path, cls: type[T], overrides: dict | None = None) -> T:
    """Load a YAML file into ``cls``; ``overrides`` (nested dict) win over the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (pass an existing YAML file, e.g. under configs/)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    if overrides:
        data = merge(data, overrides)
    return config_from_dict(data, cls, str(path))


def merge(base: dict, update: dict) -> dict:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_overrides(items: list[str]) -> dict:
    """``["train.lr=1e-4", "model.pooling=cls"]`` → nested dict, values parsed as YAML scalars."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.max_steps=10")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def to_dict(cfg: Any) -> dict:
    """Dataclass → plain dict (Paths as strings), for YAML/JSON dumps."""

    def clean(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return clean(dataclasses.asdict(cfg))


def dump_config(cfg: Any, path: str | Path) -> Path:
    """Write ``cfg`` as YAML atomically."""

    return atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


__all__ = [
    "ConfigError",
    "config_from_dict",
    "dump_config",
    "load_config",
    "merge",
    "parse_overrides",
    "to_dict",
]


def new_or_resumed(config: str | None, resume: str | None, overrides: list[str] | dict, cls: type[T],
                   resume_config) -> T:
    """The config of ``msm <train verb> --config FILE [key=value ...]`` (a new run) or ``--resume RUN_DIR``
    (``resume_config(RUN_DIR)``: the run's saved config; overrides are refused). ``overrides``: ``KEY=VALUE``
    strings or their nested dict."""

    if bool(config) == bool(resume):
        raise MSMError("pass exactly one of --config FILE (a new run) or --resume RUN_DIR (continue a run)")
    if resume:
        if overrides:
            raise MSMError("--resume continues a run with its saved config; key=value overrides and --out are not "
                           "allowed (start a new run with --config, or --overwrite it)")
        return resume_config(resume)
    return load_config(config, cls, overrides if isinstance(overrides, dict) else parse_overrides(overrides))
