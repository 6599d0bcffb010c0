"""Paths as URIs: a local path, ``file://``, ``s3://``, ``gs://``, ``hdfs://``... through ``pyarrow.fs``.

Every job that reads or writes at a configurable location goes through :func:`resolve`, so the same config runs
on a laptop (local folders) and on a cluster (object storage). :func:`commit_dir` publishes a staged output:
a rename where the filesystem has one, else copy-then-manifest, so an output without its manifest is never
complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from msm.errors import MSMError
from msm.io import atomic_write_bytes, replace_dir


@dataclass(frozen=True)
class Location:
    """A filesystem and a path inside it; ``uri`` is what the user wrote (made absolute when local)."""

    fs: pafs.FileSystem
    path: str
    uri: str

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> Location:
        path = posixpath.join(self.path, *parts)
        uri = path if self.local and "://" not in self.uri else posixpath.join(self.uri, *parts)
        return Location(self.fs, path, uri)

    def exists(self) -> bool:
        return _info(self).type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return _info(self).type == pafs.FileType.File

    def files(self, suffix: str = "") -> list[str]:
        """Paths (inside ``fs``) of the files under this folder, recursively, sorted; [] when it is missing."""
        if not self.exists():
            return []
        sel = pafs.FileSelector(self.path, recursive=True)
        return sorted(i.path for i in _call(self, self.fs.get_file_info, sel)
                      if i.type == pafs.FileType.File and i.path.endswith(suffix))

    def read_bytes(self) -> bytes:
        with _call(self, self.fs.open_input_stream, self.path) as fh:
            return fh.read()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Write one file: via a temp name and a rename on local disks; object stores put an object atomically."""
        if self.local:

            atomic_write_bytes(self.path, data)
            return
        with _call(self, self.fs.open_output_stream, self.path) as fh:
            fh.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def delete(self) -> None:
        """Remove this file or folder if it exists."""
        info = _info(self)
        if info.type == pafs.FileType.Directory:
            _call(self, self.fs.delete_dir, self.path)
        elif info.type == pafs.FileType.File:
            _call(self, self.fs.delete_file, self.path)

    def mkdir(self) -> None:
        _call(self, self.fs.create_dir, self.path, recursive=True)


def resolve(path: str | Path) -> Location:
    """The :class:`Location` of a local path or URI; names the input and the fix when the URI is unusable."""
    text = str(path)
    if "://" not in text:
        local = str(Path(text).expanduser().resolve())
        return Location(pafs.LocalFileSystem(), local, local)
    try:
        fs, inner = pafs.FileSystem.from_uri(text)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError / ArrowNotImplementedError
        raise MSMError(f"{text}: not a usable URI ({type(exc).__name__}: {exc}); use a local path or a pyarrow "
                       "filesystem URI such as file:///abs/path, s3://bucket/prefix or gs://bucket/prefix") from exc
    return Location(fs, inner.rstrip("/") or inner, text.rstrip("/"))


def _call(loc: Location, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise MSMError(f"{loc.uri}: unreachable or not permitted ({exc}); {storage_hint(str(exc), loc.uri)}") from exc


def copy_file(src: Location, dst: Location, chunk: int = 8 << 20) -> None:
    """Copy one file between any two filesystems, streamed, the destination closed explicitly so a failed upload
    raises (naming the destination and the fix). ``pyarrow.fs.copy_files`` is not used: it lets an object store's
    error on the last part pass ("Error ignored when destroying file"), leaving the object missing unnoticed."""
    if dst.local:
        Path(dst.path).parent.mkdir(parents=True, exist_ok=True)
    try:
        with src.fs.open_input_stream(src.path) as fin, dst.fs.open_output_stream(dst.path) as fout:
            while True:
                data = fin.read(chunk)
                if not data:
                    break
                fout.write(data)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise MSMError(f"{dst.uri}: copying {src.uri} there failed ({exc}); {storage_hint(str(exc), dst.uri)}") from exc


def copy_tree(src: Location, dst: Location, last: str | None = None) -> list[str]:
    """Copy every file under ``src`` to the same relative path under ``dst`` (:func:`copy_file`), the file ``last``
    (a relative path: a manifest or marker) after all the others; returns the relative paths copied."""
    rels = sorted((f[len(src.path.rstrip("/")) + 1:] for f in src.files()), key=lambda r: (r == last, r))
    for rel in rels:
        copy_file(src.join(rel), dst.join(rel))
    return rels


def storage_hint(error: str, uri: str = "") -> str:
    """The setting to fix for an object-store error (pyarrow's message, AWS error names included) at ``uri`` (an
    ``endpoint_override`` in its query is the endpoint it used)."""
    found = re.search(r"[?&]endpoint_override=([^&]+)", uri)
    endpoint = found.group(1) if found else (os.environ.get("AWS_ENDPOINT_URL")
                                             or os.environ.get("AWS_ENDPOINT_URL_S3"))
    if any(k in error for k in ("SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY_ID", "InvalidAccessKeyId",
                                "ACCESS_DENIED", "AccessDenied", "Forbidden")):
        return ("the store refused the credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the "
                "instance's role) to a key allowed on this bucket")
    if any(k in error for k in ("NETWORK_CONNECTION", "Could not connect", "Could not resolve", "curlCode")):
        setting = "the URI's endpoint_override" if found else "AWS_ENDPOINT_URL"
        return (f"no object store answers at {endpoint or 'the default AWS endpoint'}: fix {setting} (an "
                "S3-compatible store: http://host:port) or the network")
    if any(k in error for k in ("NoSuchBucket", "NO_SUCH_BUCKET")) or ("Bucket" in error and "not found" in error):
        return "the bucket does not exist: create it, or fix the bucket name in the URI"
    return "check the URI, the credentials and, for S3-compatible stores, AWS_ENDPOINT_URL"


def _info(loc: Location) -> pafs.FileInfo:
    return _call(loc, loc.fs.get_file_info, loc.path)


def sibling(out: Location, role: str) -> Location:
    """A hidden sibling of an output (``.<name>.<role>``: ``staging``, ``work``), fixed per output, so a re-run
    finds and replaces what a crashed run left there."""
    parent, name = posixpath.split(out.path.rstrip("/"))
    uri_parent = posixpath.dirname(out.uri.rstrip("/"))
    return Location(out.fs, posixpath.join(parent, f".{name}.{role}"), posixpath.join(uri_parent, f".{name}.{role}"))


PARTIAL = ".msm-partial"  # marks an output whose object-store commit has begun and not ended (msm.output)


def commit_dir(staged: Location, out: Location, manifest: str, manifest_name: str = "manifest.json",
               owned: frozenset[str] | None = None) -> None:
    """Publish the finished folder ``staged`` at ``out``, with ``manifest`` (text) written last.

    The caller has checked ``out`` first (:func:`msm.output.claim`): it is absent, empty or an output of the same
    verb, never a folder with anyone else's files. Local disks: the manifest goes into ``staged``, which then
    replaces ``out`` by rename (``out`` is complete or absent at every instant). Object stores have no rename: a
    :data:`PARTIAL` marker is put first, then ``out``'s old manifest is deleted, then its other files, the staged
    files are copied over, the manifest is put and the marker removed last. Whatever step a crash interrupts,
    ``out`` is the old complete output, or carries the marker and no manifest (never mistaken for complete; a
    re-run knows it as its own and replaces it), or is the new complete output. ``owned``: the only top-level names
    an object-store commit deletes (:func:`msm.output.commit` passes the verb's own; None: every name).
    """
    if out.local:

        staged.join(manifest_name).write_text(manifest)
        replace_dir(staged.path, out.path)
        return
    out.join(PARTIAL).write_text("commit in progress\n")
    out.join(manifest_name).delete()
    for info in _call(out, out.fs.get_file_info, pafs.FileSelector(out.path, recursive=False)):
        if info.base_name != PARTIAL and (owned is None or info.base_name in owned):
            Location(out.fs, info.path, posixpath.join(out.uri, info.base_name)).delete()
    copy_tree(staged, out)
    out.join(manifest_name).write_text(manifest)
    out.join(PARTIAL).delete()
    staged.delete()


def local_copy(uri: str | Path, cache: Path, what: str = "folder", fix: str = "pass an existing folder or URI",
               skip=None) -> Path:
    """A local copy of the folder at ``uri`` (a model or a data folder that another node wrote: nodes share no
    disk), in ``cache/<hash of the URI>``; a local path is returned as it is. Downloaded into a temp folder that is
    renamed into place, under a lock (one download per machine at a time), and again whenever the folder at the URI
    changed (its files' names, sizes and times, kept in ``.msm-source.json``). ``skip(relative path)``: files left
    out (the UI leaves out a run's checkpoints)."""
    loc = resolve(uri)
    if loc.local:
        return Path(loc.path)
    files = [f for f in loc.files() if skip is None or not skip(f[len(loc.path) + 1:])]
    if not files:
        raise MSMError(f"{loc.uri}: no {what} there (no files at that URI); {fix}")
    infos = _call(loc, loc.fs.get_file_info, files)
    source = {"uri": loc.uri, "files": [[i.path[len(loc.path):], i.size, str(i.mtime_ns)] for i in infos]}
    key = hashlib.sha1(loc.uri.encode()).hexdigest()[:16]
    dest = cache / key
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.ExitStack() as undo:
            undo.callback(fcntl.flock, lock, fcntl.LOCK_UN)
            stamp = dest / ".msm-source.json"
            if stamp.is_file() and json.loads(stamp.read_text()) == source:
                return dest
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
            undo.callback(shutil.rmtree, tmp, ignore_errors=True)
            for f in files:
                rel = f[len(loc.path) + 1:]
                copy_file(loc.join(rel), resolve(tmp / rel))
            (tmp / ".msm-source.json").write_text(json.dumps(source))
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
    return dest
