"""A training run's folder (``run.output_dir``: pretraining and fine-tuning) as a local path or a URI (``s3://``,
``gs://``, ``file://``).

Ray Train writes its own checkpoints through ``pyarrow.fs`` (``storage_filesystem``); this module covers what
the loop and the driver write besides them: ``metrics.jsonl`` (appended every step), TensorBoard event files
(``SummaryWriter`` only writes local files), the config copy, exports and, without Ray, checkpoints. Object
stores cannot append or rename, so those are written into a local *work* folder and :meth:`RunFolder.push`
uploads what changed (at every report, checkpoint and at the end); a folder is uploaded with its marker file last
(``trainer_state.json``, ``config.json``), so a half-uploaded one never looks complete. For a local
``output_dir`` the work folder *is* the output and pushing is a no-op.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs
import yaml

from msm.io import replace_dir
from msm.uri import Location, copy_tree, resolve


class RunFolder:
    def __init__(self, uri: str | Path) -> None:
        self.loc: Location = resolve(uri)
        self._work: Path | None = Path(self.loc.path) if self.loc.local else None
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) last uploaded

    @property
    def work(self) -> Path:
        """The local work folder: the run folder itself, or for a URI a temp folder made on first use (a check that
        only reads the URI makes none)."""
        if self._work is None:
            self._work = Path(tempfile.mkdtemp(prefix="msm-run-"))
        return self._work

    @property
    def remote(self) -> bool:
        return not self.loc.local

    @property
    def where(self) -> Path | str:
        """What a run returns to its caller: the local folder, or the URI as the user wrote it."""
        return self.loc.uri if self.remote else self.work

    def pull(self, name: str) -> Path:
        """The work copy of file ``name``, downloaded first when the run lives at a URI (a resumed run's metrics)."""
        local = self.work / name
        local.parent.mkdir(parents=True, exist_ok=True)
        if self.remote and self.loc.join(name).is_file():
            local.write_bytes(self.loc.join(name).read_bytes())
            self._remember(name)
        return local

    def push(self, *names: str) -> None:
        """Upload the files ``names`` (files or folders, relative to the work folder) that changed since last time."""
        if not self.remote:
            return
        for name in names:
            src = self.work / name
            files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src] if src.is_file() else []
            for f in files:
                rel = f.relative_to(self.work).as_posix()
                st = f.stat()
                if self._pushed.get(rel) != (st.st_size, st.st_mtime_ns):
                    self.loc.join(rel).write_bytes(f.read_bytes())
                    self._pushed[rel] = (st.st_size, st.st_mtime_ns)

    def keep_steps(self, name: str, step: int) -> Path:
        """Cut the JSON-lines log ``name`` (``metrics.jsonl``) to the rows of steps ≤ ``step`` (a restart from the
        step-``step`` checkpoint writes the later ones again, so every step is logged once), a torn last line
        dropped; at a URI the uploaded copy is pulled first and the cut one pushed. Returns the work copy."""
        path = self.pull(name)
        if path.is_file():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        keep.append(line + "\n")
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(keep))
            os.replace(tmp, path)
            self.push(name)
        return path

    def write_config(self, name: str, config: dict) -> None:
        """The run's config copy ``name`` (what ``--resume`` reads), written whole (its manifest: msm.output)."""

        self.loc.join(name).write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    def scratch(self, prefix: str) -> Path:
        """A new temp folder to build an output in: inside the run folder when it is local (so publishing it is a
        rename), else in the system's temp dir."""
        if self.remote:
            return Path(tempfile.mkdtemp(prefix=prefix))
        self.work.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.work))

    def put_dir(self, local: Path, name: str, marker: str) -> None:
        """Publish the finished local folder ``local`` as ``name``, replacing what is there; ``marker`` (a file in
        it) goes last. Local runs: a rename. The local folder is consumed."""
        if not self.remote:

            replace_dir(local, self.work / name)
            return
        dest = self.loc.join(name)
        dest.join(marker).delete()
        dest.delete()
        copy_tree(resolve(local), dest, last=marker)  # streamed; a failed upload raises
        shutil.rmtree(local, ignore_errors=True)

    def upload_dir(self, name: str, marker: str) -> None:
        """Copy the work folder ``name`` to the URI, ``marker`` last (a no-op for a local run, where the work folder
        is the output); the local copy stays (the Hugging Face trainer rotates its checkpoints there)."""
        if not self.remote:
            return
        for rel in copy_tree(resolve(self.work / name), self.loc.join(name), last=marker):
            self._remember(f"{name}/{rel}")

    def folders(self, parent: str, pattern_prefix: str, marker: str) -> list[str]:
        """Names (``parent/x``) of the complete sub-folders of ``parent`` starting with ``pattern_prefix`` (holding
        ``marker``, a file or folder), sorted."""
        base = self.loc.join(parent)
        if not base.exists():
            return []
        infos = base.fs.get_file_info(pafs.FileSelector(base.path, recursive=False))
        names = sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.Directory)
        return [f"{parent}/{n}" for n in names
                if n.startswith(pattern_prefix) and self.loc.join(parent, n, marker).exists()]

    def fetch_dir(self, name: str) -> Path:
        """A local copy of the folder ``name`` (the folder itself when the run is local)."""
        if not self.remote:
            return self.work / name
        out = Path(tempfile.mkdtemp(prefix="msm-fetch-"))
        copy_tree(self.loc.join(name), resolve(out))
        return out

    def delete(self, name: str) -> None:
        if self.remote:
            self.loc.join(name).delete()
        else:
            path = self.work / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def _remember(self, rel: str) -> None:
        st = (self.work / rel).stat()
        self._pushed[rel] = (st.st_size, st.st_mtime_ns)
