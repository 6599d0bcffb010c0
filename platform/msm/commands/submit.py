"""``msm submit JOB --address http://HEAD:8265 --config CONFIG [--set key=value ...]``: run jobs/JOB.py on a Ray cluster."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("submit", help="submit jobs/JOB.py to a Ray cluster's job API and stream its logs")
    p.add_argument("job", help="entry point under jobs/ without .py, e.g. pretrain, mine, evaluate, sweep, build_index")
    p.add_argument("--address", required=True, help="Ray job API, e.g. http://127.0.0.1:8265 (kubectl port-forward)")
    p.add_argument("--config", required=True, help="config path relative to --working-dir")
    p.add_argument("--working-dir", default=".", help="directory uploaded as the job's working dir (default: .)")
    p.add_argument("--runtime-env", default=None, help="YAML with extra runtime_env keys (env_vars, pip, excludes, ...)")
    p.add_argument("--python", default="python", help="interpreter the job runs with on the cluster (default: python)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for a terminal state")
    p.add_argument("--no-wait", action="store_true", help="print the job id and return 0 without following the job")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override passed to the job, repeatable (e.g. --set train.steps=10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from msm.cluster.submit import submit_job

    job_id, status = submit_job(
        args.job, args.address, args.config, args.overrides, args.working_dir, args.runtime_env,
        wait=not args.no_wait, python=args.python, timeout_s=args.timeout,
    )
    if args.no_wait:
        return 0
    print(f"job {job_id} finished: {status}")
    return 0 if status == "SUCCEEDED" else 1
