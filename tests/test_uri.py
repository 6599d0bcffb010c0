"""msm.uri: locations at a local path or a URI, and the commit protocol, checked against the filesystem itself.

The commit protocol is driven into a fault at every write it makes, one test case per write:

* object stores (no rename): a ``pyarrow`` filesystem whose every call goes to a real store (a local folder with an
  object store's semantics, or the S3 test server of ``tests/conftest.py``) and which raises at the n-th mutating call
  (:class:`Store`);
* local disks (rename): an audit hook (:func:`sys.addaudithook`) that aborts the n-th mutating syscall under the test's
  folder (open for writing, rename, remove, mkdir, chmod, rmtree), so no helper of ``msm`` is replaced.

After each fault the output must be the previous complete output, nothing, or (object stores) a folder marked
unfinished without a manifest; never a manifest over missing or mixed parts. A re-run then commits cleanly.
"""

from __future__ import annotations

import os
import posixpath
import re
import sys
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from msm.errors import MSMError
from msm.uri import PARTIAL, Location, commit_dir, resolve, sibling


class Boom(RuntimeError):
    """The injected fault (not an OSError: msm.uri must not turn it into a user error)."""


# ---- an object store that records and fails ---------------------------------------------------------------------

class Store(pafs.FileSystemHandler):
    """``pafs.PyFileSystem(Store(inner))``: every call goes to ``inner``; the mutating ones are counted and logged
    (``log``: ``(op, path[, path])``) and the n-th raises ``fault(op, path, n)`` when that returns an exception;
    a look-up (a path or a FileSelector) raises ``info_fault(target)`` when that returns one.
    ``parents``: create a written object's folders first (a local folder then behaves as an object store)."""

    def __init__(self, inner: pafs.FileSystem, parents: bool = False) -> None:
        self.inner, self.parents = inner, parents
        self.log: list[tuple[str, ...]] = []
        self.calls = 0
        self.fault = None
        self.info_fault = None

    def _look(self, target) -> None:
        exc = self.info_fault(target) if self.info_fault is not None else None
        if exc is not None:
            raise exc

    def _mutate(self, op: str, *paths: str) -> None:
        self.calls += 1
        exc = self.fault(op, paths[-1], self.calls) if self.fault is not None else None
        if exc is not None:
            raise exc
        self.log.append((op, *paths))

    def __eq__(self, other) -> bool:
        return isinstance(other, Store) and other.inner.equals(self.inner)

    def __ne__(self, other) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "store"

    def normalize_path(self, path):
        return path

    def get_file_info(self, paths):
        for path in paths:
            self._look(path)
        return self.inner.get_file_info(paths)

    def get_file_info_selector(self, selector):
        self._look(selector)
        return self.inner.get_file_info(selector)

    def create_dir(self, path, recursive):
        self._mutate("create_dir", path)
        self.inner.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self._mutate("delete_dir", path)
        self.inner.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._mutate("delete_dir_contents", path)
        self.inner.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise NotImplementedError

    def delete_file(self, path):
        self._mutate("delete_file", path)
        self.inner.delete_file(path)

    def move(self, src, dest):
        self._mutate("move", src, dest)
        self.inner.move(src, dest)

    def copy_file(self, src, dest):
        self._mutate("copy_file", src, dest)
        self.inner.copy_file(src, dest)

    def open_input_stream(self, path):
        return self.inner.open_input_stream(path)

    def open_input_file(self, path):
        return self.inner.open_input_file(path)

    def open_output_stream(self, path, metadata):
        self._mutate("write", path)
        if self.parents:
            self.inner.create_dir(posixpath.dirname(path), recursive=True)
        return self.inner.open_output_stream(path)

    def open_append_stream(self, path, metadata):
        raise NotImplementedError


def fail_at(n: int, exc: BaseException | None = None):
    return lambda op, path, i: (exc or Boom(f"injected fault at call {n} ({op} {path})")) if i == n else None


@pytest.fixture(params=["disk", "s3"])
def store(request, tmp_path, monkeypatch):
    """(handler, filesystem, a fresh prefix) of an object store: a local folder or the S3 test server."""
    return make_store(request.param, request, tmp_path, monkeypatch)


def make_store(kind: str, request, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to a relative path by mistake stays in this test's folder
    if kind == "disk":
        (tmp_path / "store").mkdir()
        handler = Store(pafs.SubTreeFileSystem(str(tmp_path / "store"), pafs.LocalFileSystem()), parents=True)
    else:
        request.getfixturevalue("s3_server")
        handler = Store(pafs.FileSystem.from_uri("s3://runs")[0])
    return handler, pafs.PyFileSystem(handler), f"runs/t-{uuid.uuid4().hex[:8]}"


def snapshot(fs: pafs.FileSystem, root: str) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), read with pyarrow directly."""
    if fs.get_file_info(root).type == pafs.FileType.NotFound:
        return {}
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as fh:
                out[info.path[len(root) + 1:]] = fh.read()
    return out


def put(fs: pafs.FileSystem, root: str, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``root`` with pyarrow directly (not through msm.uri)."""
    for rel, data in files.items():
        path = f"{root}/{rel}"
        fs.create_dir(posixpath.dirname(path), recursive=True)
        with fs.open_output_stream(path) as fh:
            fh.write(data)


OLD = {"documents/part-0.parquet": b"old d0", "pairs/part-1.parquet": b"old p1"}  # pairs/part-1: gone in the new one
NEW = {"documents/part-0.parquet": b"new d0", "pairs/part-0.parquet": b"new p0"}
OLD_MANIFEST, NEW_MANIFEST = '{"run": "old"}\n', '{"run": "new", "text": "Zürich"}\n'
OWNED = frozenset({"documents", "pairs", "manifest.json"})
USER = {"keep/pairs/mine.txt": b"a user's pairs/, nested in their own folder"}


def data_files(snap: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in snap.items() if k.split("/")[0] in ("documents", "pairs")}


def locations(handler, fs, base) -> tuple[Location, Location]:
    out = Location(fs, f"{base}/out", f"store://{base}/out")
    return out, sibling(out, "staging")


# ---- resolve, join, sibling ---------------------------------------------------------------------------------------

def test_a_local_path_resolves_to_an_absolute_path_and_uri(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    loc = resolve("b/../c/out")
    assert loc.path == loc.uri == str(tmp_path / "a" / "c" / "out") and os.path.isabs(loc.path)
    assert loc.local and isinstance(loc.fs, pafs.LocalFileSystem)
    assert resolve(Path("b")).path == str(tmp_path / "a" / "b")  # a Path as well as a str


def test_home_and_symlinks_are_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("~/x").path == str(tmp_path / "x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert resolve(tmp_path / "link" / "f").uri == str(tmp_path / "real" / "f")


def test_a_file_uri_is_local_and_keeps_its_scheme_in_uris(tmp_path):
    loc = resolve(f"file://{tmp_path}/out/")
    assert loc.local and loc.path == f"{tmp_path}/out" and loc.uri == f"file://{tmp_path}/out"
    sub = loc.join("a", "b.txt")
    assert sub.path == f"{tmp_path}/out/a/b.txt" and sub.uri == f"file://{tmp_path}/out/a/b.txt" and sub.local
    assert resolve("file:///").path == "/"  # the root keeps its slash
    assert resolve(f"file://{tmp_path}/x/%20").path == f"{tmp_path}/x/ "  # only slashes are stripped from a path
    plain = resolve(tmp_path).join("a", "b.txt")
    assert plain.uri == plain.path == f"{tmp_path}/a/b.txt"


def test_an_s3_uri_loses_trailing_slashes_and_joins_under_its_scheme(s3_server):
    loc = resolve("s3://runs/a/BOX/")
    assert not loc.local and loc.path == "runs/a/BOX" and loc.uri == "s3://runs/a/BOX"
    sub = loc.join("c", "d.json")
    assert sub.path == "runs/a/BOX/c/d.json" and sub.uri == "s3://runs/a/BOX/c/d.json" and sub.fs is loc.fs


def test_a_bad_uri_names_itself_and_the_fix():
    with pytest.raises(MSMError) as err:
        resolve("nosuch://bucket/x")
    assert str(err.value) == ("nosuch://bucket/x: not a usable URI (ArrowInvalid: Unrecognized filesystem type in URI: "
                              "nosuch://bucket/x); use a local path or a pyarrow filesystem URI such as "
                              "file:///abs/path, s3://bucket/prefix or gs://bucket/prefix")
    assert type(err.value.__cause__).__name__ == "ArrowInvalid"


def test_sibling_is_a_hidden_neighbour_fixed_per_output(tmp_path, s3_server):
    local = sibling(resolve(tmp_path / "out"), "staging")
    assert local.path == local.uri == f"{tmp_path}/.out.staging" and local.local
    assert sibling(resolve(tmp_path / "out"), "staging") == local  # a re-run finds the same one
    s3 = sibling(resolve("s3://runs/x/BOX/"), "work")
    assert (s3.path, s3.uri, s3.local) == ("runs/x/.BOX.work", "s3://runs/x/.BOX.work", False)
    made = sibling(Location(s3.fs, "runs/y/out/", "s3://runs/y/out/"), "staging")  # a trailing slash, made by hand
    assert (made.path, made.uri) == ("runs/y/.out.staging", "s3://runs/y/.out.staging")
    x = sibling(resolve("s3://runs/BOX/X"), "work")  # an output named X (only the slash is stripped)
    assert (x.path, x.uri) == ("runs/BOX/.X.work", "s3://runs/BOX/.X.work")
    f = sibling(resolve(f"file://{tmp_path}/out"), "work")
    assert (f.path, f.uri) == (f"{tmp_path}/.out.work", f"file://{tmp_path}/.out.work")


# ---- reading and writing, on a local disk and on S3 ---------------------------------------------------------------

@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path, monkeypatch) -> Location:
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        return resolve(tmp_path / "root")
    request.getfixturevalue("s3_server")
    return resolve(f"s3://runs/io-{uuid.uuid4().hex[:8]}")


def raw(loc: Location) -> bytes:
    with loc.fs.open_input_stream(loc.path) as fh:
        return fh.read()


def test_files_lists_files_recursively_sorted_and_by_suffix(where):
    assert where.files() == [] and not where.exists()
    put(where.fs, where.path, {"z.json": b"1", "b/y.parquet": b"2", "a/c/x.parquet": b"3", "a/w.txt": b"4"})
    where.join("empty").mkdir()
    p = where.path
    assert where.files() == [f"{p}/a/c/x.parquet", f"{p}/a/w.txt", f"{p}/b/y.parquet", f"{p}/z.json"]
    assert where.files(".parquet") == [f"{p}/a/c/x.parquet", f"{p}/b/y.parquet"]
    assert where.join("a").files(".txt") == [f"{p}/a/w.txt"]
    assert where.join("nothing").files() == []


def test_exists_is_file_delete_and_mkdir(where):
    f, d = where.join("d", "f.txt"), where.join("d")
    assert not f.exists() and not f.is_file() and not d.exists()
    f.write_text("x")
    assert f.exists() and f.is_file() and d.exists() and not d.is_file()
    where.join("deep", "er", "est").mkdir()  # parents made as well
    assert where.join("deep", "er", "est").exists() and not where.join("deep", "er", "est").is_file()
    f.delete()
    assert not f.exists()
    where.join("d", "g", "h.txt").write_text("y")
    d.delete()  # a folder, with what is in it
    assert not d.exists() and where.join("d", "g", "h.txt").files() == []
    d.delete()  # nothing there: nothing to do
    where.join("deep").delete()
    assert not where.join("deep").exists()


def test_text_is_utf8_both_ways(where):
    loc = where.join("t.txt")
    loc.write_text("Zürich 東京\n")
    assert raw(loc) == b"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac\n"
    put(where.fs, where.path, {"u.txt": "naïve ✓".encode("utf-8")})
    assert where.join("u.txt").read_text() == "naïve ✓" and where.join("u.txt").read_bytes() == "naïve ✓".encode()
    loc.write_bytes(b"\x00\xff")  # replaced whole
    assert loc.read_bytes() == b"\x00\xff"


def test_a_local_write_replaces_the_file_by_a_rename(tmp_path, monkeypatch):
    """Via a temp name and a rename: a new inode under the name, readable by all, no temp file left, and a write cut
    short leaves the old file whole."""
    loc = resolve(tmp_path / "f.bin")
    loc.write_bytes(b"old")
    before = os.stat(loc.path).st_ino
    os.chmod(loc.path, 0o600)
    loc.write_bytes(b"new")
    assert os.stat(loc.path).st_ino != before and Path(loc.path).read_bytes() == b"new"
    assert os.stat(loc.path).st_mode & 0o777 == 0o644 and sorted(os.listdir(tmp_path)) == ["f.bin"]

    def no_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match="No space left"):
        loc.write_bytes(b"a longer new content")
    assert Path(loc.path).read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_an_s3_write_puts_one_object_and_nothing_locally(s3_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loc = resolve(f"s3://runs/w-{uuid.uuid4().hex[:8]}/a/b.txt")
    loc.write_text("hello")
    fs, path = pafs.FileSystem.from_uri(loc.uri)
    with fs.open_input_stream(path) as fh:
        assert fh.read() == b"hello"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_stays_a_file_not_found_error_other_os_errors_name_the_uri(tmp_path, s3_server):
    with pytest.raises(FileNotFoundError) as err:
        resolve(tmp_path / "nope.txt").read_bytes()
    assert not isinstance(err.value, MSMError)
    (tmp_path / "dir").mkdir()
    with pytest.raises(MSMError) as err:
        resolve(tmp_path / "dir").read_text()
    assert str(err.value) == (f"{tmp_path}/dir: unreachable or not permitted (Cannot open for reading: path "
                              f"'{tmp_path}/dir' is a directory); check the URI, the credentials and, for "
                              "S3-compatible stores, AWS_ENDPOINT_URL")
    assert isinstance(err.value.__cause__, OSError)
    for call in (lambda loc: loc.write_text("x"), lambda loc: loc.mkdir()):  # (a read: FileNotFoundError)
        with pytest.raises(MSMError, match=r"^s3://no-such-bucket-x/a: unreachable or not permitted \(.*\); the "
                                           "bucket does not exist: create it, or fix the bucket name in the URI$"):
            call(resolve("s3://no-such-bucket-x/a"))


def test_every_call_through_a_store_names_the_location_on_an_os_error(tmp_path, monkeypatch):
    (tmp_path / "store").mkdir()
    handler = Store(pafs.SubTreeFileSystem(str(tmp_path / "store"), pafs.LocalFileSystem()), parents=True)
    base = Location(pafs.PyFileSystem(handler), "b", "store://b")
    assert not base.local
    base.join("d", "f").write_text("x")
    handler.fault = lambda op, path, i: OSError(13, "denied")
    for call in (lambda: base.join("d", "f").write_text("y"), lambda: base.join("d", "f").delete(),
                 lambda: base.join("d").delete(), lambda: base.join("e").mkdir()):
        with pytest.raises(MSMError, match=r"^store://b/(d/f|d|e): unreachable or not permitted \(\[Errno 13\] deni"):
            call()
    handler.fault = None
    assert snapshot(handler.inner, "b") == {"d/f": b"x"}
    handler.info_fault = lambda target: OSError(5, "look-up failed")
    for call in (lambda: base.join("d").exists(), lambda: base.join("d", "f").is_file(), lambda: base.join("d").files(),
                 lambda: base.join("d").delete()):
        with pytest.raises(MSMError, match=r"^store://b/d(/f)?: unreachable or not permitted \(\[Errno 5\] look-up"):
            call()
    handler.info_fault = lambda target: OSError(5, "listing failed") if isinstance(target, pafs.FileSelector) else None
    with pytest.raises(MSMError, match=r"^store://b/d: unreachable or not permitted \(\[Errno 5\] listing failed"):
        base.join("d").files()


# ---- the commit protocol on an object store ----------------------------------------------------------------------

def remove(fs: pafs.FileSystem, path: str) -> None:
    """Delete a file or folder with pyarrow directly, if it is there."""
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif kind == pafs.FileType.File:
        fs.delete_file(path)


def stage_new(fs, staged: Location, files: dict[str, bytes] = NEW) -> None:
    remove(fs, staged.path)  # what an interrupted run left there: the pipeline deletes it first
    put(fs, staged.path, files)


def test_an_object_store_commit_marks_deletes_copies_then_writes_the_manifest_last(store):
    handler, fs, base = store
    out, staged = locations(handler, fs, base)
    put(handler.inner, out.path, {**OLD, **USER, "manifest.json": OLD_MANIFEST.encode()})
    stage_new(handler.inner, staged)
    handler.log.clear()
    commit_dir(staged, out, NEW_MANIFEST, owned=OWNED)
    log = [(op, *(p[len(base) + 1:] for p in paths)) for op, *paths in handler.log]
    assert log[:2] == [("write", f"out/{PARTIAL}"), ("delete_file", "out/manifest.json")]
    assert sorted(log[2:4]) == [("delete_dir", "out/documents"), ("delete_dir", "out/pairs")]
    copies = log[4:-3]
    assert sorted(c for c in copies if c[0] == "write") == sorted(("write", f"out/{k}") for k in NEW)  # streamed
    assert all(c[0] in ("write", "create_dir") for c in copies)
    assert log[-3:] == [("write", "out/manifest.json"), ("delete_file", f"out/{PARTIAL}"),
                        ("delete_dir", ".out.staging")]
    assert snapshot(handler.inner, out.path) == {**NEW, **USER, "manifest.json": NEW_MANIFEST.encode()}
    assert snapshot(handler.inner, staged.path) == {} and not staged.exists()


def test_an_object_store_commit_without_owned_names_replaces_every_name_but_the_marker(store):
    handler, fs, base = store
    out, staged = locations(handler, fs, base)
    put(handler.inner, out.path, {**OLD, **USER, "manifest.json": OLD_MANIFEST.encode()})
    stage_new(handler.inner, staged)
    commit_dir(staged, out, NEW_MANIFEST)  # owned None; the default manifest name
    assert snapshot(handler.inner, out.path) == {**NEW, "manifest.json": NEW_MANIFEST.encode()}


def test_the_manifest_name_is_the_callers(store):
    handler, fs, base = store
    out, staged = locations(handler, fs, base)
    put(handler.inner, out.path, {"build.json": b"old", "index/a": b"old"})
    put(handler.inner, staged.path, {"index/b": b"new"})
    commit_dir(staged, out, "{}", "build.json", owned=frozenset({"index", "build.json"}))
    assert snapshot(handler.inner, out.path) == {"build.json": b"{}", "index/b": b"new"}


def version(v: int) -> tuple[dict[str, bytes], str]:
    """The parts and the manifest of the v-th output of one location (a part's name changes between versions)."""
    return {"documents/part-0.parquet": f"v{v} d0".encode(), f"pairs/part-{v % 2}.parquet": f"v{v} p".encode()}, \
        f'{{"version": {v}, "text": "Zürich"}}\n'


@pytest.mark.parametrize(("kind", "previous"), [("disk", "an old output"), ("disk", "nothing"),
                                                 ("s3", "an old output")])
def test_a_commit_cut_at_any_call_is_old_nothing_or_marked_and_a_rerun_commits(kind, previous, request, tmp_path,
                                                                               monkeypatch):
    """The fault hits the n-th mutating call, for every n up to the number a clean commit makes: then the output is
    the previous complete one, nothing, or marked unfinished without a manifest; a re-run commits. Over an old
    output, each round commits the next version over the one the round before left (on S3 only this case: the
    code is the object-store folder's, and S3 requests are slow)."""
    handler, fs, base = make_store(kind, request, tmp_path, monkeypatch)
    out, staged = locations(handler, fs, base)
    put(handler.inner, out.path, USER)

    def commit(v: int, n: int | None) -> bool:
        """Stage version v and commit it with a fault at call n; True when the fault hit."""
        stage_new(handler.inner, staged, version(v)[0])
        handler.calls, handler.fault = 0, (fail_at(n) if n else None)
        try:
            commit_dir(staged, out, version(v)[1], owned=OWNED)
            return False
        except Boom:
            return True
        finally:
            handler.fault = None

    def complete(v: int) -> dict[str, bytes]:
        return {**version(v)[0], **USER, "manifest.json": version(v)[1].encode()}

    assert not commit(1, None)  # over nothing
    first = 1
    if previous == "an old output":
        assert not commit(2, None)  # over version 1: the commit to count makes the deletes too
        first = 2
    clean = handler.calls
    assert snapshot(handler.inner, out.path) == complete(first)
    # marker, (old manifest, documents/, pairs/), 2 copies (and their folders), manifest, marker, staging
    assert clean >= (9 if previous == "an old output" else 6)
    for n in range(1, clean + 1):
        v = first + n  # over version v - 1 (the last round's re-run), or over nothing
        before = complete(v - 1)  # what the last round's re-run left, checked there
        if previous == "nothing":
            for name in OWNED:
                remove(handler.inner, f"{out.path}/{name}")
            before = dict(USER)
        assert commit(v, n), n
        snap = snapshot(handler.inner, out.path)
        assert {k: snap.get(k) for k in USER} == USER, n  # never a user's file
        if "manifest.json" in snap:  # complete: the manifest sits over exactly its own parts, all of them
            assert snap["manifest.json"] in (before.get("manifest.json"), version(v)[1].encode()), n
            assert data_files(snap) == data_files(before if snap["manifest.json"] == before.get("manifest.json")
                                                  else version(v)[0]), n
        else:  # nothing of an output, or marked unfinished
            assert snap == USER or PARTIAL in snap, (n, sorted(snap))
        assert not commit(v, None)  # the re-run: staged again, committed cleanly over whatever is there
        assert snapshot(handler.inner, out.path) == complete(v), n
        assert handler.inner.get_file_info(staged.path).type == pafs.FileType.NotFound, n


def test_an_os_error_in_a_commit_names_the_location(store):
    handler, fs, base = store
    out, staged = locations(handler, fs, base)
    put(handler.inner, out.path, {**OLD, "manifest.json": OLD_MANIFEST.encode()})
    stage_new(handler.inner, staged)
    handler.fault = lambda op, path, i: OSError(13, "denied") if (op, path[-6:]) == ("delete_dir", "/pairs") else None
    with pytest.raises(MSMError, match=rf"^store://{base}/out/pairs: unreachable or not permitted \(\[Errno 13\] deni"):
        commit_dir(staged, out, NEW_MANIFEST, owned=OWNED)
    handler.fault = lambda op, path, i: (OSError(13, "denied") if op == "write" and "/out/" in path
                                         and not path.endswith(PARTIAL) else None)
    with pytest.raises(MSMError, match=rf"^store://{base}/out/\S+: copying store://{base}/\.out\.staging/\S+ there "
                                       r"failed \(\[Errno 13\] denied\)"):
        commit_dir(staged, out, NEW_MANIFEST, owned=OWNED)
    handler.fault = None
    assert "manifest.json" not in snapshot(handler.inner, out.path)
    assert PARTIAL in snapshot(handler.inner, out.path)
    handler.info_fault = lambda target: OSError(5, "listing failed") if isinstance(target, pafs.FileSelector) else None
    with pytest.raises(MSMError, match=rf"^store://{base}/out: unreachable or not permitted \(\[Errno 5\] listing"):
        commit_dir(staged, out, NEW_MANIFEST, owned=OWNED)
    handler.info_fault = None


def test_an_s3_commit_through_resolve(s3_server, tmp_path, monkeypatch):
    """The same protocol on the plain S3 filesystem msm resolves (server-side copies between two prefixes)."""
    monkeypatch.chdir(tmp_path)
    out = resolve(f"s3://runs/c-{uuid.uuid4().hex[:8]}/out")
    staged = sibling(out, "staging")
    put(out.fs, out.path, {**OLD, "manifest.json": OLD_MANIFEST.encode()})
    put(out.fs, staged.path, NEW)
    commit_dir(staged, out, NEW_MANIFEST, owned=OWNED)
    assert snapshot(out.fs, out.path) == {**NEW, "manifest.json": NEW_MANIFEST.encode()}
    assert not staged.exists() and list(tmp_path.iterdir()) == []


# ---- the commit protocol on a local disk -------------------------------------------------------------------------

class DiskFaults:
    """Counts (``log``) the mutating syscalls Python makes under ``root`` and aborts the ``fail_at``-th with
    :class:`Boom` (an audit hook: it sees os.rename, open for writing, ... whoever calls them)."""

    active: DiskFaults | None = None
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "shutil.rmtree", "os.truncate",
              "os.link", "os.symlink"}

    def __init__(self, root: Path, fail_at: int | None = None) -> None:
        self.root, self.fail_at, self.log = str(root), fail_at, []

    def __enter__(self):
        DiskFaults.active = self
        return self

    def __exit__(self, *exc):
        DiskFaults.active = None

    def event(self, name: str, args: tuple) -> None:
        if name == "open":
            path, mode, flags = args
            if not ((mode and any(c in mode for c in "wax+")) or (flags or 0) & self.WRITE_FLAGS):
                return
        elif name not in self.EVENTS:
            return
        paths = [os.fsdecode(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
        paths = [p for p in paths if os.path.isabs(p)]
        if not paths or not all(p.startswith(self.root) for p in paths):
            return
        self.log.append((name, *(os.path.relpath(p, self.root) for p in paths)))
        if len(self.log) == self.fail_at:
            DiskFaults.active = None  # the cleanup of a failed step runs unhindered
            raise Boom(f"injected fault at syscall {self.fail_at}: {self.log[-1]}")


def _audit(name: str, args: tuple) -> None:
    if DiskFaults.active is not None:
        DiskFaults.active.event(name, args)


sys.addaudithook(_audit)


def local_tree(root: Path) -> dict[str, bytes] | None:
    if not root.exists():
        return None
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def local_output(tmp_path: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)


def test_a_local_commit_writes_the_manifest_into_staging_then_renames(tmp_path):
    local_output(tmp_path / "out", {**OLD, "manifest.json": OLD_MANIFEST.encode()})
    local_output(tmp_path / ".out.staging", NEW)
    out = resolve(tmp_path / "out")
    staged = sibling(out, "staging")
    inode = os.stat(staged.path).st_ino
    with DiskFaults(tmp_path) as faults:
        commit_dir(staged, out, NEW_MANIFEST)
    events = [" ".join(e) for e in faults.log]
    expected = [r"os\.mkdir \.out\.staging", r"open \.out\.staging/\.manifest\.json\.\w+\.tmp",
                r"os\.chmod \.out\.staging/\.manifest\.json\.\w+\.tmp",
                r"os\.rename \.out\.staging/\.manifest\.json\.\w+\.tmp \.out\.staging/manifest\.json",
                r"os\.mkdir \.", r"os\.rename out \.out\.old-\w{8}", r"os\.rename \.out\.staging out",
                r"shutil\.rmtree \.out\.old-\w{8}", r"os\.rmdir \.out\.old-\w{8}"]
    assert len(events) == len(expected) and all(re.fullmatch(p, e) for p, e in zip(expected, events)), events
    assert os.stat(out.path).st_ino == inode  # the staged folder itself became the output
    assert local_tree(tmp_path / "out") == {**NEW, "manifest.json": NEW_MANIFEST.encode()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("previous", ["an old output", "nothing"])
def test_a_local_commit_cut_at_any_syscall_leaves_the_old_output_or_nothing(tmp_path, previous):
    before = {**OLD, "manifest.json": OLD_MANIFEST.encode()} if previous == "an old output" else None
    final = {**NEW, "manifest.json": NEW_MANIFEST.encode()}

    def attempt(n: int | None, root: Path) -> DiskFaults:
        root.mkdir()
        if before is not None:
            local_output(root / "out", before)
        local_output(root / ".out.staging", NEW)
        with DiskFaults(root, n) as faults:
            commit_dir(resolve(root / ".out.staging"), resolve(root / "out"), NEW_MANIFEST, owned=OWNED)
        return faults

    clean = len(attempt(None, tmp_path / "clean").log)
    assert clean == (9 if before is not None else 6)  # see the test above (no old output: no move aside, no rmtree)
    for n in range(1, clean + 1):
        root = tmp_path / f"n{n}"
        with pytest.raises(Boom):
            attempt(n, root)
        assert local_tree(root / "out") in (before, final, None), n  # complete or absent, never anything between
        if before is not None:  # a failed second rename puts the old output back: never absent
            assert local_tree(root / "out") is not None, n
        local_output(root / ".out.staging", NEW)  # the re-run stages again and commits
        commit_dir(resolve(root / ".out.staging"), resolve(root / "out"), NEW_MANIFEST)
        assert local_tree(root / "out") == final and not (root / ".out.staging").exists(), n


def test_a_replace_killed_between_its_renames_leaves_the_old_folder_aside_and_the_next_one_clears_it(tmp_path):
    """A process killed between replace_dir's two renames leaves ``dst`` absent and the old folder whole at
    ``.<name>.old-<id>`` (simulated: the state that kill leaves); the next replace publishes and deletes it, and
    leaves other names alone."""
    from msm.io import replace_dir

    local_output(tmp_path / ".out.old-1a2b3c4d", {"a.txt": b"old"})  # the killed replace's old folder
    local_output(tmp_path / ".outer.old-1a2b3c4d", {"a.txt": b"other"})  # another output's: not ours
    local_output(tmp_path / ".out.old-backup", {"a.txt": b"user's"})  # a user's folder: not a name replace makes
    local_output(tmp_path / ".out.old-x.old-1a2b3c4d", {"a.txt": b"of out.old-x"})  # output "out.old-x"'s aside copy
    local_output(tmp_path / "new", {"b.txt": b"new"})
    replace_dir(tmp_path / "new", tmp_path / "out")
    assert local_tree(tmp_path / "out") == {"b.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.old-backup", ".out.old-x.old-1a2b3c4d",
                                                          ".outer.old-1a2b3c4d", "out"]


# ---- through the output contract (msm.output.commit, what every verb calls) ----------------------------------------

@pytest.mark.parametrize("kind", ["disk", "local"])
def test_an_output_commit_cut_anywhere_is_known_by_the_contract_and_a_rerun_replaces_it(kind, request, tmp_path,
                                                                                       monkeypatch):
    """What a verb sees after its commit was cut at the n-th call: its old output (same settings), the new one, an
    unfinished one of its own (partial) or nothing (new), never someone else's files; the re-run's claim accepts
    it and the re-run's commit publishes the new output."""
    from msm.output import Kind, claim, commit, inspect, json_settings

    verb = Kind("mine", "manifest.json", OWNED, json_settings("config", verb="mine"))
    old, new = {"k": 1}, {"k": 2}
    manifest = lambda cfg: f'{{"verb": "mine", "config": {{"k": {cfg["k"]}}}}}\n'  # noqa: E731
    if kind == "local":
        out = resolve(tmp_path / "out")
        faults = lambda n: DiskFaults(tmp_path, n)  # noqa: E731
        stage = lambda staged, files: local_output(Path(staged.path), files)  # noqa: E731
        clean_calls = lambda f: len(f.log)  # noqa: E731
    else:
        handler, fs, base = make_store("disk", request, tmp_path, monkeypatch)
        out, _ = locations(handler, fs, base)

        class faults:  # noqa: N801
            def __init__(self, n):
                handler.calls, handler.fault = 0, (fail_at(n) if n else None)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handler.fault = None
        stage = lambda staged, files: put(handler.inner, staged.path, files)  # noqa: E731
        clean_calls = lambda f: handler.calls  # noqa: E731
    staged = sibling(out, "staging")

    def publish(files, cfg, n=None):
        assert claim(out, verb, cfg, overwrite=True).state in ("new", "same", "other", "partial")
        staged.delete()
        stage(staged, files)
        with faults(n) as f:
            commit(staged, out, verb, manifest(cfg))
        return f

    publish(OLD, old)
    clean = clean_calls(publish(NEW, new))
    for n in range(1, clean + 1):
        publish(OLD, old)
        with pytest.raises(Boom):
            publish(NEW, new, n)
        state = inspect(out, verb, new).state
        assert state in ("same", "other", "partial", "new"), n
        if state in ("same", "other"):  # a complete output: exactly the parts its manifest was written with
            parts = {f[len(out.path) + 1:]: Location(out.fs, f, f).read_bytes() for f in out.files()
                     if f.rsplit("/", 1)[-1] not in ("manifest.json", PARTIAL)}
            assert parts == (NEW if state == "same" else OLD), n
        publish(NEW, new)
        assert inspect(out, verb, new).state == "same" and not staged.exists(), n
