"""Shared by the mutation-survivor tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import msm


@pytest.fixture()
def run_under_ascii_locale():
    """Run a Python ``script`` (printing one JSON object) in a subprocess whose locale encoding is ASCII
    (LC_ALL=C, UTF-8 mode off; open() takes the locale's encoding in C code, so it cannot be faked in-process),
    importing this ``msm``; returns the parsed JSON, after checking the locale really is not UTF-8."""
    def run(script: str, *args: str) -> dict:
        env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONIOENCODING="utf-8",
                   PYTHONPATH=os.pathsep.join([str(Path(msm.__file__).resolve().parents[1]),
                                               os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        assert "utf" not in got["encoding"].lower().replace("-", ""), got["encoding"]  # the locale really is ASCII
        return got
    return run
