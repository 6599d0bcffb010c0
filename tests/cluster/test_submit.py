"""Real job submission to a private ``ray start --head`` (auth disabled, free ports, own temp dir) whose Python lacks msm."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from msm.cluster.local_head import start_local_head
from msm.cluster.submit import build_runtime_env, job_entrypoint, submit_job
from msm.errors import MSMError

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


def python_without_msm(root: Path) -> Path:
    """A venv at ``root`` that reaches this venv's packages (ray, torch, ...) as a plain ``sys.path`` entry: the
    ``.pth`` files there, among them the editable install of msm, are not processed, so ``import msm`` fails."""
    import site
    import sysconfig
    import venv

    venv.EnvBuilder(symlinks=True, with_pip=False).create(root)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    (purelib / "project_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return root / "bin" / "python"


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory):
    """``(python, env)``: an interpreter and environment in which msm is not importable (checked here)."""
    from msm.data.readers import default_data_dir

    python = python_without_msm(tmp_path_factory.mktemp("nomsm") / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The uploaded package sits in Ray's session dir, so its ``../shared/data`` default is gone: name the data dir.
    env["MSM_DATA_DIR"] = str(default_data_dir())
    probe = subprocess.run([str(python), "-c", "import msm"], env=env, cwd=python.parent, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'msm'" in probe.stderr, "the head's Python must not see msm"
    return python, env


@pytest.fixture(scope="module")
def head(bare_env):
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    python, env = bare_env
    h = start_local_head(num_cpus=2, python=python, base_env=env, timeout_s=180)  # head and workers: no msm
    yield h
    h.stop()
    assert not h.processes(), "head processes survived teardown"
    shutil.rmtree(h.temp_dir, ignore_errors=True)
    if old is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = old


def test_entrypoint_and_runtime_env(tmp_path):
    assert job_entrypoint("pretrain", "configs/pretrain/tiny-cpu.yaml", ["train.steps=2"]) == (
        "python jobs/pretrain.py --config configs/pretrain/tiny-cpu.yaml train.steps=2"
    )
    with pytest.raises(MSMError, match="module name under jobs/"):
        job_entrypoint("../evil", "c.yaml")
    extra = tmp_path / "env.yaml"
    extra.write_text("env_vars: {A: b}\nexcludes: [data/]\npip: [tqdm]\n")
    assert build_runtime_env("/repo")["env_vars"]["PYTHONPATH"] == "platform"  # the uploaded package first
    env = build_runtime_env("/repo", extra)
    assert env["env_vars"] == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                               "PYTHONPATH": "platform", "A": "b"}
    assert {".venv/", ".git/", "outputs/", "data/"} <= set(env["excludes"]) and env["pip"] == ["tqdm"]
    extra.write_text("env_vars: {PYTHONPATH: /opt/extra}\n")  # a user's PYTHONPATH is kept, after the upload
    assert build_runtime_env("/repo", extra)["env_vars"]["PYTHONPATH"] == "platform:/opt/extra"
    extra.write_text("- not a mapping\n")
    with pytest.raises(MSMError, match="must hold a YAML mapping"):
        build_runtime_env("/repo", extra)


def test_job_scripts_put_the_checkouts_platform_first(tmp_path):
    """Every ``jobs/*.py`` imports ``_path`` before msm, and ``_path`` makes ``<script dir>/../platform`` win over an
    installed msm (here: this venv's editable install), so a bare ``ray job submit`` driver runs the uploaded code."""
    jobs = sorted(p for p in (REPO / "jobs").glob("*.py") if not p.name.startswith("_"))
    assert {p.stem for p in jobs} >= {"pretrain", "mine", "sweep", "build_index"}
    for job in jobs:
        lines = [ln for ln in job.read_text().splitlines() if ln.startswith(("import ", "from "))]
        first_msm = next(i for i, ln in enumerate(lines) if ln.split()[1].split(".")[0] == "msm")
        assert any(ln.startswith("import _path") for ln in lines[:first_msm]), f"{job.name}: import _path before msm"
    (tmp_path / "jobs").mkdir()
    shutil.copy(REPO / "jobs" / "_path.py", tmp_path / "jobs")
    (tmp_path / "jobs" / "probe.py").write_text("import _path\nimport msm\nprint(msm.__file__)\n")
    (tmp_path / "platform" / "msm").mkdir(parents=True)
    (tmp_path / "platform" / "msm" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "jobs/probe.py"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == tmp_path / "platform" / "msm" / "__init__.py"


def test_missing_job_is_named_before_submitting(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "mine.py").write_text("")
    with pytest.raises(MSMError, match=r"job 'nope'.*known jobs: mine"):
        submit_job("nope", "http://127.0.0.1:1", "c.yaml", working_dir=tmp_path)


@pytest.mark.ray  # a private `ray start --head` (the `head` fixture)
@pytest.mark.timeout(600)
def test_submit_trivial_job_succeeds_and_failure_is_reported(head, tmp_path):
    work = tmp_path / "work"
    (work / "jobs").mkdir(parents=True)
    shutil.copy(HERE / "write_marker.py", work / "jobs" / "marker.py")
    (work / "marker.yaml").write_text("hello")
    out = tmp_path / "marker.txt"
    log = io.StringIO()
    job_id, status = submit_job(
        "marker", head.job_address, "marker.yaml", [f"--out={out}"], work, python=sys.executable, timeout_s=200, out=log
    )
    assert status == "SUCCEEDED", log.getvalue()
    assert out.read_text() == "hello 42\n"
    assert "marker written" in log.getvalue() and job_id in log.getvalue()
    # A failing job (unknown flag) must end FAILED, which `msm submit` turns into exit code 1.
    _, status = submit_job("marker", head.job_address, "marker.yaml", ["--bogus"], work, python=sys.executable,
                           timeout_s=120, out=io.StringIO())
    assert status == "FAILED"
    # The CLI verb maps the terminal status to the exit code (0 iff SUCCEEDED).
    from msm.cli import main

    argv = ["submit", "marker", "--address", head.job_address, "--config", "marker.yaml", "--working-dir", str(work),
            "--python", sys.executable, "--timeout", "120"]
    assert main([*argv, f"--set=--out={tmp_path / 'cli.txt'}"]) == 0 and (tmp_path / "cli.txt").is_file()
    assert main([*argv, "--set=--bogus"]) == 1
    assert main(["submit", "nope", "--address", head.job_address, "--config", "marker.yaml", "--working-dir", str(work)]) == 2


@pytest.mark.ray
@pytest.mark.timeout(900)  # ~2 min idle
def test_submitted_two_worker_pretraining_survives_a_crash(head, tmp_path):
    """The shipped job on a cluster: DDP on gloo with 2 workers, both raise at step 3 (``run.fail_at_step``); Ray
    Train restarts the worker group (``run.max_failures=1``), the loop restores the step-2 checkpoint, and the job
    succeeds with every step logged once. (One fit: each costs ~1 min of worker start on 2 cores.) The corpus is
    built here first, in process, and the job reuses it: its Ray Data build is tested in tests/train/test_corpus.py,
    and on this 2-core head it would add a minute of operator start to the drill."""
    import json

    from msm.config import load_config, parse_overrides
    from msm.model.msm import MSMModel
    from msm.train.config import PretrainConfig
    from msm.train.corpus import build_local

    for shipped in ("jobs/pretrain.py", "configs/pretrain/tiny-cpu.yaml"):  # deleted: a failure, never a skip
        assert (REPO / shipped).is_file(), f"{shipped} is missing"
    out, corpus = tmp_path / "pretrain", tmp_path / "corpus"  # a corpus built ahead, as a sweep shares one
    build_local(load_config(REPO / "configs/pretrain/tiny-cpu.yaml", PretrainConfig,
                            parse_overrides([f"run.output_dir={out}", f"data.corpus_dir={corpus}"])),
                log=lambda *_: None)
    log = io.StringIO()
    _, status = submit_job("pretrain", head.job_address, "configs/pretrain/tiny-cpu.yaml",
                           [f"run.output_dir={out}", f"data.corpus_dir={corpus}", "run.num_workers=2",
                            "run.cpus_per_worker=0.5",
                            "run.fail_at_step=3", "run.max_failures=1"],
                           REPO, python=sys.executable, timeout_s=800, out=log)
    assert status == "SUCCEEDED", log.getvalue()[-3000:]
    assert "corpus: reusing" in log.getvalue(), log.getvalue()[-3000:]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics] == [1, 2, 3, 4]  # step 3 redone from the step-2 checkpoint, logged once
    assert "val_score" in metrics[-1] and "val_score" not in metrics[0]
    assert (out / "export" / "config.json").is_file() and (out / "export-st" / "modules.json").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    ckpts = sorted(p.parent for p in (out / "tiny").glob("checkpoint_*/trainer_state.json"))
    assert sorted(json.loads((c / "trainer_state.json").read_text())["step"] for c in ckpts) == [2, 4]
    for c in ckpts:  # every kept checkpoint loads
        assert any(f.suffix == ".safetensors" for f in (c / "model").iterdir())
        MSMModel.load(c / "model")


def _upload_with_an_edit(work: Path, token: str) -> None:
    """A checkout to upload: platform/msm (with one local edit, ``msm.LOCAL_EDIT``), jobs/_path.py, the report job."""
    shutil.copytree(REPO / "platform" / "msm", work / "platform" / "msm", ignore=shutil.ignore_patterns("__pycache__"))
    init = work / "platform" / "msm" / "__init__.py"
    init.write_text(init.read_text() + f"\nLOCAL_EDIT = {token!r}\n")
    (work / "jobs").mkdir()
    shutil.copy(REPO / "jobs" / "_path.py", work / "jobs")
    shutil.copy(HERE / "report_msm.py", work / "jobs" / "report_msm.py")
    (work / "report.yaml").write_text("{}\n")


def _assert_uploaded(report: dict, token: str, head) -> None:
    for who in ("driver", "task"):  # the job's entrypoint process and a Ray worker
        r = report[who]
        cwd = Path(r["cwd"])
        assert Path(r["file"]) == cwd / "platform" / "msm" / "__init__.py", (who, r)
        assert cwd.is_relative_to(head.temp_dir) and cwd.parent.name == "working_dir_files", (who, r)  # Ray's copy
        assert r["edit"] == token, (who, r)  # the local edit reached the cluster
    assert report["driver"]["cwd"] == report["task"]["cwd"]


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_submitted_code_runs_on_a_head_without_msm(head, bare_env, tmp_path):
    """The head's Python has no msm (``bare_env``); the job's driver (run by that Python too) and a Ray task import
    the uploaded ``platform/msm``, local edit included: through ``msm submit`` and through the ``ray job submit``
    line documented in docs/deploy.md (its options as written there, only the address and entrypoint replaced)."""
    python, _ = bare_env
    work = tmp_path / "work"
    token = uuid.uuid4().hex
    _upload_with_an_edit(work, token)
    out = tmp_path / "submit.json"
    log = io.StringIO()
    _, status = submit_job("report_msm", head.job_address, "report.yaml", [f"--out={out}"], work, python=str(python),
                           timeout_s=120, out=log)
    assert status == "SUCCEEDED", log.getvalue()[-3000:]
    _assert_uploaded(json.loads(out.read_text()), token, head)

    documented = next(ln for ln in (REPO / "docs" / "deploy.md").read_text().splitlines() if ln.startswith("ray job submit"))
    argv = shlex.split(documented)
    options = argv[:argv.index("--")]
    assert "--runtime-env-json" in options and options[options.index("--working-dir") + 1] == ".", documented
    options[options.index("--address") + 1] = head.job_address
    out = tmp_path / "cli.json"
    ray_bin = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.run([ray_bin, *options[1:], "--", str(python), "jobs/report_msm.py", "--config", "report.yaml",
                           f"--out={out}"], cwd=work, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _assert_uploaded(json.loads(out.read_text()), token, head)


# ---- what submit builds and checks, without a cluster: a loopback HTTP server for the address check, and a recording
# stand-in for Ray's JobSubmissionClient (the three calls submit_job makes of it, with Ray's keyword-only signature) --

import http.server  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from msm.cluster import submit as submit_module  # noqa: E402
from msm.cluster.submit import (  # noqa: E402
    DEFAULT_ENV_VARS, DEFAULT_EXCLUDES, check_address, check_job_exists, check_overrides, wait_for_job,
)


class ApiServer:
    """``/api/version`` on 127.0.0.1 answering ``status`` after ``delay_s``; ``paths``: what was asked."""

    def __init__(self) -> None:
        self.status, self.delay_s, self.paths = 200, 0.0, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.paths.append(self.requestline.split()[1])  # as sent (self.path collapses "//")
                if server.delay_s:
                    time.sleep(server.delay_s)
                body = b'{"version": "4", "ray_version": "2.60.0"}'
                try:
                    self.send_response(server.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api():
    server = ApiServer()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Out(io.StringIO):
    """An output stream that counts its flushes (logs are flushed as they come)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())
        super().flush()


class FakeJobs:
    """Ray's JobSubmissionClient as submit_job uses it: records what is submitted, plays ``statuses`` (the last one
    repeats) and yields ``logs``."""

    made: list = []
    statuses: list[str] = ["SUCCEEDED"]
    logs: list[str] = []
    error: Exception | None = None

    def __init__(self, address: str) -> None:
        if FakeJobs.error is not None:
            raise FakeJobs.error
        self.address, self.submitted, self.asked, self.tailed = address, [], [], []
        FakeJobs.made.append(self)

    def submit_job(self, *, entrypoint: str, runtime_env: dict | None = None, **rest) -> str:
        self.submitted.append({"entrypoint": entrypoint, "runtime_env": runtime_env, **rest})
        return "raysubmit_test1"

    def get_job_status(self, job_id: str):
        from ray.job_submission import JobStatus

        self.asked.append((job_id, time.monotonic()))
        assert len(self.asked) <= 200, "polled on past its timeout"  # a fake job never ends: bound the wait
        return JobStatus(FakeJobs.statuses[min(len(self.asked), len(FakeJobs.statuses)) - 1])

    async def tail_job_logs(self, job_id: str):
        self.tailed.append(job_id)
        for chunk in FakeJobs.logs:
            yield chunk


@pytest.fixture
def jobs(monkeypatch):
    import ray.job_submission

    FakeJobs.made, FakeJobs.statuses, FakeJobs.logs, FakeJobs.error = [], ["SUCCEEDED"], [], None
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeJobs)
    return FakeJobs


@pytest.fixture
def work(tmp_path):
    """A working dir with jobs/marker.py and its config."""
    root = tmp_path / "work"
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "marker.py").write_text("")
    (root / "marker.yaml").write_text("hello")
    return root


def test_entrypoint_is_the_python_the_script_the_config_and_the_overrides_in_order():
    assert job_entrypoint("build_index", "c.yaml") == "python jobs/build_index.py --config c.yaml"
    assert job_entrypoint("mine", "configs/m.yaml", ["a=1", "--out=/x", "b.c=2"], python="/opt/py/bin/python3") == \
        "/opt/py/bin/python3 jobs/mine.py --config configs/m.yaml a=1 --out=/x b.c=2"
    for bad in ("pre-train", "", "_", "__", "jobs/mine", "mine.py", "a b"):
        with pytest.raises(MSMError) as err:
            job_entrypoint(bad, "c.yaml")
        assert str(err.value) == (f"job name {bad!r} must be a module name under jobs/ (e.g. 'pretrain', "
                                  "'build_index')")


def test_runtime_env_without_a_file_is_the_working_dir_the_excludes_and_the_offline_env(tmp_path):
    env = build_runtime_env(tmp_path)
    assert env == {"working_dir": str(tmp_path),
                   "excludes": [".venv/", ".git/", "outputs/", "runs/", ".cache/", "__pycache__/", "*.pyc",
                                ".pytest_cache/", "benchmarks/results/"],
                   "env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                                "PYTHONPATH": "platform"}}
    assert isinstance(env["working_dir"], str)


def test_a_runtime_env_file_is_merged_over_the_defaults_without_changing_them(tmp_path):
    extra = tmp_path / "env.yaml"
    extra.write_text("env_vars: {HF_HUB_OFFLINE: '0', B: c, PYTHONPATH: /opt/a:/opt/b}\nexcludes: [data/, big/]\n"
                     "pip: [tqdm]\npy_modules: [m.zip]\nworking_dir: /elsewhere\n")
    env = build_runtime_env("/repo", str(extra))  # a str path works as a Path
    assert env == {"working_dir": "/elsewhere",  # the file's keys win
                   "excludes": [*DEFAULT_EXCLUDES, "data/", "big/"],
                   "env_vars": {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                                "PYTHONPATH": "platform:/opt/a:/opt/b", "B": "c"},
                   "pip": ["tqdm"], "py_modules": ["m.zip"]}
    # the module's defaults are copied, never extended in place: the next job gets them unchanged
    assert DEFAULT_EXCLUDES == [".venv/", ".git/", "outputs/", "runs/", ".cache/", "__pycache__/", "*.pyc",
                                ".pytest_cache/", "benchmarks/results/"]
    assert DEFAULT_ENV_VARS == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    assert build_runtime_env("/repo") == build_runtime_env("/repo", None)
    assert build_runtime_env("/repo")["excludes"] == DEFAULT_EXCLUDES


@pytest.mark.parametrize("text", ["", "# nothing\n", "env_vars: null\n", "env_vars: {PYTHONPATH: ''}\n",
                                  "env_vars: {PYTHONPATH: null}\n", "excludes: []\n"])
def test_an_empty_runtime_env_file_changes_nothing(tmp_path, text):
    extra = tmp_path / "env.yaml"
    extra.write_text(text)
    assert build_runtime_env("/repo", extra) == build_runtime_env("/repo")


@pytest.mark.parametrize("text, kind", [("- a\n", "list"), ("just text\n", "str"), ("3\n", "int")])
def test_a_runtime_env_file_that_is_no_mapping_is_named(tmp_path, text, kind):
    extra = tmp_path / "env.yaml"
    extra.write_text(text)
    with pytest.raises(MSMError) as err:
        build_runtime_env("/repo", extra)
    assert str(err.value) == (f"runtime env file {extra} must hold a YAML mapping (e.g. 'env_vars: {{A: b}}'), "
                              f"got {kind}")


def test_check_job_exists_names_the_known_jobs_or_the_missing_config(tmp_path):
    with pytest.raises(MSMError) as err:  # no jobs/ at all
        check_job_exists("mine", "c.yaml", tmp_path)
    assert str(err.value) == f"job 'mine': {tmp_path / 'jobs' / 'mine.py'} does not exist; known jobs: none"
    (tmp_path / "jobs").mkdir()
    for name in ("sweep.py", "_path.py", "mine.py", "notes.txt", "build_index.py"):
        (tmp_path / "jobs" / name).write_text("")
    (tmp_path / "jobs" / "dir.py").mkdir()  # a folder named like a script is no job
    with pytest.raises(MSMError, match=f"^job 'dir': {tmp_path / 'jobs' / 'dir.py'} does not exist; known jobs: "):
        check_job_exists("dir", "c.yaml", str(tmp_path))
    (tmp_path / "jobs" / "dir.py").rmdir()
    with pytest.raises(MSMError) as err:
        check_job_exists("nope", "c.yaml", str(tmp_path))
    assert str(err.value) == (f"job 'nope': {tmp_path / 'jobs' / 'nope.py'} does not exist; known jobs: build_index, "
                              "mine, sweep")
    with pytest.raises(MSMError) as err:
        check_job_exists("mine", "configs/c.yaml", tmp_path)
    assert str(err.value) == (f"config 'configs/c.yaml' not found under the working dir {tmp_path} (give a path "
                              "relative to it)")
    (tmp_path / "configs" / "c.yaml").mkdir(parents=True)  # a folder is no config
    with pytest.raises(MSMError, match="config 'configs/c.yaml' not found"):
        check_job_exists("mine", "configs/c.yaml", tmp_path)
    (tmp_path / "c.yaml").write_text("{}")
    check_job_exists("mine", "c.yaml", tmp_path)


CONFIGS = {"mine": ("configs/mine/tiny-cpu.yaml", "pair.k=3", "MineConfig"),
           "pretrain": ("configs/pretrain/tiny-cpu.yaml", "optim.max_steps=3", "PretrainConfig"),
           "finetune": ("configs/finetune/tiny-cpu.yaml", "train.lr=0.5", "FinetuneConfig"),
           "sweep": ("configs/tune/tiny-cpu.yaml", "num_samples=3", "SweepConfig")}


@pytest.mark.parametrize("job", list(CONFIGS))
def test_overrides_are_checked_against_the_jobs_own_config(job):
    """Each job's config is loaded as its own class: its key passes, the other jobs' keys are unknown to it."""
    config, key, cls = CONFIGS[job]
    check_overrides(job, config, [key, "--out=/tmp/x", "--verbose"], REPO)  # flags are the job's, not the config's
    for other, (_, other_key, _) in CONFIGS.items():
        if other != job and not (job == "finetune" and other_key.startswith("train.")):
            with pytest.raises(MSMError) as err:
                check_overrides(job, config, [key, other_key], REPO)
            section = other_key.split("=")[0].split(".")[0]  # pair, optim, train, num_samples
            assert str(err.value).startswith(f"{REPO / config}: {section}: unknown key for {cls} (known keys: ")


def test_jobs_without_a_config_class_are_not_checked(tmp_path):
    check_overrides("build_index", "missing.yaml", ["no.such.key=1"], tmp_path)
    check_overrides("eval", None, ["--model", "m"], tmp_path)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "eval.py").write_text("")
    (tmp_path / "jobs" / "mine.py").write_text("")
    check_job_exists("eval", None, tmp_path)  # a flag job needs no config
    with pytest.raises(MSMError, match="job 'mine' reads a config: pass --config"):
        check_job_exists("mine", None, tmp_path)
    with pytest.raises(MSMError, match="job 'eval' takes its verb's flags, not a config: leave out --config"):
        check_job_exists("eval", "c.yaml", tmp_path)
    assert job_entrypoint("eval", None, ["--model", "s3://b/run 1/export", "--tasks", "tatoeba"]) == (
        "python jobs/eval.py --model 's3://b/run 1/export' --tasks tatoeba")  # shell-quoted
    with pytest.raises(MSMError, match="pair.kk: unknown key for PairConfig"):  # the same for a job with a config
        check_overrides("mine", "configs/mine/tiny-cpu.yaml", ["pair.kk=1"], REPO)
    with pytest.raises(MSMError, match="num_samples"):  # a sweep's values are checked as a sweep (an int)
        check_overrides("sweep", "configs/tune/tiny-cpu.yaml", ["num_samples=many"], REPO)
    with pytest.raises(MSMError, match="nosuch://b/sweep: not a usable URI"):  # and the sweep is built (load_sweep)
        check_overrides("sweep", "configs/tune/tiny-cpu.yaml", ["output_dir=nosuch://b/sweep"], REPO)


def test_check_address_wants_a_scheme_and_suggests_the_dashboard_port():
    with pytest.raises(MSMError) as err:
        check_address("head")
    assert str(err.value) == "--address head: give the Ray job API as a URL with its scheme, e.g. http://head:8265"
    with pytest.raises(MSMError) as err:
        check_address("10.0.0.1:9000")
    assert str(err.value).endswith("e.g. http://10.0.0.1:9000")


def test_check_address_asks_the_version_endpoint(api):
    check_address(api.url + "/")
    check_address(api.url + "/rayX/")  # a job API behind a path (a reverse proxy)
    assert api.paths == ["/api/version", "/rayX/api/version"]  # one slash, whatever the address ends with
    for code in (401, 403, 404, 499):  # it answers (token auth, a proxy): the client says more
        api.status = code
        check_address(api.url)
    for code in (500, 503):
        api.status = code
        with pytest.raises(MSMError) as err:
            check_address(api.url)
        assert str(err.value) == f"--address {api.url}: the Ray job API answered {code}; check the head's dashboard"
        assert err.value.__cause__ is None and err.value.__suppress_context__


def test_check_address_gives_up_after_its_timeout(api):
    api.delay_s = 1.5
    t0 = time.monotonic()
    with pytest.raises(MSMError) as err:
        check_address(api.url, timeout_s=0.2)
    assert time.monotonic() - t0 < 1.2
    assert str(err.value) == (f"--address {api.url}: no Ray job API answers there within 0.2 s (timed out); is the "
                              "head up, and port 8265 reachable or port-forwarded?")
    assert err.value.__suppress_context__


def test_check_address_names_a_refused_connection_and_the_default_timeout():
    import errno

    for scheme in ("http", "https"):  # both schemes pass the first check
        url = f"{scheme}://127.0.0.1:{closed_port()}"
        with pytest.raises(MSMError) as err:
            check_address(url)
        refused = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))  # the URLError's reason
        assert str(err.value) == (f"--address {url}: no Ray job API answers there within 5 s ({refused}); is the head "
                                  "up, and port 8265 reachable or port-forwarded?")


def test_wait_for_job_polls_until_a_terminal_state(jobs, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(submit_module.time, "sleep", sleeps.append)
    for last in ("SUCCEEDED", "FAILED", "STOPPED"):
        jobs.statuses = ["PENDING", "RUNNING", "RUNNING", last]
        client = FakeJobs("http://x")
        assert wait_for_job(client, "raysubmit_1") == last
        assert [j for j, _ in client.asked] == ["raysubmit_1"] * 4
    assert sleeps == [1.0] * 9  # the default poll: 1 s between asks, none after the last
    sleeps.clear()
    jobs.statuses = ["RUNNING", "SUCCEEDED"]
    assert wait_for_job(FakeJobs("http://x"), "j", timeout_s=60, poll_s=0.25) == "SUCCEEDED"
    assert sleeps == [0.25]
    sleeps.clear()
    jobs.statuses = ["FAILED"]
    assert wait_for_job(FakeJobs("http://x"), "j", timeout_s=0) == "FAILED"  # terminal at once: no timeout
    assert sleeps == []


def test_wait_for_job_gives_up_after_its_timeout(jobs):
    jobs.statuses = ["RUNNING"]
    client = FakeJobs("http://x")
    t0 = time.monotonic()
    with pytest.raises(MSMError) as err:
        wait_for_job(client, "raysubmit_9", timeout_s=0.3, poll_s=0.05)
    assert time.monotonic() - t0 >= 0.3
    assert str(err.value) == "job raysubmit_9 still RUNNING after 0 s (raise --timeout or check the dashboard)"
    times = [t for _, t in client.asked]
    assert 3 <= len(times) <= 12 and min(b - a for a, b in zip(times, times[1:])) >= 0.045
    jobs.statuses = ["PENDING"]
    with pytest.raises(MSMError, match="^job j still PENDING after 0 s"):
        wait_for_job(FakeJobs("http://x"), "j", timeout_s=0)  # past the deadline at the first ask: no sleep


def test_submit_job_sends_the_entrypoint_and_runtime_env_then_follows_the_logs(api, jobs, work, tmp_path,
                                                                               monkeypatch):
    extra = tmp_path / "env.yaml"
    extra.write_text("env_vars: {A: b}\npip: [tqdm]\n")
    jobs.statuses, jobs.logs = ["RUNNING", "SUCCEEDED"], ["line 1\n", "line 2\nline 3\n"]
    monkeypatch.chdir(work.parent)  # a relative working dir is sent resolved
    sleeps: list[float] = []
    monkeypatch.setattr(submit_module.time, "sleep", sleeps.append)
    out = Out()
    got = submit_job("marker", api.url, "marker.yaml", ["--out=/tmp/o", "k=v"], "work", extra, python="/py",
                     timeout_s=30, out=out)
    assert got == ("raysubmit_test1", "SUCCEEDED")
    (client,) = jobs.made
    assert client.address == api.url and api.paths == ["/api/version"]  # the address was checked first
    assert client.submitted == [{"entrypoint": "/py jobs/marker.py --config marker.yaml --out=/tmp/o k=v",
                                 "runtime_env": build_runtime_env(str(work.resolve()), extra)}]
    assert client.submitted[0]["runtime_env"]["env_vars"]["A"] == "b"  # the runtime env file is honoured
    assert client.tailed == ["raysubmit_test1"] and [j for j, _ in client.asked] == ["raysubmit_test1"] * 2
    assert sleeps == [1.0]  # polled at wait_for_job's default pace
    assert out.getvalue() == f"submitted raysubmit_test1 to {api.url}\nline 1\nline 2\nline 3\n"
    assert out.flushed[-2:] == [f"submitted raysubmit_test1 to {api.url}\nline 1\n", out.getvalue()]  # as they come


def test_submit_job_without_wait_returns_pending_at_once(api, jobs, work, monkeypatch):
    monkeypatch.setattr(submit_module.time, "sleep", lambda s: None)  # were it followed, the fake job's bound trips
    jobs.statuses = ["RUNNING"]  # it would never end
    out = io.StringIO()
    assert submit_job("marker", api.url, "marker.yaml", working_dir=work, wait=False, out=out) == \
        ("raysubmit_test1", "PENDING")
    (client,) = jobs.made
    assert client.tailed == [] and client.asked == []
    assert client.submitted[0]["entrypoint"] == "python jobs/marker.py --config marker.yaml"
    assert client.submitted[0]["runtime_env"] == build_runtime_env(work.resolve())
    assert out.getvalue() == f"submitted raysubmit_test1 to {api.url}\n"


def test_submit_job_passes_its_timeout_on(api, jobs, work, monkeypatch):
    monkeypatch.setattr(submit_module.time, "sleep", lambda s: None)  # a wait without its timeout fails fast
    jobs.statuses = ["RUNNING"]
    with pytest.raises(MSMError, match="^job raysubmit_test1 still RUNNING after 0 s"):
        submit_job("marker", api.url, "marker.yaml", working_dir=work, timeout_s=0, out=io.StringIO())


@pytest.mark.parametrize("error", [ConnectionError("refused"), RuntimeError("version mismatch"),
                                   ValueError("bad url")])
def test_a_client_that_cannot_connect_is_a_user_error(api, jobs, work, error):
    jobs.error = error
    with pytest.raises(MSMError) as err:
        submit_job("marker", api.url, "marker.yaml", working_dir=work, out=io.StringIO())
    assert str(err.value) == (f"cannot reach the Ray job API at {api.url!r} ({error}); is the head up / "
                              "port-forwarded to 8265?")
    assert err.value.__cause__ is error


def test_submit_job_checks_the_job_then_the_overrides_then_the_address(jobs, tmp_path):
    dead = f"http://127.0.0.1:{closed_port()}"
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "mine.py").write_text("")
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "mine" / "tiny-cpu.yaml", tmp_path / "configs" / "m.yaml")
    with pytest.raises(MSMError, match="^job 'nope'"):  # before the overrides and the address
        submit_job("nope", dead, "configs/m.yaml", ["pair.kk=1"], tmp_path)
    with pytest.raises(MSMError, match="pair.kk: unknown key"):  # before the address
        submit_job("mine", dead, "configs/m.yaml", ["pair.kk=1"], tmp_path)
    with pytest.raises(MSMError, match="no Ray job API answers there"):
        submit_job("mine", dead, "configs/m.yaml", ["pair.k=2"], tmp_path)
    assert jobs.made == []  # nothing was submitted


def test_wait_for_job_gives_up_once_the_timeout_has_passed(jobs, monkeypatch):
    """On a clock that moves only by the polls' sleeps: asked at 0, 1, 2, 3 s (3 s is not past a 3 s timeout), 4 s."""
    now = [100.0]
    monkeypatch.setattr(submit_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(submit_module.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    jobs.statuses = ["RUNNING"]
    client = FakeJobs("http://x")
    with pytest.raises(MSMError, match="^job j still RUNNING after 3 s "):
        wait_for_job(client, "j", timeout_s=3.0)
    assert [t for _, t in client.asked] == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_submit_job_uploads_the_current_folder_by_default(api, jobs, work, monkeypatch):
    monkeypatch.chdir(work)
    submit_job("marker", api.url, "marker.yaml", wait=False, out=io.StringIO())
    assert jobs.made[0].submitted[0]["runtime_env"]["working_dir"] == str(work.resolve())
