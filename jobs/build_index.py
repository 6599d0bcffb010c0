"""Ray job entry point ``python jobs/build_index.py --corpus C --model M --out DIR``; submit with
``ray job submit`` as in docs/deploy.md §7 (its runtime env makes the job run the uploaded platform/msm)."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["index", *sys.argv[1:]]))
