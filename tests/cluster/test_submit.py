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
