"""Every verb × every kind of bad input, as a new user makes them: a clear message naming the input and the fix,
exit 2, within seconds (the checks run before Ray starts), no traceback, and no file of the user's deleted or
changed. Each row is one trial; ``tests/test_output.py`` holds the contract itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from msm.cli import main

REPO = Path(__file__).resolve().parents[1]
PRECIOUS = "precious.txt"


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder holding a user's file (what must survive every trial)."""
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / PRECIOUS).write_text("keep me")
    return folder


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Ein Satz Nummer {i} über Bücher."}) + "\n"
                            for i in range(4)))
    return path


def cli(argv: list[str], capsys) -> tuple[int, str, float]:
    """Exit code, everything printed, seconds."""
    t0 = time.monotonic()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err, time.monotonic() - t0


def check(argv, capsys, expected: str, keep: Path | None = None, seconds: float = 60.0) -> str:
    code, printed, took = cli(argv, capsys)
    assert code == 2, (code, printed[-2000:])
    assert expected in printed, printed[-2000:]
    assert "Traceback" not in printed, printed[-2000:]
    assert took < seconds, took
    if keep is not None:
        assert (keep / PRECIOUS).read_text() == "keep me"
        assert sorted(p.name for p in keep.iterdir()) == [PRECIOUS]  # nothing added either
    return printed


MINE = ["mine", "--config", REPO / "configs/mine/tiny-cpu.yaml"]
PRETRAIN = ["pretrain", "--config", REPO / "configs/pretrain/tiny-cpu.yaml"]
FINETUNE = ["finetune", "--config", REPO / "configs/finetune/tiny-cpu.yaml"]
TUNE = ["tune", "--config", REPO / "configs/tune/tiny-cpu.yaml"]


# ---- an output location holding a user's files: refused, with and without --overwrite -------------------------

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
@pytest.mark.parametrize("verb", ["mine", "index", "eval", "pretrain", "finetune", "tune", "prepare", "export-st"])
def test_a_folder_holding_a_users_file_is_never_written(verb, overwrite, user_folder, corpus, tiny_model_dir,
                                                       shared_data, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    argv = {"mine": [*MINE, "--out", user_folder, f"data_dir={shared_data}"],
            "index": ["index", "--corpus", corpus, "--model", tiny_model_dir, "--out", user_folder],
            "eval": ["eval", "--model", tiny_model_dir, "--tasks", "tatoeba", "--data-dir", shared_data,
                     "--out", user_folder],
            "pretrain": [*PRETRAIN, "--out", user_folder],
            "finetune": [*FINETUNE, "--out", user_folder],
            "tune": [*TUNE, "--out", user_folder],
            "prepare": ["models", "prepare", "tiny-random", "--out", user_folder],
            "export-st": ["models", "export-st", tiny_model_dir, "--out", user_folder]}[verb]
    expected = "not a model folder" if verb == "prepare" else "not a sentence-transformers folder" \
        if verb == "export-st" else f"not an msm {verb} output (it holds {PRECIOUS})"
    check([*argv, *overwrite], capsys, expected, keep=user_folder, seconds=30)


@pytest.mark.parametrize("verb", ["mine", "index", "pretrain"])
def test_a_prefix_holding_a_users_object_on_s3_is_never_written(verb, s3_server, corpus, tiny_model_dir,
                                                                shared_data, capsys, monkeypatch):
    """The same contract at a URI (the verbs that write to object storage), checked before Ray starts."""
    import uuid

    from msm.uri import resolve

    monkeypatch.chdir(REPO)
    where = f"s3://runs/user-{uuid.uuid4().hex[:8]}"
    resolve(where).join(PRECIOUS).write_text("keep me")
    argv = {"mine": [*MINE, "--out", where, f"data_dir={shared_data}"],
            "index": ["index", "--corpus", corpus, "--model", tiny_model_dir, "--out", where],
            "pretrain": [*PRETRAIN, "--out", where]}[verb]
    for overwrite in ([], ["--overwrite"]):
        check([*argv, *overwrite], capsys, f"{where}: not an msm {verb} output (it holds {PRECIOUS})", seconds=30)
    assert resolve(where).join(PRECIOUS).read_text() == "keep me"
    assert [f.rsplit("/", 1)[-1] for f in resolve(where).files()] == [PRECIOUS]


def test_a_rejected_rerun_changes_nothing_in_the_run_it_refused(tmp_path, capsys, monkeypatch):
    """A run folder of another config: the saved config, metrics and checkpoints stay as they were, so
    ``--resume`` still continues the original run."""
    monkeypatch.chdir(REPO)
    run = tmp_path / "run"
    run.mkdir()
    original = yaml.safe_load((REPO / "configs/pretrain/tiny-cpu.yaml").read_text())
    original["run"]["output_dir"] = str(run)
    from msm.config import config_from_dict, to_dict
    from msm.train.config import PretrainConfig
    from msm.train.trainer import absolute

    saved = yaml.safe_dump(to_dict(absolute(config_from_dict(original, PretrainConfig))))
    (run / "pretrain_config.yaml").write_text(saved)
    (run / "metrics.jsonl").write_text('{"step": 4, "loss": 1.0, "time": 1}\n')
    printed = check([*PRETRAIN, "--out", run, "model.encoder=e5-small"], capsys,
                    'holds an msm pretrain output made with other settings (model.encoder: "tiny-random" → "e5-small")')
    assert f"msm pretrain --resume {run}" in printed and "step 4/4" not in printed  # no stale progress line
    assert (run / "pretrain_config.yaml").read_text() == saved
    assert (run / "metrics.jsonl").read_text() == '{"step": 4, "loss": 1.0, "time": 1}\n'
    # --overwrite with another mistake in the same command: refused by that check, the old run still whole
    check([*PRETRAIN, "--out", run, "--overwrite", "model.encoder=no-such-model"], capsys, "'no-such-model'")
    assert (run / "pretrain_config.yaml").read_text() == saved and (run / "metrics.jsonl").is_file()
    check(["pretrain", "--resume", run, "--overwrite"], capsys, "pass one of them")
    assert (run / "pretrain_config.yaml").read_text() == saved


# ---- models that do not exist: named before anything starts ----------------------------------------------------

@pytest.mark.parametrize("verb", ["mine", "index", "eval", "pretrain", "finetune", "export-st", "smoke"])
def test_a_model_that_does_not_exist_is_named_at_once(verb, tmp_path, corpus, shared_data, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    argv = {"mine": [*MINE, "--out", tmp_path / "o", f"data_dir={shared_data}", "embed.model=no-such-model"],
            "index": ["index", "--corpus", corpus, "--model", "no-such-model", "--out", tmp_path / "o"],
            "eval": ["eval", "--model", "no-such-model", "--tasks", "tatoeba", "--data-dir", shared_data],
            "pretrain": [*PRETRAIN, "--out", tmp_path / "o", "model.encoder=no-such-model"],
            "finetune": [*FINETUNE, "--out", tmp_path / "o", "model.encoder=no-such-model"],
            "export-st": ["models", "export-st", "no-such-model", "--out", tmp_path / "o"],
            "smoke": ["smoke", "--model", "no-such-model"]}[verb]
    key = {"mine": "embed.model", "pretrain": "model.encoder", "finetune": "model.encoder"}.get(verb, "")
    if verb == "export-st":  # it needs a local folder (it copies the files): a hub id is not enough
        check(argv, capsys, "no-such-model: not a local model folder; pass an HF model folder", seconds=30)
        return
    printed = check(argv, capsys, "'no-such-model'", seconds=30)
    assert key in printed and "not a model folder, not an alias" in printed
    assert not (tmp_path / "o").exists()


# ---- inputs: missing, empty, of the wrong kind, malformed ------------------------------------------------------

def test_mine_inputs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for case, make, expected in [
        ("missing", lambda p: None, "does not exist"),
        ("empty", lambda p: p.mkdir(), "is an empty folder; put .jsonl / .json / .jsonl.gz files there"),
        ("csv", lambda p: p.with_suffix(".csv").write_text("id,text\n1,x\n"), "is not a .jsonl / .json / .jsonl.gz file"),
        ("wrong files", lambda p: (p.mkdir(), (p / "a.csv").write_text("x")), "holds no .jsonl / .json / .jsonl.gz file"),
    ]:
        path = tmp_path / case.replace(" ", "_")
        make(path)
        if case == "csv":
            path = path.with_suffix(".csv")
        config = tmp_path / f"{case.replace(' ', '_')}.yaml"
        config.write_text(yaml.safe_dump({"inputs": [{"kind": "jsonl", "path": str(path)}], "embed": {"model": "tiny-random"}}))
        printed = check(["mine", "--config", config, "--out", tmp_path / "out"], capsys, expected, seconds=30)
        assert "inputs[0] (jsonl)" in printed and not (tmp_path / "out").exists()


def test_index_inputs(tmp_path, corpus, tiny_model_dir, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.jsonl").write_text('{"id": "a", "text": "x"}\n')
    (mixed / "b.csv").write_text("id,text\n")
    csv = tmp_path / "c.csv"
    csv.write_text("id,text\n")
    for path, expected in [(tmp_path / "nope.jsonl", "--corpus " + str(tmp_path / "nope.jsonl") + ": not found"),
                           (empty, "an empty folder"), (mixed, "must all be .jsonl or all .parquet"),
                           (csv, "must all be .jsonl or all .parquet (found .csv)")]:
        check(["index", "--corpus", path, "--model", tiny_model_dir, "--out", tmp_path / "o"], capsys, expected,
              seconds=30)
    check(["index", "--corpus", corpus, "--model", tiny_model_dir, "--out", tmp_path / "o", "--batch-size", "0"],
          capsys, "expected a whole number >= 1, got 0")


def test_training_inputs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    check([*PRETRAIN, "--out", tmp_path / "p", "data.source=mined", f"data.path={tmp_path / 'nothing'}"], capsys,
          "not an `msm mine` output", seconds=30)
    check([*PRETRAIN, "--out", tmp_path / "p", "data.source=jsonl", f"data.path={tmp_path / 'x.jsonl'}"], capsys,
          "does not exist", seconds=30)
    check([*FINETUNE, "--out", tmp_path / "f", f"data.path={tmp_path / 'nothing'}"], capsys,
          f"data.path {tmp_path / 'nothing'}: does not exist", seconds=30)
    check(["pretrain", "--resume", tmp_path], capsys, "no pretrain_config.yaml there")
    check(["finetune", "--resume", tmp_path], capsys, "no finetune_config.yaml there")
    check(["tune", "--resume", tmp_path], capsys, "no sweep.yaml there")
    assert not (tmp_path / "p").exists() and not (tmp_path / "f").exists()


# ---- configs, flags and numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    ([*MINE, "pair.kk=3"], "pair.kk: unknown key for PairConfig"),
    ([*PRETRAIN, "optim.nope=1"], "optim.nope: unknown key"),
    ([*FINETUNE, "train.batch_size=1"], "batch_size must be >= 2"),
    ([*TUNE, "space.model.nope={grid: [1]}"], "model.nope"),
    ([*PRETRAIN, "run.stall_after_s=0"], "stall_after_s must be > 0"),
    (["eval", "--model", "e5-small", "--max-queries=-5"], "expected a whole number >= 1, got -5"),
    (["eval", "--model", "e5-small", "--tasks", "nope"], "--tasks: unknown task(s) ['nope']"),
    (["ui", "--port", "99999"], "expected a port number (1-65535), got 99999"),
    (["ui", "--data-root", "/no/such/folder"], "--data-root /no/such/folder: not a folder"),
    (["smoke", "--steps", "0"], "expected a whole number >= 1, got 0"),
    (["pretrain", "--config", "configs/pretrain/tiny-cpu.yaml", "--resume", "x"], "pass exactly one of --config"),
    (["pretrain", "--resume", "x", "optim.max_steps=2"], "--resume continues a run with its saved config"),
])
def test_bad_configs_and_flags_are_named(argv, expected, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    check(argv, capsys, expected, seconds=30)


def test_a_config_that_is_not_yaml_is_a_users_error_with_its_whole_message(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [\n  - kind: jsonl\n  path: x\n")
    printed = check(["mine", "--config", bad], capsys, f"msm mine: error: {bad}: not valid YAML")
    assert "line" in printed and "unexpected error" not in printed


def test_tune_keeps_its_own_verbosity_apart_from_the_global_flag():
    from msm.cli import build_parser

    args = build_parser().parse_args(["tune", "--config", "x.yaml"])
    assert args.verbose is False and args.tune_verbose is None  # Tune's tables off unless asked for
    args = build_parser().parse_args(["tune", "--config", "x.yaml", "--verbose", "--tune-verbose", "2"])
    assert args.verbose is True and args.tune_verbose == 2


def test_eval_languages_are_checked_before_any_model_loads(shared_data, tmp_path, capsys):
    printed = check(["eval", "--model", "e5-small", "--tasks", "tatoeba", "--langs", "deu,fra,de", "--data-dir",
                     shared_data, "--out", tmp_path / "e"], capsys, "--langs: tatoeba has no language 'de'",
                    seconds=15)
    assert "it has" in printed and not (tmp_path / "e").exists()
    check(["eval", "--model", "e5-small", "--data-dir", tmp_path / "nope"], capsys, "not a folder")


def test_submit_checks_before_it_uploads(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    base = ["submit", "pretrain", "--config", "configs/pretrain/tiny-cpu.yaml"]
    check([*base, "--address", "127.0.0.1:9"], capsys, "give the Ray job API as a URL with its scheme, e.g. "
                                                       "http://127.0.0.1:9")
    check([*base, "--address", "http://127.0.0.1:9"], capsys, "no Ray job API answers there", seconds=15)
    check(["submit", "pretrain", "optim.max_stepz=3", "--config", "configs/pretrain/tiny-cpu.yaml", "--address",
           "http://127.0.0.1:9"], capsys, "optim.max_stepz: unknown key")
    check([*base, "--address", "http://127.0.0.1:9", "--set", "optim.max_stepz=3"], capsys,
          "optim.max_stepz: unknown key")
    check(["submit", "evaluate", "--address", "http://127.0.0.1:9", "--config", "x.yaml"], capsys,
          "job 'evaluate': ")


def test_every_option_of_every_verb_documents_its_default():
    import argparse

    from msm.cli import build_parser, leaf_parsers

    missing = []
    for leaf in leaf_parsers(build_parser()):
        for action in leaf._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
                continue
            if action.required:
                continue
            if "default" not in (action.help or ""):
                missing.append(f"{leaf.prog} {action.option_strings[0]}")
    assert not missing, missing
