"""One output contract for every verb: what a verb does with what it finds at its output location.

| what is at the location                                    | without ``--overwrite``              | with ``--overwrite``   |
|------------------------------------------------------------|--------------------------------------|------------------------|
| nothing, or an empty folder                                | write                                | write                  |
| a complete output of this verb with the same settings      | reuse it (a run: resume or report)   | replace it             |
| a complete output of this verb with other settings         | refuse, naming what differs          | replace it             |
| this verb's unfinished output (a commit cut short)         | replace it                           | replace it             |
| anything this verb did not write (a user's files)          | refuse, naming them                  | refuse, naming them    |

A verb recognises its own output by its **manifest** (``manifest.json`` of ``msm mine``, ``build.json`` of
``msm index``, ``results.json`` of ``msm eval``, the config copy of a training run, ``modules.json`` of a
sentence-transformers export), written last, and knows the top-level names it writes (:attr:`Kind.owned`).
``--overwrite`` deletes only those names and never a folder holding anything else; a refused run changes nothing
at its location (it is checked before anything is written, before Ray starts). An object-store commit that was cut
short is marked by :data:`PARTIAL` (written first, removed last, see :func:`msm.uri.commit_dir`), so a re-run
recognises it as its own and replaces it.

Works on local paths and URIs alike (:class:`msm.uri.Location`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow.fs as pafs
import yaml

from msm.errors import MSMError
from msm.uri import PARTIAL, Location, commit_dir, resolve, storage_hint

State = Literal["new", "same", "other", "partial"]


@dataclass(frozen=True)
class Kind:
    """A verb's output: its manifest (present = complete), the top-level names it writes, and how it reads the
    settings a manifest was made with (``settings(text)`` → dict; None: the manifest is not this verb's)."""

    verb: str  # "mine", as in ``msm mine``
    manifest: str
    owned: frozenset[str]
    settings: Callable[[str], dict | None]
    what: str = "output folder"  # how the location is named in messages ("--out", "run.output_dir", ...)
    resume_hint: str = ""  # e.g. " (or continue it with msm pretrain --resume DIR)"
    owned_prefixes: tuple[str, ...] = ()  # names starting with these are the verb's too (scratch folders)


@dataclass
class Found:
    """What :func:`inspect` found."""

    state: State | Literal["foreign"]
    location: Location
    manifest: dict | None = None  # the settings of the complete output found (same / other)
    differs: list[str] = field(default_factory=list)  # dotted keys whose values differ (other)
    foreign: list[str] = field(default_factory=list)  # names the verb did not write


def json_settings(key: str | None = None, *, verb: str | None = None,
                  ignore: tuple[str, ...] = ()) -> Callable[[str], dict | None]:
    """Settings from a JSON manifest: the whole object or its ``key``; with ``verb``, a manifest that names another
    verb is not this verb's; ``ignore``: dotted keys left out of comparisons (where an output was written)."""
    def read(text: str) -> dict | None:
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        if not isinstance(obj, dict) or (verb is not None and obj.get("verb", verb) != verb):
            return None
        found = obj.get(key) if key else obj
        return drop(found, ignore) if isinstance(found, dict) else None
    return read


def drop(settings: dict, keys: tuple[str, ...]) -> dict:
    """A copy of ``settings`` without the dotted ``keys``."""
    out = json.loads(json.dumps(settings, default=str))
    for key in keys:
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (``old → new`` as ``key: old → new``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += differences(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if _norm(old) == _norm(new) else [f"{prefix or 'settings'}: {_short(old)} → {_short(new)}"]


def _norm(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def _short(v: Any) -> str:
    text = json.dumps(v, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def entries(loc: Location) -> list[str] | None:
    """Top-level names in the folder ``loc`` (None when nothing is there; a file: its own name)."""
    info = loc.fs.get_file_info(loc.path)
    if info.type == pafs.FileType.NotFound:
        return None
    if info.type == pafs.FileType.File:
        return [info.base_name or loc.path]
    infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=False))
    return sorted(i.base_name for i in infos)


def inspect(loc: Location, kind: Kind, settings: dict) -> Found:
    """Classify what is at ``loc`` for ``kind`` (see the module docstring)."""
    try:
        names = entries(loc)
        if names is not None and loc.fs.get_file_info(loc.path).type == pafs.FileType.File:
            return Found("foreign", loc, foreign=names)
        manifest_text = loc.join(kind.manifest).read_text() if names and kind.manifest in names else None
    except OSError as exc:
        hint = storage_hint(str(exc), loc.uri)
        raise MSMError(f"{loc.uri}: unreachable or not permitted ({exc}); " + (
            f"check the {kind.what}, the credentials and, for S3-compatible stores, AWS_ENDPOINT_URL"
            if hint.startswith("check the URI") else hint)) from exc
    if not names:
        return Found("new", loc)
    foreign = [n for n in names if n not in kind.owned and n != PARTIAL and not n.startswith(kind.owned_prefixes)]
    if manifest_text is not None:
        found = kind.settings(manifest_text)
        if found is None:  # a file of that name that is not this verb's manifest
            return Found("foreign", loc, foreign=names)
        if foreign:
            return Found("foreign", loc, manifest=found, foreign=foreign)
        diff = differences(found, settings)
        return Found("other" if diff else "same", loc, manifest=found, differs=diff)
    if foreign:
        return Found("foreign", loc, foreign=foreign)
    if PARTIAL in names:  # the marker an object-store commit puts first and removes last: its own, unfinished
        return Found("partial", loc)
    return Found("foreign", loc, foreign=[n for n in names if n != PARTIAL])  # names like its own, not known as its own


def claim(target: str | Location, kind: Kind, settings: dict, overwrite: bool = False) -> Found:
    """Apply the contract at ``target`` before anything is written: returns what was found when the verb may go on
    (``new``; ``same``: reuse or resume; ``partial``; ``other`` only with ``overwrite``), else raises
    :class:`~msm.errors.MSMError` naming the location, what is there and the fix. Nothing is deleted here: the
    caller replaces the output when it commits (or calls :func:`clear` for a run folder)."""
    loc = target if isinstance(target, Location) else resolve(target)
    found = inspect(loc, kind, settings)
    if found.state == "foreign":
        shown = ", ".join(found.foreign[:5]) + (f" and {len(found.foreign) - 5} more" if len(found.foreign) > 5 else "")
        what = (f"an msm {kind.verb} output with other files beside it" if found.manifest is not None
                else f"not an msm {kind.verb} output")
        raise MSMError(f"{loc.uri}: {what} (it holds {shown}); msm {kind.verb} writes only into a new or empty "
                       f"folder or over its own output, so nothing was changed: choose another {kind.what}"
                       + (" (--overwrite replaces only what msm " + kind.verb + " wrote)" if overwrite else ""))
    if found.state == "other" and not overwrite:
        raise MSMError(f"{loc.uri}: holds an msm {kind.verb} output made with other settings "
                       f"({'; '.join(found.differs[:4])}{'; ...' if len(found.differs) > 4 else ''}); nothing was "
                       f"changed: pass --overwrite to replace it{kind.resume_hint}, or choose another {kind.what}")
    return found


def commit(staged: Location, out: Location, kind: Kind, manifest: str) -> None:
    """Publish ``staged`` at ``out`` (:func:`msm.uri.commit_dir`, the manifest last) after looking again: anything
    that appeared at ``out`` since :func:`claim` (a user's file) stops the commit, the staged output kept beside it;
    on an object store only the verb's own names are replaced."""
    found = inspect(out, kind, {})
    if found.state == "foreign":
        raise MSMError(f"{out.uri}: files appeared there while msm {kind.verb} ran ({', '.join(found.foreign[:5])}); "
                       f"nothing there was changed: the finished output is in {staged.uri}; move those files away "
                       "and run again (the same settings reuse nothing: it will redo the work), or choose another "
                       f"{kind.what}")
    commit_dir(staged, out, manifest, kind.manifest, owned=kind.owned | {kind.manifest})


def clear(loc: Location, kind: Kind) -> None:
    """Delete what ``kind`` wrote at ``loc`` (its owned names, its partial marker), nothing else; the manifest first,
    so an interrupted clear never leaves a complete-looking output."""
    names = entries(loc) or []
    loc.join(kind.manifest).delete()
    for n in names:
        if n in kind.owned or n.startswith(kind.owned_prefixes):
            loc.join(n).delete()
    loc.join(PARTIAL).delete()


# ---- training runs (msm pretrain, msm finetune) -----------------------------------------------------------------

# where, how patiently, how often it saves or reports, and the fault drill: not what the run computes
RUN_IGNORED = ("run.output_dir", "run.stall_after_s", "run.wait_for_nodes", "run.max_failures", "run.report_every",
               "run.keep_checkpoints", "run.fail_at_step", "run.placement_strategy")


def yaml_settings(ignore: tuple[str, ...] = RUN_IGNORED) -> Callable[[str], dict | None]:
    """Settings from a run's config copy (YAML), without the keys that do not change what the run computes."""
    def read(text: str) -> dict | None:
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        return drop(obj, ignore) if isinstance(obj, dict) and isinstance(obj.get("run"), dict) else None
    return read


@dataclass
class RunClaim:
    """What :func:`claim_run` decided. ``state``: ``new`` (nothing of this verb's there), ``resume`` (the same
    config's unfinished run: continue from its latest checkpoint), ``complete`` (the same config's finished run:
    nothing to do) or ``replace`` (``overwrite`` over this verb's run: call :meth:`replace` once every other check
    has passed, so a run refused for another reason still changes nothing)."""

    state: Literal["new", "resume", "complete", "replace"]
    location: Location
    kind: Kind

    def replace(self) -> None:
        if self.state == "replace":
            clear(self.location, self.kind)
            self.state = "new"


def claim_run(output_dir: str, verb: str, config_file: str, config: dict, files: frozenset[str],
              overwrite: bool = False, complete: str = "export/config.json") -> RunClaim:
    """The contract for a training run folder (its manifest: the config copy, written when the run starts).
    Another config's run is refused unless ``overwrite``; anything else is refused always (:func:`claim`)."""
    loc = resolve(output_dir)
    names = set(files) | {config["run"]["name"]}
    if loc.join(config_file).is_file():  # its own Ray Train folder is named after the run it was made by
        saved = yaml_settings(())(loc.join(config_file).read_text())
        if saved is not None and isinstance(saved["run"].get("name"), str):
            names.add(saved["run"]["name"])
    kind = Kind(verb, config_file, frozenset(names), yaml_settings(), what="run.output_dir",
                resume_hint=f" (or continue it with its own config: msm {verb} --resume {loc.uri})",
                owned_prefixes=(".export-", ".checkpoint-", ".step-", ".corpus.", ".validate_storage_marker"))
    found = claim(loc, kind, drop(config, RUN_IGNORED), overwrite)
    if overwrite and found.state != "new":
        return RunClaim("replace", loc, kind)
    if found.state == "same":
        return RunClaim("complete" if loc.join(complete).exists() else "resume", loc, kind)
    return RunClaim("new", loc, kind)
