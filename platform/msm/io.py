"""Atomic file and directory writes: nothing partial ever looks complete."""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_png(path: str | Path, fig: Any, dpi: int = 100) -> Path:
    """Render a matplotlib figure to PNG, write it atomically, and close the figure."""

    import matplotlib.pyplot as plt  # lazy: matplotlib

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def replace_dir(src: str | Path, dst: str | Path) -> None:
    """Move the folder ``src`` to ``dst``, replacing what is there by two renames: the old folder is moved aside to
    ``.<name>.old-<id>``, ``src`` renamed to ``dst``, then the old one deleted. A failed second rename puts the old
    folder back, so within one process ``dst`` is the old or the new folder whenever this returns or raises; only a
    process killed between the two renames leaves ``dst`` absent, with the old folder whole at ``.<name>.old-<id>``
    (the next replace of ``dst`` deletes such leftovers once it has published its own folder). One replace of a
    ``dst`` at a time: concurrent writers of one output are not supported."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
        try:
            os.replace(src, dst)
        except Exception:  # the rename failed: dst is free, the old folder goes back (not on KeyboardInterrupt,
            os.replace(old, dst)  # which may arrive after a rename that succeeded)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    # a replace killed between its renames: exactly the names it makes (8 hex digits), folders only
    for leftover in dst.parent.glob(f".{glob.escape(dst.name)}.old-" + "[0-9a-f]" * 8):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp directory beside ``path``; on success it is renamed to ``path``.

    On error the temp directory is removed, so ``path`` either does not exist or is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists")
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
