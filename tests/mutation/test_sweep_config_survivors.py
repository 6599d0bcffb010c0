"""msm.tune.config details the rule tests left open: whole error messages (each names the field and the fix),
the sweep file's folder as the place a relative ``base`` is looked up, and the cwd winning over that folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from msm.config import ConfigError
from msm.tune.config import AshaConfig, SweepConfig, _resolve_base, build_sweep, load_sweep, parse_space

REPO = Path(__file__).resolve().parents[2]
TINY_BASE = REPO / "configs" / "pretrain" / "tiny-cpu.yaml"


def whole(message: str) -> str:
    """A pattern matching exactly ``message``, nothing before or after."""
    return "^" + re.escape(message) + "$"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grace_period": 0}, "grace_period must be >= 1"),
    ({"reduction_factor": 1.0}, "reduction_factor must be > 1"),
])
def test_asha_messages_are_exact(kwargs, message):
    """An out-of-range ASHA field fails with exactly the documented message, no extra text around it."""
    with pytest.raises(ValueError, match=whole(message)):
        AshaConfig(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_samples": 0}, "num_samples must be >= 1"),
    ({"max_concurrent_trials": 0}, "max_concurrent_trials must be >= 1 or null"),
    ({"train_poll_s": -1.0}, "train_poll_s must be > 0 or null"),
    ({"data_cpus": -0.5}, "trial_cpus and data_cpus must be >= 0"),
    ({"metric": ""}, "metric must be a non-empty name"),
    ({"name": "a/b"}, "name must be a non-empty folder name without '/'"),
])
def test_sweep_messages_are_exact(kwargs, message):
    """An out-of-range sweep field fails with exactly the documented message, no extra text around it."""
    with pytest.raises(ValueError, match=whole(message)):
        SweepConfig(**kwargs)


def test_empty_space_message_shows_a_usable_example():
    """An empty space fails naming the file and giving a knob example that can be pasted as is."""
    with pytest.raises(ConfigError, match=whole(
            "s.yaml: space: empty; add at least one knob, e.g. 'model.memory_bank_size: {grid: [0, 1024]}'")):
        parse_space({}, {}, "random", "s.yaml")


def test_spec_with_two_kinds_lists_the_kinds_it_got():
    """A knob naming two distribution kinds fails listing those kind names (not the whole mapping)."""
    with pytest.raises(ConfigError, match=re.escape(
            "s.yaml: space.model.temperature: expected exactly one of grid, choice, uniform, loguniform "
            "(e.g. {choice: [a, b]}), got ['grid', 'choice']") + "$"):
        parse_space({"model.temperature": {"grid": [0.1], "choice": [0.2]}}, {}, "random", "s.yaml")


def test_spec_given_as_a_bare_list_shows_that_list():
    """A knob written as a bare list (no kind) fails showing the list it got."""
    with pytest.raises(ConfigError, match=re.escape("(e.g. {choice: [a, b]}), got [0.1, 0.2]") + "$"):
        parse_space({"model.temperature": [0.1, 0.2]}, {}, "random", "s.yaml")


def test_non_list_values_name_their_type():
    """``{grid: 5}`` fails naming the type and value it got instead of a list."""
    with pytest.raises(ConfigError, match=whole("s.yaml: space.model.memory_bank_size.grid: expected a list, "
                                                "got int 5")):
        parse_space({"model.memory_bank_size": {"grid": 5}}, {}, "random", "s.yaml")


def test_uri_output_dir_message_names_the_fix():
    """A URI output_dir fails saying a local or shared filesystem path is needed, with an example path."""
    cfg = SweepConfig(base=str(TINY_BASE), space={"model.temperature": {"choice": [0.1]}}, output_dir="s3://b/x")
    with pytest.raises(ConfigError, match=whole(
            "<src>: output_dir: 's3://b/x' is a URI; a sweep writes its tables, plots and trial folders to a local "
            "or shared filesystem path (e.g. /mnt/msm/runs/sweep)")):
        build_sweep(cfg, "<src>")


def test_bad_overrides_without_base_name_overrides():
    """With no base file, an unknown key in ``overrides`` fails naming the sweep file, ``overrides`` and the key."""
    cfg = SweepConfig(overrides={"model": {"bogus": 1}}, space={"model.temperature": {"choice": [0.1]}})
    with pytest.raises(ConfigError, match=r"^<src>: base/overrides: <src>: overrides: model\.bogus: unknown key "
                                          r"for MSMModelConfig"):
        build_sweep(cfg, "<src>")


def test_relative_base_is_found_next_to_the_sweep_file(tmp_path, monkeypatch):
    """``base: base.yaml`` in a sweep file resolves next to that file even when the cwd is elsewhere."""
    sweeps, elsewhere = tmp_path / "sweeps", tmp_path / "elsewhere"
    sweeps.mkdir()
    elsewhere.mkdir()
    (sweeps / "base.yaml").write_text(yaml.safe_dump({"model": {"memory_bank_size": 7}}))
    (sweeps / "s.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "output_dir": str(tmp_path / "out"),
                                                   "space": {"model.temperature": {"choice": [0.1]}}}))
    monkeypatch.chdir(elsewhere)
    sweep = load_sweep(sweeps / "s.yaml")
    assert sweep.base["model"]["memory_bank_size"] == 7  # the value written in sweeps/base.yaml
    direct = build_sweep(SweepConfig(base="base.yaml", space={"model.temperature": {"choice": [0.1]}}), "<s>",
                         sweeps)
    assert direct.base["model"]["memory_bank_size"] == 7


def test_relative_base_in_the_cwd_wins_over_the_sweep_folder(tmp_path, monkeypatch):
    """A relative ``base`` that exists in the cwd is used as given, even if the sweep folder has one too."""
    cwd, sweeps = tmp_path / "cwd", tmp_path / "sweeps"
    cwd.mkdir()
    sweeps.mkdir()
    (cwd / "base.yaml").write_text("{}")
    (sweeps / "base.yaml").write_text("{}")
    monkeypatch.chdir(cwd)
    assert _resolve_base("base.yaml", sweeps) == Path("base.yaml")
