"""Ray job entry point ``python jobs/eval.py --model M --tasks T --data-dir DIR --out LOCATION`` (``msm eval``'s flags;
the model, the data and the report may be URIs); submit with ``msm submit --address URL eval -- FLAGS``."""

import sys

import _path  # noqa: F401  (first: the uploaded platform/msm, not an installed one)
from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
