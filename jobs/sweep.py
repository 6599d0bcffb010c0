"""Ray job entry point: ``ray job submit -- python jobs/sweep.py --config configs/sweep/X.yaml [--resume] [key=value ...]``."""

import sys

from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
