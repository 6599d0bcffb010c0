"""``msm ui``: flags become the app's environment; bad roots are refused before Streamlit starts."""

from __future__ import annotations

import os
import subprocess

from msm.cli import main


def test_msm_ui_passes_roots_model_and_port(monkeypatch, tmp_path):
    seen = {}

    def fake_call(cmd, env):
        seen.update(cmd=cmd, env=env)
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["ui", "--data-root", str(tmp_path / "a"), "--data-root", str(tmp_path / "b"), "--port", "8765",
                 "--model", "tiny-random"]) == 0
    assert seen["env"]["MSM_UI_DATA_ROOTS"] == os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    assert seen["env"]["MSM_UI_MODEL"] == "tiny-random" and seen["env"]["HF_HUB_OFFLINE"] == "1"
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("ui/app.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765" and cmd[cmd.index("--server.address") + 1] == "127.0.0.1"


def test_msm_ui_refuses_a_missing_root(capsys, tmp_path):
    assert main(["ui", "--data-root", str(tmp_path / "nope")]) == 2
    assert f"--data-root {tmp_path / 'nope'}: not a folder" in capsys.readouterr().err
