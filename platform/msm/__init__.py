"""MSM Platform: Masked Sentence Model pretraining for cross-lingual dense retrieval."""

import subprocess
from pathlib import Path

__version__ = "0.1.0"


def code_version() -> str:
    """``msm <version> (<git short rev>)`` for manifests and checkpoints; the rev is left out outside a checkout."""

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"msm {__version__}" + (f" ({rev})" if rev else "")
