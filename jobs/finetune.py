"""Ray job entry point: ``ray job submit -- python jobs/finetune.py --config configs/finetune/X.yaml [key=value ...]``."""

import sys

from msm.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
