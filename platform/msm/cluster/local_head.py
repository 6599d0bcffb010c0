"""Start and stop a private single-node Ray head (own temp dir and free ports) for tests and local demos."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from msm.errors import MSMError

WORKER_PORTS = 41  # ports reserved for the head's worker processes


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def free_port_range(width: int, avoid: set[int], tries: int = 50) -> int:
    """First port of ``width`` consecutive ports, all free now and none in ``avoid``."""
    for _ in range(tries):
        (start,) = free_ports(1)
        block = range(start, start + width)
        if block[-1] < 65536 and not avoid.intersection(block) and all(_is_free(p) for p in block):
            return start
    raise MSMError(f"no {width} consecutive free ports found on 127.0.0.1 after {tries} tries; free some ports")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalHead:
    temp_dir: Path
    gcs_port: int
    dashboard_port: int
    env: dict[str, str]

    @property
    def job_address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def processes(self) -> list[psutil.Process]:
        """Processes of this head only: their command line names its temp dir or GCS address."""
        marks = (str(self.temp_dir), f"127.0.0.1:{self.gcs_port}")
        found = []
        for p in psutil.process_iter(["cmdline", "status"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["status"] != psutil.STATUS_ZOMBIE and any(m in cmd for m in marks) and p.pid != os.getpid():
                found.append(p)
        return found

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate this head's processes (never ``ray stop``: it kills every Ray cluster on the machine)."""
        for _ in range(5):  # the raylet may fork a worker while we sweep: repeat until nothing is left
            procs = self.processes()
            if not procs:
                return
            for p in procs:
                try:
                    p.terminate()
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(procs, timeout=timeout_s)
            for p in alive:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=timeout_s)


def start_local_head(
    num_cpus: int = 2,
    temp_root: str | None = None,
    timeout_s: float = 60.0,
    python: str | Path | None = None,
    base_env: dict[str, str] | None = None,
) -> LocalHead:
    """``ray start --head`` on 127.0.0.1 with free ports, auth disabled, its own temp dir; waits for the job API.

    ``python``: run the head (and so every Ray worker it starts) with this interpreter, as ``python -m
    ray.scripts.scripts start`` from the temp dir, instead of the ``ray`` script next to ``sys.executable``.
    ``base_env``: the environment to start from instead of ``os.environ`` (e.g. without ``PYTHONPATH``).
    """
    # Unix socket paths must stay short (< 108 chars): keep the temp dir directly under /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="msmray-", dir=temp_root or "/tmp"))
    ports = free_ports(9)
    gcs, dash, client, node_mgr, obj_mgr, agent_http, agent_grpc, metrics, rt_env = ports
    min_w = free_port_range(WORKER_PORTS, avoid=set(ports))
    env = {**(os.environ if base_env is None else base_env), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cmd = [str(Path(sys.executable).with_name("ray"))] if python is None else [str(python), "-m", "ray.scripts.scripts"]
    cmd = [
        *ray_cmd, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
        f"--ray-client-server-port={client}", f"--node-manager-port={node_mgr}", f"--object-manager-port={obj_mgr}",
        f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={rt_env}",
        f"--min-worker-port={min_w}", f"--max-worker-port={min_w + WORKER_PORTS - 1}",
        f"--num-cpus={num_cpus}", "--num-gpus=0", f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]
    head = LocalHead(temp_dir, gcs, dash, env)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s,
                              cwd=None if python is None else temp_dir)
    except subprocess.TimeoutExpired as e:
        head.stop()  # the daemons it started so far would otherwise outlive the caller
        raise MSMError(f"ray start --head not done after {timeout_s:.0f} s (see {temp_dir}/session_latest/logs)") from e
    if proc.returncode != 0:
        head.stop()
        raise MSMError(f"ray start --head failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    _wait_for_job_api(head, timeout_s)
    return head


def _wait_for_job_api(head: LocalHead, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{head.job_address}/api/version", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    head.stop()
    raise MSMError(f"Ray job API at {head.job_address} not up after {timeout_s:.0f} s (see {head.temp_dir}/session_latest/logs)")
