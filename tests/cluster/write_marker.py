"""Trivial job for the submission test: runs a Ray task and writes its result to --out."""

import argparse
from pathlib import Path

import ray

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    ray.init()
    value = ray.get(ray.remote(lambda x: x * 7).remote(6))
    Path(args.out).write_text(f"{Path(args.config).read_text().strip()} {value}\n")
    print("marker written", flush=True)
