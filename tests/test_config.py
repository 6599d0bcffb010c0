"""Typed YAML configs: precise errors naming file, key and expected type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from msm.config import ConfigError, dump_config, load_config, parse_overrides
from msm.errors import MSMError


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


@dataclass
class Strict:
    flag: bool = False
    pair: tuple[int, str] = (0, "")
    weights: dict[str, float] = field(default_factory=dict)
    steps: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@pytest.mark.parametrize(("data", "message"), [
    ({"flag": 1}, r"run.yaml: flag: expected bool, got int 1"),
    ({"steps": True}, r"run.yaml: steps: expected int, got bool True"),
    ({"pair": [1, 2]}, r"run.yaml: pair\[1\]: expected str, got int 2"),
    ({"pair": [1]}, r"run.yaml: pair: expected tuple\[int, str\], got list \[1\]"),
    ({"weights": {"de": "x"}}, r"run.yaml: weights.de: expected float, got str 'x'"),
    ({"steps": 0}, r"run.yaml: Strict: steps must be >= 1, got 0"),
])
def test_config_from_dict_names_source_key_and_type(data, message):
    from msm.config import config_from_dict

    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, Strict, source="run.yaml")


def test_bad_override_names_file_and_key(tmp_path):
    path = write(tmp_path, "name: x\ninner: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: inner.lr: expected float, got str 'fast'"):
        load_config(path, Outer, parse_overrides(["inner.lr=fast"]))
    with pytest.raises(ConfigError, match=r"c.yaml: inner.rate: unknown key for Inner"):
        load_config(path, Outer, parse_overrides(["inner.rate=1"]))
    with pytest.raises(ConfigError, match=r"c.yaml: inner: expected Inner, got int 3"):
        load_config(path, Outer, parse_overrides(["inner=3"]))
    # overrides merge into nested sections instead of replacing them
    assert load_config(path, Outer, parse_overrides(["inner.mode=b"])).inner == Inner(lr=0.1, mode="b")


# ---- every shipped YAML under configs/ -------------------------------------------------------------------------

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(CONFIGS.rglob("*.y*ml"))


def load_shipped(path: Path) -> object:
    """Load and validate one config the way its command does, chosen by its folder under configs/."""
    from msm.data.config import MineConfig
    from msm.data.pipeline import validate_config
    from msm.train.config import PretrainConfig
    from msm.tune import load_sweep

    folder = path.parent.name
    kind = path.stem.split("-")[0] if folder == "demo" else folder  # demo/mine-*.yaml, demo/pretrain.yaml
    if kind == "mine":
        cfg = load_config(path, MineConfig)
        validate_config(cfg)
        return cfg
    if kind == "pretrain":
        return load_config(path, PretrainConfig)
    if kind == "tune":
        return load_sweep(path)
    if kind == "finetune":
        from msm.finetune.config import FinetuneConfig

        return load_config(path, FinetuneConfig)
    raise AssertionError(f"{path}: no loader for configs/{folder}/; add one to load_shipped")


def test_every_folder_of_configs_is_covered():
    assert {p.parent.name for p in SHIPPED} == {"demo", "finetune", "mine", "pretrain", "tune"}
    assert len(SHIPPED) >= 21


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(CONFIGS)) for p in SHIPPED])
def test_every_shipped_config_says_how_to_launch_it(path):
    """A header comment with the command that runs the file (torchtune's recipes do the same)."""
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    commands = [line for line in header if any(c in line for c in ("msm ", "python ", "make "))]
    assert commands and any(str(path.relative_to(CONFIGS.parent)) in c or "make demo" in c for c in commands), header


def test_a_key_that_moved_names_its_new_place(tmp_path):
    from msm.finetune.config import FinetuneConfig

    path = tmp_path / "ft.yaml"
    path.write_text("train: {fail_at_step: 3}\n")
    with pytest.raises(MSMError, match=r"train.fail_at_step: this key moved to run.fail_at_step; write "
                                       r"`run.fail_at_step: 3` there instead"):
        load_config(path, FinetuneConfig)


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(CONFIGS)) for p in SHIPPED])
def test_shipped_config_loads_and_validates(path):
    assert load_shipped(path) is not None


@pytest.mark.parametrize(("folder", "text", "message"), [
    ("pretrain", "model: {temprature: 0.1}\n", "model.temprature: unknown key"),
    ("mine", "inputs: [{kind: ntrex, path: ntrex}]\nlanguages: [de, tlh]\n", "cannot be handled by the encoder"),
    ("tune", "space: {model.temperature: {choice: []}}\n", "space.model.temperature.choice: empty list"),
    ("demo", "model: [unclosed\n", "not valid YAML"),
])
def test_a_broken_config_fails_the_loader(tmp_path, folder, text, message):
    """What the parametrised test above would report for a broken file in each kind of folder."""
    from msm.errors import MSMError

    path = tmp_path / folder / ("pretrain.yaml" if folder == "demo" else "broken.yaml")
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(MSMError, match=message):
        load_shipped(path)
