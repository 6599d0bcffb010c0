"""Typed sweep config (YAML in ``configs/tune/``) and its search space, checked before any trial starts.

A sweep config names a base pretraining config (``base``), fixed ``overrides`` applied to every trial, and a
``space`` whose keys are dotted paths into :class:`~msm.train.config.PretrainConfig`, each with exactly one of
``grid``, ``choice``, ``uniform`` or ``loguniform``::

    space:
      model.memory_bank_size: {grid: [0, 64]}
      model.temperature: {loguniform: [0.02, 0.2]}

:func:`load_sweep` reads the YAML, resolves the base config and validates every knob: an unknown key, an empty
value list, bad bounds, a value the knob's type or range rejects (every value is built into a full
``PretrainConfig``) or a distribution the searcher cannot use fails with a :class:`~msm.config.ConfigError`
(an :class:`~msm.errors.MSMError`) naming the file and ``space.<key>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from msm.config import ConfigError, config_from_dict, load_config, merge, to_dict
from msm.io import atomic_write_text
from msm.run_settings import OutputSettings
from msm.runtime import DATA_CPUS
from msm.train.config import PretrainConfig
from msm.uri import Location, resolve

KINDS = ("grid", "choice", "uniform", "loguniform")
SEARCHERS = ("grid", "random", "optuna")


@dataclass
class AshaConfig:
    """Asynchronous successive halving (``ray.tune.schedulers.ASHAScheduler``); ``enabled: false`` = FIFO."""

    enabled: bool = True
    time_attr: str = "training_iteration"  # one unit = one report carrying the metric (e.g. one validation)
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_t: int = 1000

    def __post_init__(self) -> None:
        if self.grace_period < 1:
            raise ValueError("grace_period must be >= 1")
        if self.max_t < self.grace_period:
            raise ValueError(f"max_t ({self.max_t}) must be >= grace_period ({self.grace_period})")
        if self.reduction_factor <= 1:
            raise ValueError("reduction_factor must be > 1")


@dataclass
class SweepConfig(OutputSettings):
    """A Ray Tune sweep over pretraining knobs. See docs/tune.md for every field. ``output_dir`` and ``name``
    (the sweep folder, Tune's experiment under it) come from :class:`msm.run_settings.OutputSettings`, as a
    training run's do; each trial is a pretraining run with the full ``run:`` block."""

    output_dir: str = "outputs/tune"  # sweep folder: results, best config, plots, Tune state (a path or a URI)
    name: str = "sweep"  # Ray Tune experiment name (folder under output_dir)

    base: str | None = None  # pretraining YAML the knobs apply to (relative: to the cwd, then to this file)
    overrides: dict[str, Any] = field(default_factory=dict)  # nested PretrainConfig keys fixed for every trial
    space: dict[str, Any] = field(default_factory=dict)  # dotted key -> {grid|choice|uniform|loguniform: [...]}
    searcher: Literal["grid", "random", "optuna"] = "random"
    num_samples: int = 1  # random/optuna: trials; grid: repeats of the whole grid
    metric: str = "val_score"
    mode: Literal["max", "min"] = "max"
    scope: Literal["all", "last"] = "all"  # rank a trial by its best reported value, or by its last one
    max_concurrent_trials: int | None = None  # None: as many as resources allow
    trial_cpus: float = 0.1  # CPUs of each trial's driver actor (its TorchTrainer workers ask for their own)
    data_cpus: float = DATA_CPUS  # CPUs of the Ray Data read tasks feeding each trial's workers
    train_poll_s: float | None = None  # each trial's Train controller poll interval (None: Ray's default, 2 s)
    seed: int | None = 0  # searcher seed (random / optuna)
    asha: AshaConfig = field(default_factory=AshaConfig)

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ValueError("num_samples must be >= 1")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise ValueError("max_concurrent_trials must be >= 1 or null")
        if self.train_poll_s is not None and self.train_poll_s <= 0:
            raise ValueError("train_poll_s must be > 0 or null")
        if self.trial_cpus < 0 or self.data_cpus < 0:
            raise ValueError("trial_cpus and data_cpus must be >= 0")
        if not self.metric:
            raise ValueError("metric must be a non-empty name")
        if not self.name or "/" in self.name:
            raise ValueError("name must be a non-empty folder name without '/'")


@dataclass(frozen=True)
class Knob:
    """One validated search dimension."""

    key: str  # dotted path into PretrainConfig, e.g. "model.memory_bank_size"
    kind: str  # grid | choice | uniform | loguniform
    values: tuple  # the list (grid/choice) or (lo, hi)

    @property
    def column(self) -> str:
        return f"config/{self.key}"

    @property
    def categorical(self) -> bool:
        return self.kind in ("grid", "choice")


@dataclass
class Sweep:
    """A loaded sweep: its config, the resolved base pretraining config (as a dict) and the validated knobs."""

    cfg: SweepConfig
    base: dict  # PretrainConfig as a plain dict, overrides applied
    knobs: list[Knob]
    source: str  # the YAML path (for messages)

    @property
    def loc(self) -> Location:
        """Where the sweep lives: a local folder or a URI (``s3://…``: Tune's state through its
        ``storage_filesystem``, the trials' runs through :class:`msm.run_folder.RunFolder`)."""
        return resolve(self.cfg.output_dir)

    @property
    def sweep_dir(self) -> Path:
        """The folder the report is written in: the sweep folder itself, or for a sweep at a URI a local work folder
        (one per URI) whose files :meth:`upload` puts there."""
        loc = self.loc
        if loc.local:
            return Path(loc.path)
        key = hashlib.sha1(loc.uri.encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"msm-sweep-{key}"

    @property
    def where(self) -> str:
        """The sweep folder as the user names it (a path or the URI), and where its trials' runs go."""
        return self.loc.uri

    def read(self, name: str) -> str | None:
        """The text of file ``name`` in the sweep folder (at its URI when remote); None when missing."""
        target = self.loc.join(name)
        return target.read_text() if target.is_file() else None

    def upload(self, *names: str) -> None:
        """Put the work folder's files ``names`` (those that exist) at the sweep's URI (nothing to do locally)."""
        if self.loc.local:
            return
        for name in names:
            if (self.sweep_dir / name).is_file():
                self.loc.join(name).write_bytes((self.sweep_dir / name).read_bytes())

    @property
    def experiment_dir(self) -> str:
        """Tune's experiment folder (a path or the URI)."""
        return self.loc.join(self.cfg.name).uri

    @property
    def expected_trials(self) -> int:
        """Trials a complete sweep runs: ``num_samples`` x the grid (``choice`` enumerates under searcher grid)."""
        n = self.cfg.num_samples
        for k in self.knobs:
            if k.kind == "grid" or (self.cfg.searcher == "grid" and k.kind == "choice"):
                n *= len(k.values)
        return n

    def trial_resources(self) -> tuple[float, float]:
        """(CPUs, GPUs) one trial holds at most: its driver actor, its Train workers, its Ray Data actor."""
        run = self.base["run"]
        values = {k.key: k.values for k in self.knobs}
        workers = max(values.get("run.num_workers", (run["num_workers"],)))
        cpus = max(values.get("run.cpus_per_worker", (run["cpus_per_worker"],)))
        gpu = any(values.get("run.use_gpu", (run["use_gpu"],)))
        return self.cfg.trial_cpus + workers * cpus + self.cfg.data_cpus, float(workers if gpu else 0)

    def trial_config(self, knob_values: dict[str, Any]) -> dict:
        """The base dict with ``{dotted key: value}`` applied (validated by the caller)."""
        return merge(self.base, nest(knob_values))


def nest(flat: dict[str, Any]) -> dict:
    """``{"model.temperature": 0.1}`` → ``{"model": {"temperature": 0.1}}``."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`nest` (dicts only, lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in nested.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _field_type(key: str) -> Any:
    """The annotated type of a dotted PretrainConfig key; ConfigError for an unknown or non-leaf key."""
    cls: Any = PretrainConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigError(f"{'.'.join(parts[:i])} is not a section, so {key!r} does not exist")
        hints = get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        if part not in names:
            where = ".".join(parts[:i]) or "PretrainConfig"
            raise ConfigError(f"unknown key {part!r} in {where} (known: {', '.join(sorted(names))})")
        cls = hints[part]
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        raise ConfigError(f"{key!r} is a whole section; search one of its keys, e.g. {key}.<name>")
    return cls


def _accepts_float(tp: Any) -> bool:
    if tp is float:
        return True
    return get_origin(tp) in (Union, types.UnionType) and float in get_args(tp)


def _check_value(base: dict, key: str, value: Any, where: str) -> None:
    """Build a full PretrainConfig with ``key=value`` so type and range checks (``__post_init__``) apply."""
    try:
        config_from_dict(merge(base, nest({key: value})), PretrainConfig, f"{where} value {value!r}")
    except ConfigError as exc:
        raise ConfigError(f"{exc} (the knob's values must each make a valid pretraining config)") from None


def flatten_space(space: dict, prefix: str = "") -> dict[str, Any]:
    """Nested sections (``{model: {temperature: {choice: [..]}}}``, what ``space.model.temperature=...`` on the
    command line gives) → dotted keys; a dict naming a distribution kind is a leaf."""
    out: dict[str, Any] = {}
    for key, spec in space.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(spec, dict) and spec and not set(spec) & set(KINDS):
            out.update(flatten_space(spec, dotted))
        else:
            out[dotted] = spec
    return out


def parse_space(space: dict, base: dict, searcher: str, source: str = "<sweep>") -> list[Knob]:
    """Validate ``space`` against PretrainConfig and ``base``; return the knobs in file order."""
    if not space:
        raise ConfigError(f"{source}: space: empty; add at least one knob, e.g. "
                          "'model.memory_bank_size: {grid: [0, 1024]}'")
    knobs = []
    for key, spec in flatten_space(space).items():
        where = f"{source}: space.{key}"
        try:
            tp = _field_type(str(key))
        except ConfigError as exc:
            parent, _, last = str(key).rpartition(".")
            try:
                _field_type(parent)
            except ConfigError:
                raise ConfigError(f"{where}: {exc}") from None
            raise ConfigError(f"{source}: space.{parent}: expected exactly one of {', '.join(KINDS)}, "
                              f"got {last!r}") from None
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            got = list(spec) if isinstance(spec, dict) else spec
            raise ConfigError(f"{where}: expected exactly one of {', '.join(KINDS)} (e.g. {{choice: [a, b]}}), "
                              f"got {got!r}")
        kind, values = next(iter(spec.items()))
        if not isinstance(values, (list, tuple)):
            raise ConfigError(f"{where}.{kind}: expected a list, got {type(values).__name__} {values!r}")
        values = tuple(values)
        if kind in ("grid", "choice"):
            if not values:
                raise ConfigError(f"{where}.{kind}: empty list; give at least one value")
            for v in values:
                _check_value(base, key, v, where)
        else:
            if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ConfigError(f"{where}.{kind}: expected [low, high] numbers, got {list(values)!r}")
            lo, hi = float(values[0]), float(values[1])
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                raise ConfigError(f"{where}.{kind}: bounds must be finite with low < high, got [{lo}, {hi}]")
            if kind == "loguniform" and lo <= 0:
                raise ConfigError(f"{where}.loguniform: low must be > 0, got {lo}")
            if not _accepts_float(tp):
                raise ConfigError(f"{where}.{kind}: {key} is not a float knob; use grid or choice for it")
            values = (lo, hi)
            for v in values:
                _check_value(base, key, v, where)
        if searcher == "grid" and kind not in ("grid", "choice"):
            raise ConfigError(f"{where}: searcher 'grid' enumerates values only; use grid or choice, "
                              f"or searcher random/optuna for {kind}")
        if searcher == "optuna" and kind == "grid":
            raise ConfigError(f"{where}: searcher 'optuna' cannot take a grid; use choice (or searcher grid/random)")
        if searcher == "optuna" and kind == "choice" and not all(
                v is None or isinstance(v, (bool, int, float, str)) for v in values):
            raise ConfigError(f"{where}.choice: searcher 'optuna' takes only null, bool, number or string choices")
        knobs.append(Knob(str(key), kind, values))
    return knobs


def _resolve_base(base: str | None, base_dir: Path | None) -> Path | None:
    """``base`` as given (absolute, or relative to the cwd), else relative to the sweep file's folder or one of
    its parents (so ``configs/pretrain/x.yaml`` in ``configs/tune/y.yaml`` works from any cwd)."""
    if base is None:
        return None
    path = Path(base).expanduser()
    if path.is_absolute() or path.is_file() or base_dir is None:
        return path
    for folder in [base_dir.resolve(), *base_dir.resolve().parents]:
        if (folder / path).is_file():
            return folder / path
    return path  # missing: load_config names it


def _absolute_paths(base: dict) -> dict:
    """Local data paths resolved on the driver: trial actors and Train workers run in other working directories."""
    data = dict(base.get("data", {}))
    for key in ("data_dir", "path"):
        value = data.get(key)
        if isinstance(value, str) and "://" not in value:
            data[key] = str(Path(value).expanduser().resolve())
    return {**base, "data": data}


def build_sweep(cfg: SweepConfig, source: str = "<sweep>", base_dir: Path | None = None) -> Sweep:
    """Resolve the base pretraining config, apply ``overrides``, validate ``space`` and ``output_dir`` (a path or
    a usable URI)."""
    resolve(cfg.output_dir)
    base_path = _resolve_base(cfg.base, base_dir)
    try:
        base_cfg = (load_config(base_path, PretrainConfig, cfg.overrides or None) if base_path
                    else config_from_dict(cfg.overrides, PretrainConfig, f"{source}: overrides"))
    except ConfigError as exc:
        raise ConfigError(f"{source}: base/overrides: {exc}") from None
    base = _absolute_paths(to_dict(base_cfg))
    knobs = parse_space(cfg.space, base, cfg.searcher, source)
    return Sweep(cfg, base, knobs, source)


def load_sweep(path: str | Path, overrides: dict | None = None) -> Sweep:
    """Load a sweep YAML (``overrides``: nested dict over the file, e.g. from ``key=value`` CLI items)."""
    path = Path(path)
    cfg = load_config(path, SweepConfig, overrides)
    return build_sweep(cfg, str(path), path.parent)


def sweep_to_dict(sweep: Sweep) -> dict:
    """The resolved sweep as written to ``<output_dir>/sweep.yaml`` (base inlined, so resume needs no other file)."""
    data = to_dict(sweep.cfg)
    data["base"] = None
    data["overrides"] = sweep.base
    data["output_dir"] = sweep.where
    return data


def dump_sweep(sweep: Sweep, path: Path) -> Path:
    header = f"# Resolved sweep (from {sweep.source}); `msm tune --resume` reads this copy.\n"
    return atomic_write_text(path, header + yaml.safe_dump(sweep_to_dict(sweep), sort_keys=False, allow_unicode=True))


__all__ = ["AshaConfig", "Knob", "Sweep", "SweepConfig", "build_sweep", "dump_sweep", "flatten", "load_sweep",
           "nest", "parse_space"]
