"""``msm submit JOB [KEY=VALUE ...] --address http://HEAD:8265 --config CONFIG`` (or ``msm submit --address URL JOB
-- FLAGS`` for build_index and eval): run jobs/JOB.py on a Ray cluster."""

from __future__ import annotations

import argparse

from msm.cluster.submit import submit_job
from msm.commands import deprecated


def register(subparsers) -> None:
    p = subparsers.add_parser("submit", help="submit jobs/JOB.py to a Ray cluster's job API and stream its logs")
    p.add_argument("job", metavar="JOB [KEY=VALUE ...]", nargs="+",
                   help="entry point under jobs/ without .py: mine, pretrain, finetune or sweep (they read --config), "
                        "then config overrides passed to the job, checked here against the config first, e.g. "
                        "optim.max_steps=10; build_index and eval take their verb's flags after --, the options first, "
                        "e.g. msm submit --address URL eval -- --model s3://b/run/export --tasks tatoeba "
                        "(default: none)")
    p.add_argument("--address", required=True, help="Ray job API URL, e.g. http://127.0.0.1:8265 (kubectl "
                                                    "port-forward); checked before the upload")
    p.add_argument("--config", default=None, help="config path relative to --working-dir (mine, pretrain, finetune, "
                                                  "sweep; default: none)")
    p.add_argument("--working-dir", default=".", help="directory uploaded as the job's working dir (default: .)")
    p.add_argument("--runtime-env", default=None, help="YAML with extra runtime_env keys (env_vars, pip, excludes, "
                                                       "...) (default: none)")
    p.add_argument("--python", default="python", help="interpreter the job runs with on the cluster (default: python)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for a terminal state (default: none)")
    p.add_argument("--no-wait", action="store_true", help="print the job id and return 0 without following the job "
                                                          "(default: follow its logs to the end)")
    p.add_argument("--set", dest="set_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="deprecated spelling of a positional KEY=VALUE (default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    job, *overrides = args.job  # one positional list: argparse cannot put a second one after the options
    if args.set_overrides:
        deprecated("--set KEY=VALUE", "KEY=VALUE after the job name (as the other verbs)")
    job_id, status = submit_job(
        job, args.address, args.config, [*args.set_overrides, *overrides], args.working_dir,
        args.runtime_env, wait=not args.no_wait, python=args.python, timeout_s=args.timeout,
    )
    if args.no_wait:
        return 0
    print(f"job {job_id} finished: {status}")
    return 0 if status == "SUCCEEDED" else 1
