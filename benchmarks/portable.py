"""Results JSON without this machine's absolute paths: the repo's own files relative to it, the shared data as
``../shared/...`` and temporary files as ``$TMPDIR/...`` (imported by the benchmark scripts beside it)."""

from __future__ import annotations

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
