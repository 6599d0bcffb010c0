"""Ray job entry point: ``ray job submit -- python jobs/pretrain.py --config configs/pretrain/X.yaml [key=value ...]``."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
