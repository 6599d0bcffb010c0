"""Job for the submission test: writes which msm the driver and a Ray task import, as JSON, to --out."""

import _path  # noqa: F401  (as every jobs/*.py: the uploaded platform/ first on the driver's sys.path)
import argparse
import json
import os
from pathlib import Path

import ray


def where() -> dict:
    import msm

    return {"file": msm.__file__, "cwd": os.getcwd(), "edit": getattr(msm, "LOCAL_EDIT", None)}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    ray.init()
    report = {"driver": where(), "task": ray.get(ray.remote(where).remote())}
    Path(args.out).write_text(json.dumps(report))
    print("msm report written", flush=True)
