"""A misconfigured object store names the location and the setting to fix (a real S3-compatible server, SeaweedFS
on loopback, which checks credentials as a real bucket does): wrong credentials, no server at the endpoint, a
missing bucket (as S3 reports it); and a job pointed at it fails before it starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from msm.cluster.rehearsal import s3_env, start_seaweedfs
from msm.errors import MSMError
from msm.uri import resolve, storage_hint


@pytest.fixture(scope="module")
def seaweed():
    store = start_seaweedfs()
    yield store
    store.stop()


def test_wrong_credentials_and_a_dead_endpoint_name_the_setting(seaweed, monkeypatch):
    for key, value in s3_env(seaweed.endpoint, "rehearsal", "not-the-secret").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(MSMError, match=r"^s3://msm/runs/x\.txt: unreachable or not permitted \(.*SIGNATURE.*\); "
                                       r"the store refused the credentials: set AWS_ACCESS_KEY_ID and "
                                       r"AWS_SECRET_ACCESS_KEY"):
        resolve("s3://msm/runs/x.txt").write_text("x")
    for key, value in seaweed.env.items():
        monkeypatch.setenv(key, value)
    resolve("s3://msm/runs/x.txt").write_text("x")  # the right key works
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(MSMError, match=r"no object store answers at http://127\.0\.0\.1:9: fix AWS_ENDPOINT_URL"):
        resolve("s3://msm/runs/x.txt").read_text()


def test_a_missing_bucket_says_create_it():
    assert storage_hint("When reading information for key 'a' in bucket 'nope': AWS Error NO_SUCH_BUCKET during "
                        "HeadObject operation: Bucket not found") == (
        "the bucket does not exist: create it, or fix the bucket name in the URI")


def test_a_job_with_wrong_credentials_fails_before_it_starts(seaweed, tmp_path):
    env = {**os.environ, **s3_env(seaweed.endpoint, "rehearsal", "not-the-secret"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "msm.cli", "mine", "--config", "configs/mine/tiny-cpu.yaml",
                           "--out", "s3://msm/runs/mine"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "s3://msm/runs/mine" in proc.stderr and "AWS_ACCESS_KEY_ID" in proc.stderr, proc.stderr[-2000:]
    assert "Started a local Ray instance" not in proc.stderr  # refused before Ray starts
