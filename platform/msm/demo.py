"""``make demo``: prepare the offline model, then a short MSM training run on real multilingual text."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from msm.model.smoke import default_data_dir, smoke_run
from msm.models.e5_small import prepare_e5_small


def main() -> int:
    print("[1/2] preparing the offline multilingual-e5-small model")
    print(f"      {prepare_e5_small()}")
    data_dir = default_data_dir()
    print(f"[2/2] MSM smoke run on real documents (data dir: {data_dir or 'none, using the Bible wheel'})")
    losses = smoke_run("e5-small", data_dir=Path(data_dir) if data_dir else None)
    n = min(4, len(losses))
    falling = sum(losses[-n:]) < sum(losses[:n])
    print(f"loss {'fell' if falling else 'did NOT fall'}: first {n} steps {sum(losses[:n]) / n:.3f} → "
          f"last {n} steps {sum(losses[-n:]) / n:.3f}")
    return 0 if falling else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
