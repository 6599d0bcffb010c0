"""Ray job entry point: ``ray job submit -- python jobs/mine.py --config configs/mine/X.yaml [key=value ...]``."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["mine", *sys.argv[1:]]))
