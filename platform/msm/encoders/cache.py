"""Where built encoders live (``$MSM_CACHE_DIR`` or ``~/.cache/msm``) and the lock that builds each one once.

Its own module so that the builders (:mod:`msm.encoders.e5_small`, :mod:`msm.encoders.tiny`) and the name
resolver (:mod:`msm.encoders.resolve`, which calls the builders) both use it without importing each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def default_cache_dir() -> Path:
    """``$MSM_CACHE_DIR`` or ``~/.cache/msm``."""
    return Path(os.environ.get("MSM_CACHE_DIR", Path.home() / ".cache" / "msm")).expanduser()


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """An exclusive lock (``flock``) on ``<cache>/models/.<name>.lock`` while an alias is checked or built, so
    processes that resolve it at once (parallel jobs, test workers) build it once and never see it half-written."""

    lock = default_cache_dir() / "models" / f".{name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
