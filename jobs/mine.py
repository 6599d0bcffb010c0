"""Ray job entry point ``python jobs/mine.py --config configs/mine/X.yaml [key=value ...]``; submit with ``msm submit`` or
``ray job submit`` as in docs/deploy.md §7 (both make the job run the uploaded platform/msm)."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["mine", *sys.argv[1:]]))
