"""Ray job entry point ``python jobs/sweep.py --config configs/tune/X.yaml [--resume] [key=value ...]``; submit with ``msm submit`` or
``ray job submit`` as in docs/deploy.md §7 (both make the job run the uploaded platform/msm)."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
