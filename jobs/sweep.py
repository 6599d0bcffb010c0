"""Ray job entry point: ``ray job submit -- python jobs/sweep.py --config configs/sweep/X.yaml [--resume] [key=value ...]``."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
