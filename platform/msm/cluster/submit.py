"""Submit ``python jobs/<job>.py --config <config>`` to a Ray cluster's job API and follow it to the end."""

from __future__ import annotations

import asyncio
import importlib
import shlex
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

import yaml

from msm.config import load_config, parse_overrides
from msm.errors import MSMError
from msm.tune.config import load_sweep

DEFAULT_EXCLUDES = [".venv/", ".git/", "outputs/", "runs/", ".cache/", "__pycache__/", "*.pyc", ".pytest_cache/", "benchmarks/results/"]
DEFAULT_ENV_VARS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# Relative to the job's working dir (the cwd of its driver and workers): the uploaded package shadows an installed msm.
UPLOADED_PYTHONPATH = "platform"


def job_entrypoint(job: str, config: str | None, overrides: list[str] | None = None, python: str = "python") -> str:
    """The shell command the cluster runs: ``python jobs/<job>.py --config <config> [overrides]`` for the jobs that
    read a config, ``python jobs/<job>.py [arguments]`` for those that take flags (``build_index``, ``eval``); every
    argument shell-quoted."""
    if not job.replace("_", "").isalnum():
        raise MSMError(f"job name {job!r} must be a module name under jobs/ (e.g. 'pretrain', 'build_index')")
    head = [python, f"jobs/{job}.py"] + (["--config", config] if config else [])
    return " ".join(head[:1] + [shlex.quote(a) for a in [*head[1:], *(overrides or [])]])


def build_runtime_env(working_dir: str | Path, runtime_env_file: str | Path | None = None) -> dict[str, Any]:
    """The working dir with the standard excludes and offline env vars, merged with an optional YAML file's keys.

    The uploaded ``platform/`` comes first on ``sys.path`` of the driver and of every worker through
    ``env_vars.PYTHONPATH = "platform"`` (:data:`UPLOADED_PYTHONPATH`), a path relative to the working dir. Why that
    works, from Ray 2.60's documented runtime_env semantics: ``working_dir`` is unpacked on every node and "the Ray
    worker processes will be started in their node's copy of that directory" (the job's entrypoint runs there too),
    and ``env_vars`` are set for the driver and all workers of the job; Python makes each ``PYTHONPATH`` entry absolute
    against the start directory, so ``platform`` means ``<node's copy of the working dir>/platform`` in every process.
    Ray then orders ``PYTHONPATH`` as working dir, our entries, the cluster's own ``PYTHONPATH``; all of them precede
    site-packages, so an msm installed in the image (editable or not) is shadowed and a head without msm works.
    ``py_modules: [platform/msm]`` was not chosen: it uploads the package a second time next to the working dir, and
    a Ray bug was reported where tasks of a job using both ``working_dir`` and ``py_modules`` miss the ``py_modules``
    path (ray-project/ray PR 61080). A ``PYTHONPATH`` from the runtime env file is kept, after ``platform`` (":" as
    the separator: the cluster is Linux whatever the client is).
    """
    env: dict[str, Any] = {"working_dir": str(working_dir), "excludes": list(DEFAULT_EXCLUDES), "env_vars": dict(DEFAULT_ENV_VARS)}
    env["env_vars"]["PYTHONPATH"] = UPLOADED_PYTHONPATH
    if runtime_env_file is None:
        return env
    path = Path(runtime_env_file)
    extra = yaml.safe_load(path.read_text()) or {}
    if not isinstance(extra, dict):
        raise MSMError(f"runtime env file {path} must hold a YAML mapping (e.g. 'env_vars: {{A: b}}'), got {type(extra).__name__}")
    env["excludes"] += extra.pop("excludes", [])
    extra_vars = dict(extra.pop("env_vars", None) or {})
    user_path = extra_vars.pop("PYTHONPATH", None)
    env["env_vars"].update(extra_vars)
    if user_path:
        env["env_vars"]["PYTHONPATH"] = f"{UPLOADED_PYTHONPATH}:{user_path}"
    env.update(extra)
    return env


def check_job_exists(job: str, config: str | None, working_dir: str | Path) -> None:
    """Fail before submitting when the entry point or the config is missing from the uploaded working dir; the jobs
    that read a config (:data:`CONFIG_JOBS`) need one, the others take flags instead."""
    root = Path(working_dir)
    script = root / "jobs" / f"{job}.py"
    if not script.is_file():
        known = sorted(p.stem for p in (root / "jobs").glob("*.py") if not p.stem.startswith("_"))
        raise MSMError(f"job {job!r}: {script} does not exist; known jobs: {', '.join(known) or 'none'}")
    if config is None:
        if job in CONFIG_JOBS:
            raise MSMError(f"job {job!r} reads a config: pass --config (a path relative to the working dir {root})")
        return
    if job in FLAG_JOBS:
        raise MSMError(f"job {job!r} takes its verb's flags, not a config: leave out --config and pass them after "
                       f"--, e.g. msm submit --address URL {job} -- --help")
    if not (root / config).is_file():
        raise MSMError(f"config {config!r} not found under the working dir {root} (give a path relative to it)")


FLAG_JOBS = frozenset({"build_index", "eval"})  # msm index / msm eval: flags after --, no config
CONFIG_JOBS = {"mine": ("msm.data.config", "MineConfig"), "pretrain": ("msm.train.config", "PretrainConfig"),
               "finetune": ("msm.finetune.config", "FinetuneConfig"), "sweep": ("msm.tune.config", "SweepConfig")}


def check_overrides(job: str, config: str | None, overrides: list[str], working_dir: str | Path) -> None:
    """For the jobs that read a config, load it with the ``KEY=VALUE`` overrides here, before the upload: a
    misspelt key or a bad value fails on the client with the config's own message, not on the cluster."""


    if job not in CONFIG_JOBS or config is None:
        return
    pairs = [o for o in overrides if "=" in o and not o.startswith("-")]
    module, name = CONFIG_JOBS[job]
    path = Path(working_dir) / config
    if job == "sweep":

        load_sweep(path, parse_overrides(pairs))
        return
    load_config(path, getattr(importlib.import_module(module), name), parse_overrides(pairs))


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """The job API's URL has a scheme and answers (``/api/version``) within ``timeout_s``, or a message says what
    to fix (before anything is uploaded)."""

    if not address.startswith(("http://", "https://")):
        raise MSMError(f"--address {address}: give the Ray job API as a URL with its scheme, e.g. "
                       f"http://{address if ':' in address else address + ':8265'}")
    try:
        urllib.request.urlopen(address.rstrip("/") + "/api/version", timeout=timeout_s).read()
    except urllib.error.HTTPError as exc:  # it answers (token auth: 401): the client says more
        if exc.code >= 500:
            raise MSMError(f"--address {address}: the Ray job API answered {exc.code}; check the head's dashboard") from None
    except (urllib.error.URLError, OSError) as exc:
        raise MSMError(f"--address {address}: no Ray job API answers there within {timeout_s:g} s "
                       f"({getattr(exc, 'reason', exc)}); is the head up, and port 8265 reachable or "
                       "port-forwarded?") from None


async def _follow(client: Any, job_id: str, out: TextIO) -> None:
    async for lines in client.tail_job_logs(job_id):
        out.write(lines)
        out.flush()


def wait_for_job(client: Any, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> str:
    """Block until the job reaches a terminal state; return its status name."""
    from ray.job_submission import JobStatus  # lazy: ray

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = client.get_job_status(job_id)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        if deadline is not None and time.monotonic() > deadline:
            raise MSMError(f"job {job_id} still {status.value} after {timeout_s:.0f} s (raise --timeout or check the dashboard)")
        time.sleep(poll_s)


def submit_job(
    job: str,
    address: str,
    config: str | None,
    overrides: list[str] | None = None,
    working_dir: str | Path = ".",
    runtime_env_file: str | Path | None = None,
    wait: bool = True,
    python: str = "python",
    timeout_s: float | None = None,
    out: TextIO = sys.stdout,
) -> tuple[str, str]:
    """Submit a job; with ``wait`` stream its logs and return ``(job_id, final status)``, else ``(job_id, "PENDING")``."""
    from ray.job_submission import JobSubmissionClient  # lazy: ray

    check_job_exists(job, config, working_dir)
    check_overrides(job, config, overrides or [], working_dir)
    check_address(address)
    try:
        client = JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise MSMError(f"cannot reach the Ray job API at {address!r} ({e}); is the head up / port-forwarded to 8265?") from e
    job_id = client.submit_job(
        entrypoint=job_entrypoint(job, config, overrides, python),
        runtime_env=build_runtime_env(Path(working_dir).resolve(), runtime_env_file),
    )
    out.write(f"submitted {job_id} to {address}\n")
    if not wait:
        return job_id, "PENDING"
    asyncio.run(_follow(client, job_id, out))
    return job_id, wait_for_job(client, job_id, timeout_s)
