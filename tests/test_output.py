"""msm.output: the one output contract (what a verb does with what it finds at its output location), and the
commit protocol it rests on, on a local disk and on an S3 server (moto, loopback)."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from msm.errors import MSMError
from msm.output import Kind, claim, claim_run, clear, differences, inspect, json_settings
from msm.uri import PARTIAL, commit_dir, resolve, sibling

KIND = Kind("mine", "manifest.json", frozenset({"manifest.json", "documents", "pairs"}),
            json_settings("config", verb="mine", ignore=("output_dir",)), what="output_dir")
SETTINGS = {"embed": {"model": "e5-small", "batch_size": 64}, "pair": {"k": 4}}
PRECIOUS = "precious.txt"


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    """A fresh output location: a local folder or a prefix on the S3 test server."""
    if request.param == "local":
        return str(tmp_path / "out")
    request.getfixturevalue("s3_server")
    return f"s3://runs/contract-{uuid.uuid4().hex[:8]}/out"


def write_output(uri: str, settings: dict, extra: dict[str, str] | None = None) -> None:
    """A complete output as commit_dir publishes it (staged, manifest last), plus ``extra`` files beside it."""
    out = resolve(uri)
    staged = sibling(out, "staging")
    staged.join("documents", "part-0.parquet").write_bytes(b"rows")
    staged.join("pairs", "part-0.parquet").write_bytes(b"rows")
    commit_dir(staged, out, json.dumps({"verb": "mine", "config": {**settings, "output_dir": uri}}))
    for name, text in (extra or {}).items():
        out.join(name).write_text(text)


def test_nothing_or_an_empty_folder_is_new(where):
    assert inspect(resolve(where), KIND, SETTINGS).state == "new"
    resolve(where).join("documents").mkdir()
    if where.startswith("/"):  # a local empty folder (object stores have no empty folders)
        import shutil

        shutil.rmtree(f"{where}/documents")
        assert inspect(resolve(where), KIND, SETTINGS).state == "new"


def test_the_same_settings_are_reused_and_other_settings_are_named(where):
    write_output(where, SETTINGS)
    found = claim(where, KIND, SETTINGS)
    assert found.state == "same" and found.manifest == SETTINGS  # output_dir is not a setting
    other = {"embed": {"model": "tiny-random", "batch_size": 64}, "pair": {"k": 4}}
    with pytest.raises(MSMError) as err:
        claim(where, KIND, other)
    assert str(err.value) == (f"{resolve(where).uri}: holds an msm mine output made with other settings (embed.model: "
                              '"e5-small" → "tiny-random"); nothing was changed: pass --overwrite to replace it, or '
                              "choose another output_dir")
    assert claim(where, KIND, other, overwrite=True).state == "other"
    assert resolve(where).join("manifest.json").is_file()  # claiming deletes nothing


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_users_files_are_never_claimed(where, overwrite):
    out = resolve(where)
    out.join("precious.txt").write_text("keep")
    with pytest.raises(MSMError) as err:
        claim(where, KIND, SETTINGS, overwrite=overwrite)
    assert str(err.value).startswith(f"{out.uri}: not an msm mine output (it holds precious.txt); msm mine writes "
                                     "only into a new or empty folder or over its own output, so nothing was changed")
    assert ("--overwrite replaces only what msm mine wrote" in str(err.value)) == overwrite
    assert out.join("precious.txt").read_text() == "keep"


def test_an_output_with_a_users_file_beside_it_is_refused_even_with_overwrite(where):
    write_output(where, SETTINGS, {"notes.md": "mine"})
    for overwrite in (False, True):
        with pytest.raises(MSMError, match=r"an msm mine output with other files beside it \(it holds notes.md\)"):
            claim(where, KIND, SETTINGS, overwrite=overwrite)


def test_a_file_of_the_manifests_name_that_is_not_ours_is_foreign(where):
    out = resolve(where)
    out.join("manifest.json").write_text(json.dumps({"verb": "index", "config": SETTINGS}))
    assert inspect(out, KIND, SETTINGS).state == "foreign"
    out.join("manifest.json").write_text("not json at all")
    assert inspect(out, KIND, SETTINGS).state == "foreign"


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(MSMError, match="not an msm mine output"):
        claim(str(tmp_path / "out"), KIND, SETTINGS)


def test_an_unfinished_commit_is_this_verbs_own_and_lookalike_names_are_not(where):
    out = resolve(where)
    out.join("pairs", "part-0.parquet").write_bytes(b"a user's own pairs/ folder")
    with pytest.raises(MSMError, match=r"not an msm mine output \(it holds pairs\)"):  # the verb's names, no marker
        claim(where, KIND, SETTINGS, overwrite=True)
    out.join(PARTIAL).write_text("commit in progress")  # what commit_dir puts first and removes last
    assert claim(where, KIND, SETTINGS).state == "partial"


def test_a_file_that_appears_before_the_commit_stops_it(where):
    """claim() looks when the verb starts; commit() looks again before it publishes, and keeps the staged output."""
    from msm.output import commit

    out = resolve(where)
    assert claim(where, KIND, SETTINGS).state == "new"
    staged = sibling(out, "staging")
    staged.join("pairs", "part-0.parquet").write_bytes(b"rows")
    out.join(PRECIOUS).write_text("arrived meanwhile")
    with pytest.raises(MSMError, match=r"files appeared there while msm mine ran \(precious.txt\)"):
        commit(staged, out, KIND, json.dumps({"verb": "mine", "config": SETTINGS}))
    assert out.join(PRECIOUS).read_text() == "arrived meanwhile" and staged.join("pairs", "part-0.parquet").exists()


def test_clear_deletes_what_the_verb_wrote_and_nothing_else(tmp_path):
    write_output(str(tmp_path / "out"), SETTINGS, {"notes.md": "a user's"})
    (tmp_path / "out" / PARTIAL).write_text("x")
    clear(resolve(str(tmp_path / "out")), KIND)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.md"]


def test_differences_lists_every_changed_leaf():
    assert differences({"a": {"b": 1, "c": [1, 2]}, "d": "x"}, {"a": {"b": 2, "c": [1, 2]}, "e": None}) == [
        "a.b: 1 → 2", 'd: "x" → null']
    assert differences({"a": 1.0}, {"a": 1}) == []  # a float field read from "1" or "1.0": the same setting


# ---- the commit protocol under faults --------------------------------------------------------------------------

class Boom(RuntimeError):
    pass


def _fail_at(monkeypatch, n: int):
    """Make the n-th write/delete/copy of a commit raise (counting every one the commit makes)."""
    import pyarrow.fs as pafs

    from msm import uri

    calls = {"n": 0}

    def hit():
        calls["n"] += 1
        if calls["n"] == n:
            raise Boom(f"injected fault at operation {n}")

    for name in ("write_text", "delete"):
        original = getattr(uri.Location, name)

        def wrapped(self, *a, _original=original, **k):
            hit()
            return _original(self, *a, **k)
        monkeypatch.setattr(uri.Location, name, wrapped)
    copy = pafs.copy_files

    def copy_files(*a, **k):
        hit()
        return copy(*a, **k)
    monkeypatch.setattr(uri.pafs, "copy_files", copy_files)
    return calls


@pytest.mark.parametrize("fault", range(1, 12))
def test_a_commit_cut_anywhere_leaves_the_old_output_or_an_unfinished_one_never_a_manifest_over_missing_parts(
        s3_server, monkeypatch, fault):
    """Object stores have no rename: the commit is marker, old manifest out, old files out, copy, manifest, marker
    out. A failure at any of those steps leaves the old complete output, or a marked unfinished one without a
    manifest, or the new complete one; and a re-run recognises the unfinished one as its own and commits."""
    where = f"s3://runs/faults-{uuid.uuid4().hex[:8]}/out"
    write_output(where, SETTINGS)
    out = resolve(where)
    old_manifest = out.join("manifest.json").read_text()
    staged = sibling(out, "staging")
    staged.join("documents", "part-0.parquet").write_bytes(b"new rows")
    staged.join("pairs", "part-0.parquet").write_bytes(b"new rows")
    staged.join("pairs", "part-1.parquet").write_bytes(b"new rows")
    new_manifest = json.dumps({"verb": "mine", "config": {**SETTINGS, "pair": {"k": 8}}})
    calls = _fail_at(monkeypatch, fault)
    try:
        commit_dir(staged, out, new_manifest)
        failed = False
    except Boom:
        failed = True
    monkeypatch.undo()
    names = {f.rsplit("/", 1)[-1] for f in out.files()}
    if not failed:  # past the commit's last operation
        assert calls["n"] < fault
    if out.join("manifest.json").is_file():
        text = out.join("manifest.json").read_text()
        assert text in (old_manifest, new_manifest)
        parts = out.join("pairs").files()
        if text == new_manifest:  # the new manifest only ever sits over the new parts, all of them
            assert len(parts) == 2 and out.join("documents", "part-0.parquet").read_bytes() == b"new rows"
        else:
            assert [resolve(f"s3://{p}").read_bytes() for p in parts] == [b"rows"]
    else:
        assert PARTIAL in names  # no manifest: always marked unfinished
        assert inspect(out, KIND, SETTINGS).state == "partial"
    if failed:  # the re-run: stage again, the contract lets it replace what it finds, and it commits
        assert claim(where, KIND, {**SETTINGS, "pair": {"k": 8}}, overwrite=True).state in ("same", "other", "partial")
        staged.join("documents", "part-0.parquet").write_bytes(b"new rows")
        staged.join("pairs", "part-0.parquet").write_bytes(b"new rows")
        staged.join("pairs", "part-1.parquet").write_bytes(b"new rows")
        commit_dir(staged, out, new_manifest)
    assert out.join("manifest.json").read_text() == new_manifest and not out.join(PARTIAL).exists()
    assert len(out.join("pairs").files()) == 2


def test_a_local_commit_is_one_rename(tmp_path, monkeypatch):
    """On a local disk the staged folder (manifest inside) replaces the output by renames: a failure before the
    rename leaves the old output whole."""
    write_output(str(tmp_path / "out"), SETTINGS)
    out = resolve(str(tmp_path / "out"))
    staged = sibling(out, "staging")
    staged.join("pairs", "part-0.parquet").write_bytes(b"new")
    monkeypatch.setattr("msm.uri.replace_dir", lambda *a: (_ for _ in ()).throw(Boom("before the rename")))
    with pytest.raises(Boom):
        commit_dir(staged, out, json.dumps({"verb": "mine", "config": SETTINGS}))
    assert (tmp_path / "out" / "pairs" / "part-0.parquet").read_bytes() == b"rows"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["config"]["embed"] == SETTINGS["embed"]


# ---- training runs -----------------------------------------------------------------------------------------------

RUN = frozenset({"run_config.yaml", "metrics.jsonl", "export", "checkpoints"})


def run_config(**run) -> dict:
    return {"model": {"encoder": "tiny-random"}, "optim": {"max_steps": 4},
            "run": {"output_dir": "x", "name": "msm", "stall_after_s": 300.0, **run}}


def start_run(folder, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    (folder / config["run"]["name"]).mkdir(exist_ok=True)


def test_a_run_folder_is_new_resumed_complete_or_refused(tmp_path):
    folder = tmp_path / "run"
    cfg = run_config()
    assert claim_run(str(folder), "pretrain", "run_config.yaml", cfg, RUN).state == "new"
    start_run(folder, cfg)
    patient = run_config(stall_after_s=999.0, output_dir="elsewhere")  # where and how patiently: the same run
    assert claim_run(str(folder), "pretrain", "run_config.yaml", patient, RUN).state == "resume"
    (folder / "export").mkdir()
    (folder / "export" / "config.json").write_text("{}")
    assert claim_run(str(folder), "pretrain", "run_config.yaml", cfg, RUN).state == "complete"
    before = (folder / "run_config.yaml").read_text()
    other = {**cfg, "optim": {"max_steps": 8}}
    with pytest.raises(MSMError) as err:
        claim_run(str(folder), "pretrain", "run_config.yaml", other, RUN)
    assert "holds an msm pretrain output made with other settings (optim.max_steps: 4 → 8)" in str(err.value)
    assert f"or continue it with its own config: msm pretrain --resume {folder}" in str(err.value)
    assert (folder / "run_config.yaml").read_text() == before and (folder / "export").is_dir()  # untouched


def test_overwrite_starts_over_and_a_renamed_run_still_owns_its_old_folder(tmp_path):
    folder = tmp_path / "run"
    start_run(folder, run_config(name="first"))
    renamed = run_config(name="second")
    claimed = claim_run(str(folder), "pretrain", "run_config.yaml", renamed, RUN, overwrite=True)
    assert claimed.state == "replace" and (folder / "first").is_dir()  # nothing deleted before the caller's checks
    claimed.replace()
    assert claimed.state == "new" and list(folder.iterdir()) == []
    start_run(folder, run_config())
    (folder / "thesis.tex").write_text("a user's")
    with pytest.raises(MSMError, match=r"other files beside it \(it holds thesis.tex\)"):
        claim_run(str(folder), "pretrain", "run_config.yaml", run_config(), RUN, overwrite=True)
    assert (folder / "thesis.tex").is_file() and (folder / "run_config.yaml").is_file()
