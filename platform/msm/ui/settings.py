"""UI settings from the environment (``msm ui`` sets them from its flags)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from msm.errors import MSMError
from msm.ui.paths import data_roots, guard_path, mirror_root

MODEL_ALIASES = ("e5-small", "tiny-random")


@dataclass
class UISettings:
    roots: list[Path | str] = field(default_factory=data_roots)
    model: str = "e5-small"
    data_dir: Path | None = None  # holds ntrex/ and xquad-r/

    @property
    def index_dir(self) -> Path:
        """Where "Save index" writes: ``<first local data root>/ui-indexes`` (URI roots are read, not written;
        with URI roots only, the mirror cache)."""
        local = [r for r in self.roots if isinstance(r, Path)]
        return (local[0] if local else mirror_root()) / "ui-indexes"


def load_settings() -> UISettings:
    """``MSM_UI_DATA_ROOTS``, ``MSM_UI_MODEL`` (default ``e5-small``), ``MSM_DATA_DIR`` (default ``../shared/data``)."""
    from msm.data.readers import default_data_dir  # lazy: pyarrow

    return UISettings(data_roots(), os.environ.get("MSM_UI_MODEL", "e5-small"), default_data_dir())


def check_model(name: str, roots: list[Path]) -> str:
    """A model alias, or a model folder inside the data roots (``MSMError`` otherwise)."""
    name = name.strip()
    if name in MODEL_ALIASES:
        return name
    if not name:
        raise MSMError(f"no model given; type {' or '.join(MODEL_ALIASES)} or a model folder under the data roots")
    return str(guard_path(name, roots))
