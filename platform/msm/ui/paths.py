"""Data roots: the only folders the UI may read. Every user-typed path goes through ``guard_path``.

A root may be a URI (``s3://bucket/runs``: the runs, indexes and mined corpora that cluster jobs wrote to object
storage). The root guard applies to URIs as to paths (a URI outside every URI root is refused, ``..`` normalised
first), and what the UI reads there is mirrored into a local cache first (:func:`msm.uri.local_copy`, again when
it changes; checkpoints and pretraining corpora left out), so the pages read local files either way.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from msm.encoders.cache import default_cache_dir
from msm.errors import MSMError

REPO = Path(__file__).resolve().parents[3]
ENV_ROOTS = "MSM_UI_DATA_ROOTS"


def default_roots() -> list[Path]:
    """``outputs/`` of the repo and ``../shared/data`` (``$MSM_DATA_DIR`` when set)."""
    shared = os.environ.get("MSM_DATA_DIR") or REPO.parent / "shared" / "data"
    return [REPO / "outputs", Path(shared)]


def is_uri(text: str | Path) -> bool:
    return "://" in str(text)


def _normal_uri(text: str) -> str:
    scheme, rest = str(text).strip().split("://", 1)
    return f"{scheme}://{posixpath.normpath('/' + rest).lstrip('/')}"


def data_roots(env: str | None = None) -> list[Path | str]:
    """Roots from ``$MSM_UI_DATA_ROOTS`` (``os.pathsep``-separated; a ``:`` followed by ``//`` belongs to a URI)
    or the defaults; paths resolved, URIs normalised (kept as strings), deduplicated."""
    raw = os.environ.get(ENV_ROOTS, "") if env is None else env
    parts = re.split(r":(?!//)", raw) if os.pathsep == ":" else raw.split(os.pathsep)
    roots = [p for p in parts if p.strip()] or default_roots()
    out: list[Path | str] = []
    for r in roots:
        resolved = _normal_uri(str(r)) if is_uri(r) else Path(r).expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def _skip_for_ui(rel: str) -> bool:
    """What the UI never reads from a folder at a URI: checkpoints, the tokenised corpus, TensorBoard events,
    embeddings."""
    return any(part.startswith(("checkpoint", "corpus", "tensorboard", "embeddings", ".")) for part in rel.split("/")[:-1])


def mirror_root() -> Path:
    return default_cache_dir() / "ui"


def mirror(uri: str) -> Path:
    """The local mirror of the folder at ``uri`` (see the module docstring)."""
    from msm.uri import local_copy  # lazy: pyarrow

    return local_copy(uri, mirror_root(), "folder", "type a folder inside one of the URI roots", skip=_skip_for_ui)


def _guard_uri(text: str, roots: Sequence[Path | str], must_exist: bool) -> Path:
    from msm.uri import resolve  # lazy: pyarrow

    uri = _normal_uri(text)
    uri_roots = [r for r in roots if isinstance(r, str)]
    if not any(uri == r or uri.startswith(r.rstrip("/") + "/") for r in uri_roots):
        raise MSMError(f"{text}: outside the configured data roots ({', '.join(map(str, roots))}); the UI only "
                       "reads under them (add a root with msm ui --data-root or MSM_UI_DATA_ROOTS)")
    if must_exist and not resolve(uri).exists():
        raise MSMError(f"{text}: does not exist")
    return mirror(uri)


def guard_path(path: str | Path, roots: Sequence[Path | str], must_exist: bool = True) -> Path:
    """Resolve ``path`` and refuse anything outside ``roots``; a relative path is looked up under each root,
    then under the working directory. A URI must lie under a URI root; its local mirror is returned.

    Symlinks and ``..`` are resolved first, so neither can escape a root.
    """
    text = str(path).strip()
    if not text or "\x00" in text:
        raise MSMError("empty or invalid path; type a folder inside one of the data roots")
    if is_uri(text):
        return _guard_uri(text, roots, must_exist)
    local_roots = [r for r in roots if isinstance(r, Path)]
    if len(local_roots) < len(roots):  # a URI root: its mirrors (what find_dirs listed) may be read too
        local_roots.append(mirror_root().resolve())
    p = Path(text).expanduser()
    if not p.is_absolute():  # relative to a root (the first where it exists), or to the working directory
        candidates = [r / p for r in local_roots] + [Path.cwd() / p]
        p = next((c for c in candidates if c.exists()), candidates[0])
    resolved = p.resolve()
    if not any(resolved == r or resolved.is_relative_to(r) for r in local_roots):
        raise MSMError(f"{text}: outside the configured data roots ({', '.join(map(str, roots))}); "
                       "the UI only reads files under them (add a root with msm ui --data-root or MSM_UI_DATA_ROOTS)")
    if must_exist and not resolved.exists():
        raise MSMError(f"{text}: does not exist (resolved to {resolved})")
    return resolved


def _find_uri_dirs(root: str, markers: tuple[str, ...], max_depth: int, limit: int) -> list[Path]:
    from msm.uri import resolve  # lazy: pyarrow

    loc = resolve(root)
    try:
        files = loc.files()
    except MSMError:  # an unreachable root: the others still list
        return []
    folders = []
    for f in files:
        parts = f[len(loc.path) + 1:].split("/")
        if parts[-1] in markers and len(parts) - 1 <= max_depth and not any(p.startswith(".") for p in parts[:-1]):
            folders.append("/".join(parts[:-1]))
    return [mirror(f"{root}/{rel}" if rel else root) for rel in sorted(set(folders))[:limit]]


def find_dirs(roots: Iterable[Path | str], marker: str | tuple[str, ...], max_depth: int = 4,
              limit: int = 200) -> list[Path]:
    """Folders under ``roots`` (at most ``max_depth`` levels down) holding a file named ``marker`` (under a URI root:
    their local mirrors)."""
    markers = (marker,) if isinstance(marker, str) else marker
    found: list[Path] = []
    for root in roots:
        if isinstance(root, str):
            found += _find_uri_dirs(root, markers, max_depth, limit - len(found))
            if len(found) >= limit:
                return found
            continue
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
