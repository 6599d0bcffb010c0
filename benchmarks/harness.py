"""What every benchmark script shares (imported as ``from harness import ...``: a script's own folder is first on
``sys.path``): the repository root, results JSON without this machine's paths, the load average recorded beside
each figure, and one child-process run whose last stdout line is its JSON result.

- :func:`portable`: the repo's own files relative to it, the shared data as ``../shared/...``, temporary files as
  ``$TMPDIR/...``.
- :func:`write_results`: ``portable`` + an atomic JSON write (a partial results file never replaces a whole one).
- :func:`run_child`: ``python <script> <args>`` in a fresh process (the measurement owns its interpreter: memory
  peaks and import costs are its own), the result parsed from the JSON on its last stdout line, the load average
  before and after attached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def portable(obj: Any) -> Any:
    """``obj`` (JSON-like) with the absolute paths in its strings rewritten as above; other values unchanged."""
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable(v) for v in obj]
    if isinstance(obj, Path):
        obj = str(obj)
    if not isinstance(obj, str):
        return obj
    for root, name in ((REPO.parent / "shared", "../shared"), (REPO, "."),
                       (Path(tempfile.gettempdir()).resolve(), "$TMPDIR")):
        for prefix in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
            obj = obj.replace(prefix + "/", "" if name == "." else name + "/")
            if obj == prefix:
                obj = name
    return obj


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages (the machine is shared: every figure carries it)."""
    return [round(x, 2) for x in os.getloadavg()]


def write_results(path: str | Path, obj: Any) -> Path:
    """``obj`` made :func:`portable`, written as indented JSON atomically."""
    sys.path.insert(0, str(REPO / "platform"))
    from msm.io import atomic_write_json

    return atomic_write_json(path, portable(obj))


def run_child(script: str | Path, args: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """Run ``python script args`` and return the JSON object its last stdout line printed, with ``load_avg_1m``
    (before, after); its stderr tail ends the benchmark when it fails."""
    before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "MSM_NO_PROGRESS": "1", **(env or {})})
    if proc.returncode:
        raise SystemExit(f"{script} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"{script} {' '.join(args)} printed no result line")
    return {**json.loads(lines[-1]), "load_avg_1m": [before, os.getloadavg()[0]]}
