"""msm.run_folder: a training run's folder at a local path (the work folder is the output) or at a URI (a local
work folder, uploaded by push; folders published with their marker last), checked against the filesystem itself.

Remote runs go to an object store seen through :class:`test_uri.Store` (a local folder with an object store's
semantics that logs and fails its mutating calls) and to the S3 test server."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import yaml

import msm.run_folder as run_folder
from msm.run_folder import RunFolder
from msm.uri import Location, resolve

from test_uri import Boom, Store, fail_at, put, snapshot

MARKER = "trainer_state.json"


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """A run at ``store://runs/run`` (handler, RunFolder); its work folder is removed afterwards."""
    monkeypatch.chdir(tmp_path)  # a relative path written by mistake lands in this test's folder
    (tmp_path / "store").mkdir()
    handler = Store(pafs.SubTreeFileSystem(str(tmp_path / "store"), pafs.LocalFileSystem()), parents=True)
    fs = pafs.PyFileSystem(handler)
    real = run_folder.resolve
    monkeypatch.setattr(run_folder, "resolve", lambda uri: Location(fs, str(uri)[len("store://"):], str(uri))
                        if str(uri).startswith("store://") else real(uri))
    run = RunFolder("store://runs/run")
    yield handler, run
    import shutil

    shutil.rmtree(run.work, ignore_errors=True)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def writes(handler: Store) -> list[str]:
    return [path[len("runs/run/"):] for op, *paths in handler.log if op == "write" for path in paths[-1:]]


# ---- a local run: the work folder is the output --------------------------------------------------------------------

def test_a_local_run_works_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = RunFolder("runs/../run")
    assert not run.remote and run.work == tmp_path / "run" and run.loc.path == str(tmp_path / "run")
    assert run.pull("tensorboard/events") == tmp_path / "run" / "tensorboard" / "events"
    assert (tmp_path / "run" / "tensorboard").is_dir() and not (tmp_path / "run" / "tensorboard" / "events").exists()
    write(run.work, {"metrics.jsonl": b"{}\n"})
    os.utime(run.work / "metrics.jsonl", ns=(5, 5))
    before = os.stat(run.work / "metrics.jsonl")
    assert run.pull("metrics.jsonl") == run.work / "metrics.jsonl"  # the file itself, not read and written back
    run.push("metrics.jsonl", "tensorboard", "nothing")  # nothing to upload: the work folder is the output
    after = os.stat(run.work / "metrics.jsonl")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, 5) and tree(tmp_path) == {"run/metrics.jsonl": b"{}\n"}
    assert run.fetch_dir("checkpoints/checkpoint-1") == tmp_path / "run" / "checkpoints" / "checkpoint-1"  # itself


def test_a_local_scratch_folder_is_inside_the_run_and_put_dir_renames_it_into_place(tmp_path):
    run = RunFolder(tmp_path / "run")
    write(run.work, {"checkpoints/checkpoint-1/old.bin": b"old", f"checkpoints/checkpoint-1/{MARKER}": b"{}"})
    scratch = run.scratch(".checkpoint-")
    assert scratch.parent == run.work and scratch.name.startswith(".checkpoint-") and scratch.is_dir()
    write(scratch, {"model/weights.bin": b"new", MARKER: b'{"step": 1}'})
    inode = os.stat(scratch).st_ino
    run.put_dir(scratch, "checkpoints/checkpoint-1", MARKER)
    dest = run.work / "checkpoints" / "checkpoint-1"
    assert os.stat(dest).st_ino == inode and not scratch.exists()  # the scratch folder itself, renamed
    assert tree(dest) == {"model/weights.bin": b"new", MARKER: b'{"step": 1}'}  # the old one replaced whole
    fresh = RunFolder(tmp_path / "new" / "run")
    assert fresh.scratch("x-").parent == tmp_path / "new" / "run"  # the run folder (and its parents) made first


def test_a_local_delete_removes_a_file_or_a_folder_and_nothing_is_fine(tmp_path):
    run = RunFolder(tmp_path / "run")
    write(run.work, {"a/b/c.txt": b"x", "f.txt": b"y", "keep.txt": b"z"})
    run.delete("a")
    run.delete("f.txt")
    run.delete("missing")
    run.delete("missing/too")
    assert tree(run.work) == {"keep.txt": b"z"}


# ---- the config copy ------------------------------------------------------------------------------------------------

CONFIG = {"run": {"output_dir": "s3://runs/x", "name": "zürich-run"}, "model": {"encoder": "tiny"},
          "optim": {"lr": 1e-4}}


def check_config(text: str) -> None:
    assert yaml.safe_load(text) == CONFIG
    assert text.index("run:") < text.index("model:") < text.index("optim:")  # the config's order, not sorted
    assert "zürich-run" in text  # readable, not escaped


def test_the_config_copy_is_written_whole_locally_and_remotely(tmp_path, remote):
    run = RunFolder(tmp_path / "run")
    run.write_config("pretrain_config.yaml", CONFIG)
    check_config((tmp_path / "run" / "pretrain_config.yaml").read_text(encoding="utf-8"))
    handler, run = remote
    run.write_config("pretrain_config.yaml", CONFIG)
    check_config(snapshot(handler.inner, "runs/run")["pretrain_config.yaml"].decode("utf-8"))
    assert tree(run.work) == {}  # straight to the store


# ---- a remote run: a local work folder, uploaded -------------------------------------------------------------------

def test_a_remote_run_works_in_a_fresh_temp_folder(remote):
    handler, run = remote
    assert run.remote and run.work.parent == Path(tempfile.gettempdir()) and run.work.name.startswith("msm-run-")
    assert run.work.is_dir() and tree(run.work) == {}
    scratch = run.scratch("export-")
    assert scratch.parent == Path(tempfile.gettempdir()) and scratch.name.startswith("export-") and scratch.is_dir()
    scratch.rmdir()


def test_push_uploads_what_changed_since_the_last_push(remote):
    handler, run = remote
    write(run.work, {"metrics.jsonl": b"1\n", "tensorboard/a/ev1": b"e1", "tensorboard/ev2": b"e2", "other": b"no"})
    run.push("metrics.jsonl", "tensorboard", "not-there")
    assert sorted(writes(handler)) == ["metrics.jsonl", "tensorboard/a/ev1", "tensorboard/ev2"]
    assert snapshot(handler.inner, "runs/run") == {"metrics.jsonl": b"1\n", "tensorboard/a/ev1": b"e1",
                                                   "tensorboard/ev2": b"e2"}
    handler.log.clear()
    run.push("metrics.jsonl", "tensorboard")
    assert writes(handler) == []  # nothing changed
    with open(run.work / "metrics.jsonl", "ab") as fh:
        fh.write(b"2\n")
    write(run.work, {"tensorboard/ev3": b"e3"})
    run.push("metrics.jsonl", "tensorboard")
    assert sorted(writes(handler)) == ["metrics.jsonl", "tensorboard/ev3"]
    handler.log.clear()
    (run.work / "tensorboard" / "ev2").write_bytes(b"E2")  # the same size, a newer mtime
    os.utime(run.work / "tensorboard" / "ev2", ns=(1, 1))
    run.push("tensorboard")
    assert writes(handler) == ["tensorboard/ev2"] and snapshot(handler.inner, "runs/run/tensorboard")["ev2"] == b"E2"


def test_pull_downloads_a_resumed_runs_file_and_remembers_it(remote):
    handler, run = remote
    put(handler.inner, "runs/run", {"metrics.jsonl": b'{"step": 1}\n'})
    local = run.pull("metrics.jsonl")
    assert local == run.work / "metrics.jsonl" and local.read_bytes() == b'{"step": 1}\n'
    handler.log.clear()
    run.push("metrics.jsonl")
    assert writes(handler) == []  # what was pulled is not uploaded back unchanged
    with open(local, "ab") as fh:
        fh.write(b'{"step": 2}\n')
    run.push("metrics.jsonl")
    assert snapshot(handler.inner, "runs/run")["metrics.jsonl"] == b'{"step": 1}\n{"step": 2}\n'
    fresh = run.pull("logs/none.txt")  # nothing there: a local path to write, its folder made
    assert fresh == run.work / "logs" / "none.txt" and fresh.parent.is_dir() and not fresh.exists()


def test_put_dir_uploads_the_marker_last_replacing_the_old_folder(remote):
    handler, run = remote
    put(handler.inner, "runs/run", {"checkpoints/checkpoint-2/stale.bin": b"old",
                                    f"checkpoints/checkpoint-2/{MARKER}": b"old"})
    local = write(run.scratch(".checkpoint-"), {MARKER: b'{"step": 2}', "a.bin": b"A", "weights/z.bin": b"Z"})
    handler.log.clear()
    run.put_dir(local, "checkpoints/checkpoint-2", MARKER)
    log = [(op, paths[-1][len("runs/run/checkpoints/checkpoint-2"):]) for op, *paths in handler.log]
    assert log[:2] == [("delete_file", f"/{MARKER}"), ("delete_dir", "")]  # its marker first, then the rest
    assert sorted(p for op, p in log[2:-1] if op == "write") == ["/a.bin", "/weights/z.bin"]  # (sorted after it)
    assert log[-1] == ("write", f"/{MARKER}")
    assert snapshot(handler.inner, "runs/run/checkpoints/checkpoint-2") == {
        MARKER: b'{"step": 2}', "a.bin": b"A", "weights/z.bin": b"Z"}
    assert not local.exists()  # consumed


def test_put_dir_cut_at_any_call_never_leaves_a_marker_over_missing_files(remote):
    handler, run = remote
    old = {MARKER: b"old", "a.bin": b"old A", "stale.bin": b"old"}
    new = {MARKER: b"new", "a.bin": b"new A", "weights/z.bin": b"new Z"}
    put(handler.inner, "runs/run", {f"checkpoints/checkpoint-1/{k}": v for k, v in old.items()})
    handler.calls = 0
    run.put_dir(write(run.scratch("s-"), new), "checkpoints/checkpoint-1", MARKER)  # over its own old copy
    clean = handler.calls
    assert clean >= 5  # marker out, folder out, 3 files (marker last)
    for n in range(1, clean + 1):
        name = f"checkpoints/checkpoint-{n + 1}"
        put(handler.inner, "runs/run", {f"{name}/{k}": v for k, v in old.items()})
        handler.calls, handler.fault = 0, fail_at(n)
        with pytest.raises(Boom):
            run.put_dir(write(run.scratch("s-"), new), name, MARKER)
        handler.fault = None
        got = snapshot(handler.inner, f"runs/run/{name}")
        assert MARKER not in got or got in (old, new), n
        assert (name in run.folders("checkpoints", "checkpoint-", MARKER)) == (MARKER in got), n
        run.put_dir(write(run.scratch("s-"), new), name, MARKER)  # the next report or checkpoint puts it again
        assert snapshot(handler.inner, f"runs/run/{name}") == new, n


def test_folders_lists_only_complete_matching_folders_sorted(tmp_path, remote):
    layout = {f"checkpoints/checkpoint-10/{MARKER}": b"{}", f"checkpoints/checkpoint-2/{MARKER}": b"{}",
              "checkpoints/checkpoint-3/model.bin": b"no marker yet",
              f"checkpoints/checkpoint-2/checkpoint-10/{MARKER}": b"nested: not a checkpoint of the run",
              f"checkpoints/export-1/{MARKER}": b"{}", "checkpoints/checkpoint-4": b"a file",
              f"elsewhere/checkpoint-5/{MARKER}": b"{}"}
    want = ["checkpoints/checkpoint-10", "checkpoints/checkpoint-2"]
    local = RunFolder(tmp_path / "run")
    write(local.work, layout)
    assert local.folders("checkpoints", "checkpoint-", MARKER) == want
    assert local.folders("nothing", "checkpoint-", MARKER) == []
    handler, run = remote
    put(handler.inner, "runs/run", layout)
    assert run.folders("checkpoints", "checkpoint-", MARKER) == want
    assert run.folders("nothing", "checkpoint-", MARKER) == []


def test_fetch_dir_copies_a_remote_folder_and_delete_removes_remote_names(remote):
    handler, run = remote
    files = {"model/config.json": b"{}", "model/w.bin": b"w", MARKER: b"{}"}
    put(handler.inner, "runs/run", {f"checkpoints/checkpoint-3/{k}": v for k, v in files.items()})
    put(handler.inner, "runs/run", {"keep.txt": b"k", "old.txt": b"o"})
    got = run.fetch_dir("checkpoints/checkpoint-3")
    try:
        assert got.parent == Path(tempfile.gettempdir()) and got.name.startswith("msm-fetch-") and tree(got) == files
    finally:
        import shutil

        shutil.rmtree(got)
    run.delete("checkpoints/checkpoint-3")
    run.delete("old.txt")
    run.delete("missing")
    assert snapshot(handler.inner, "runs/run") == {"keep.txt": b"k"}


# ---- the same on the S3 test server ------------------------------------------------------------------------------

def test_a_run_on_s3_pushes_publishes_lists_and_fetches(s3_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"s3://runs/rf-{uuid.uuid4().hex[:8]}"
    run = RunFolder(uri)
    fs, root = resolve(uri).fs, resolve(uri).path
    try:
        write(run.work, {"metrics.jsonl": b"1\n"})
        run.push("metrics.jsonl")
        run.put_dir(write(run.scratch("s-"), {MARKER: b"{}", "w.bin": b"w"}), "checkpoints/checkpoint-1", MARKER)
        put(fs, root, {"checkpoints/checkpoint-2/w.bin": b"unfinished"})
        assert snapshot(fs, root) == {"metrics.jsonl": b"1\n", f"checkpoints/checkpoint-1/{MARKER}": b"{}",
                                      "checkpoints/checkpoint-1/w.bin": b"w", "checkpoints/checkpoint-2/w.bin":
                                      b"unfinished"}
        assert run.folders("checkpoints", "checkpoint-", MARKER) == ["checkpoints/checkpoint-1"]
        got = run.fetch_dir("checkpoints/checkpoint-1")
        assert tree(got) == {MARKER: b"{}", "w.bin": b"w"}
        resumed = RunFolder(uri)
        assert resumed.pull("metrics.jsonl").read_bytes() == b"1\n" and resumed.work != run.work
        run.delete("checkpoints")
        assert snapshot(fs, root) == {"metrics.jsonl": b"1\n"} and list(tmp_path.iterdir()) == []
    finally:
        import shutil

        shutil.rmtree(run.work, ignore_errors=True)
