"""The UI's data roots at URIs (an S3-compatible server, moto on loopback): a URI root lists the runs, evaluation
reports and mined corpora cluster jobs wrote there, through local mirrors without their checkpoints; the root guard
refuses a URI outside every URI root, ``..`` included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msm.errors import MSMError
from msm.ui.paths import data_roots, find_dirs, guard_path
from msm.uri import resolve


def test_roots_split_on_the_path_separator_but_not_inside_a_uri(tmp_path):
    roots = data_roots(f"s3://runs/team//a/:{tmp_path}:gs://b/x")
    assert roots == ["s3://runs/team/a", tmp_path.resolve(), "gs://b/x"]


def test_a_uri_root_lists_runs_through_mirrors_and_guards_uris(s3_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MSM_CACHE_DIR", str(tmp_path / "cache"))
    run = resolve("s3://runs/ui/pretrain")
    run.join("metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.5}) + "\n")
    run.join("tiny", "checkpoint_000001", "model", "weights.bin").write_bytes(b"x" * 100)
    resolve("s3://runs/ui/eval/results.json").write_text(json.dumps({"verb": "eval", "results": []}))
    resolve("s3://runs/other/metrics.jsonl").write_text("{}\n")
    (tmp_path / "local").mkdir()
    roots = data_roots(f"s3://runs/ui:{tmp_path / 'local'}")
    found = find_dirs(roots, "metrics.jsonl")
    assert len(found) == 1 and (found[0] / "metrics.jsonl").read_text().startswith('{"step": 1')
    assert not list(found[0].rglob("weights.bin"))  # checkpoints are not mirrored
    assert [(d / "results.json").is_file() for d in find_dirs(roots, "results.json")] == [True]
    assert guard_path("s3://runs/ui/pretrain", roots) == found[0]
    assert guard_path(str(found[0]), roots) == found[0]  # what a page does with a listed folder
    from msm.ui.settings import UISettings
    assert UISettings(roots).index_dir == tmp_path / "local" / "ui-indexes"  # written to a local root, not a URI
    assert UISettings(["s3://runs/ui"]).index_dir == tmp_path / "cache" / "ui" / "ui-indexes"
    for outside in ("s3://runs/other", "s3://runs/ui/../other", "s3://runs/uix"):
        with pytest.raises(MSMError, match="outside the configured data roots"):
            guard_path(outside, roots)
    with pytest.raises(MSMError, match="does not exist"):
        guard_path("s3://runs/ui/missing", roots)
    run.join("metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.5}) + "\n" +
                                         json.dumps({"step": 2, "loss": 2.0}) + "\n")  # the run went on
    assert '"step": 2' in (guard_path("s3://runs/ui/pretrain", roots) / "metrics.jsonl").read_text()  # refreshed
    assert Path(tmp_path / "cache" / "ui").is_dir()
