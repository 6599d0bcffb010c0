"""Put this checkout's ``platform/`` first on ``sys.path``: a job's driver imports the uploaded msm, not an installed one.

Every ``jobs/*.py`` imports this first (``import _path``; a script's own folder is ``sys.path[0]``), so even a bare
``ray job submit --working-dir . -- python jobs/X.py`` driver runs the uploaded code. Ray workers (tasks, actors, Ray
Train workers) do not run this file: they get ``platform`` from the runtime env's ``env_vars.PYTHONPATH``, which
``msm submit`` sets and the documented ``ray job submit`` line passes (docs/deploy.md, "Which code runs").
"""

import sys
from pathlib import Path

PLATFORM = str(Path(__file__).resolve().parent.parent / "platform")
if PLATFORM in sys.path:
    sys.path.remove(PLATFORM)
sys.path.insert(0, PLATFORM)
