"""Data roots: the only folders the UI may read. Every user-typed path goes through ``guard_path``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from msm.errors import MSMError

REPO = Path(__file__).resolve().parents[3]
ENV_ROOTS = "MSM_UI_DATA_ROOTS"


def default_roots() -> list[Path]:
    """``outputs/`` of the repo and ``../shared/data`` (``$MSM_DATA_DIR`` when set)."""
    shared = os.environ.get("MSM_DATA_DIR") or REPO.parent / "shared" / "data"
    return [REPO / "outputs", Path(shared)]


def data_roots(env: str | None = None) -> list[Path]:
    """Roots from ``$MSM_UI_DATA_ROOTS`` (``os.pathsep``-separated) or the defaults, resolved, deduplicated."""
    raw = os.environ.get(ENV_ROOTS, "") if env is None else env
    roots = [Path(p) for p in raw.split(os.pathsep) if p.strip()] or default_roots()
    out: list[Path] = []
    for r in roots:
        resolved = r.expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def guard_path(path: str | Path, roots: Sequence[Path], must_exist: bool = True) -> Path:
    """Resolve ``path`` and refuse anything outside ``roots``; a relative path is looked up under each root,
    then under the working directory.

    Symlinks and ``..`` are resolved first, so neither can escape a root.
    """
    text = str(path).strip()
    if not text or "\x00" in text:
        raise MSMError("empty or invalid path; type a folder inside one of the data roots")
    p = Path(text).expanduser()
    if not p.is_absolute():  # relative to a root (the first where it exists), or to the working directory
        candidates = [r / p for r in roots] + [Path.cwd() / p]
        p = next((c for c in candidates if c.exists()), candidates[0])
    resolved = p.resolve()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise MSMError(f"{text}: outside the configured data roots ({', '.join(map(str, roots))}); "
                       "the UI only reads files under them (add a root with msm ui --data-root or MSM_UI_DATA_ROOTS)")
    if must_exist and not resolved.exists():
        raise MSMError(f"{text}: does not exist (resolved to {resolved})")
    return resolved


def find_dirs(roots: Iterable[Path], marker: str | tuple[str, ...], max_depth: int = 4, limit: int = 200) -> list[Path]:
    """Folders under ``roots`` (at most ``max_depth`` levels down) holding a file named ``marker``."""
    markers = (marker,) if isinstance(marker, str) else marker
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        base = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).parts) - base
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
            if any(m in filenames for m in markers):
                found.append(Path(dirpath))
                if len(found) >= limit:
                    return found
    return found
