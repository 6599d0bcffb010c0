"""Typed YAML configs: precise errors naming file, key and expected type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from msm.config import ConfigError, dump_config, load_config, parse_overrides


@dataclass
class Inner:
    lr: float = 1e-4
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    langs: list[str] = field(default_factory=list)
    limit: int | None = None
    out: Path = Path("outputs")


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_loads_nested_typed_values(tmp_path):
    cfg = load_config(write(tmp_path, "name: x\ninner: {lr: 3, mode: b}\nlangs: [de, fr]\nlimit: null\n"), Outer)
    assert cfg == Outer(name="x", inner=Inner(lr=3.0, mode="b"), langs=["de", "fr"])
    assert isinstance(cfg.inner.lr, float)


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\ninner: {lr: fast}", r"c.yaml: inner.lr: expected float, got str 'fast'"),
    ("name: x\ninner: {rate: 1}", r"c.yaml: inner.rate: unknown key for Inner \(known keys: lr, mode\)"),
    ("name: x\ninner: {mode: c}", r"c.yaml: inner.mode: expected one of 'a', 'b', got str 'c'"),
    ("name: x\nlangs: [de, 3]", r"c.yaml: langs\[1\]: expected str, got int 3"),
    ("name: x\nlimit: 1.5", r"c.yaml: limit: expected int or null, got float 1.5"),
    ("inner: {}", r"c.yaml: name: required key missing \(str\)"),
    ("- a\n- b", r"c.yaml: expected a mapping at the top level, got list"),
    ("name: [unclosed", r"c.yaml: not valid YAML"),
])
def test_errors_name_file_key_and_type(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), Outer)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml", Outer)


def test_overrides_and_dump_round_trip(tmp_path):
    path = write(tmp_path, "name: x\n")
    cfg = load_config(path, Outer, parse_overrides(["inner.lr=0.5", "langs=[ja]"]))
    assert cfg.inner.lr == 0.5 and cfg.langs == ["ja"]
    dump_config(cfg, tmp_path / "dump.yaml")
    assert load_config(tmp_path / "dump.yaml", Outer) == cfg
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["inner.lr"])
