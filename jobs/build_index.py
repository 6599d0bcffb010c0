"""Ray job entry point: ``ray job submit -- python jobs/build_index.py --corpus C --model M --out DIR``."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["index", *sys.argv[1:]]))
