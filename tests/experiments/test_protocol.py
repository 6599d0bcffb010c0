"""The protocol runner (``msm experiment protocol``): the article split never leaks, and a
tiny smoke run writes the cached rows and the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msm.experiments.protocol import LANGS, prepare_data, split_articles


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_article_split_never_leaks_a_paragraph_or_question(shared_data, tmp_path, seed):
    train, held = split_articles(shared_data / "xquad-r", seed)
    assert len(train) == len(held) == 24 and sorted(train + held) == list(range(48))
    assert split_articles(shared_data / "xquad-r", seed) == (train, held)  # fixed by the seed
    train_file, heldout = prepare_data(shared_data, tmp_path, seed, ["en", "de"])

    def contents(path):
        data = json.loads(path.read_text())["data"]
        paras = [p for a in data for p in a["paragraphs"]]
        return {a["title"] for a in data}, {p["context"] for p in paras}, {q["id"] for p in paras for q in p["qas"]}

    t_titles, t_paras, t_ids = contents(train_file)
    for lang in ("en", "de"):
        h_titles, h_paras, h_ids = contents(heldout / "xquad-r" / f"{lang}.json")
        assert not t_titles & h_titles and not t_ids & h_ids and not t_paras & h_paras
        assert len(t_ids | h_ids) == 1190
    assert len(LANGS) == 11


def test_protocol_smoke_rows_cache_and_table(shared_data, tiny_model_dir, tmp_path, capsys):
    from msm.experiments.protocol import main

    md = tmp_path / "RESULTS.md"
    md.write_text("# R\n<!-- protocol:start -->\nold\n<!-- protocol:end -->\ntail\n")
    argv = ["--rows", "start,finetune", "--seeds", "0", "--steps", "1", "--encoder",
            str(tiny_model_dir), "--langs", "en", "--pairs", "3", "--data-dir", str(shared_data), "--out",
            str(tmp_path / "out"), "--results-md", str(md), "--set", "train.batch_size=4", "model.query_max_length=16",
            "model.passage_max_length=32", "run.tensorboard=false"]
    assert main(argv) == 0
    done = json.loads((tmp_path / "out" / "results.json").read_text())
    assert sorted(r["row"] for r in done.values()) == ["finetune", "start"]
    for r in done.values():
        s = r["scores"]
        assert {"mean mAP@20", "en mAP@20", "own-language share of top-1 hits", "mean acc@1 xxx->eng"} <= set(s)
        assert 0 < s["mean mAP@20"] == s["en mAP@20"] <= 1 and s["own-language share of top-1 hits"] in (0.0, 1.0)
    text = md.read_text()
    assert "old" not in text and text.endswith("<!-- protocol:end -->\ntail\n") and "| finetune | 1 |" in text
    capsys.readouterr()
    assert main(argv) == 0  # every row cached: nothing is trained or evaluated again
    assert "seed 0: mAP@20" not in capsys.readouterr().out


def test_msm_row_fine_tunes_the_pretrained_encoder(shared_data, tiny_model_dir, tmp_path, monkeypatch):
    """start → MSM → fine-tune: the row's model is a fine-tuning run started from the MSM export, not the MSM
    export itself (the two once shared a folder, so the finished pretraining export passed for the fine-tuned
    model). MSM pretraining is stood in for by a copy of the tiny model."""
    import shutil

    import yaml

    from msm.experiments.protocol import main

    pretrained = []

    def fake_msm_train(variant, seed, steps, target, *args, **kwargs):
        shutil.copytree(tiny_model_dir, target / "export", dirs_exist_ok=True)
        pretrained.append(target / "export")
        return target / "export"

    monkeypatch.setattr("msm.experiments.protocol.train_variant", fake_msm_train)
    mined = tmp_path / "mined"
    mined.mkdir()
    (mined / "manifest.json").write_text("{}")
    (tmp_path / "R.md").write_text("<!-- protocol:start -->\n<!-- protocol:end -->\n")
    argv = ["--rows", "msm-reference", "--seeds", "0", "--steps", "1", "--encoder",
            str(tiny_model_dir), "--langs", "en", "--pairs", "0", "--data-dir", str(shared_data), "--out",
            str(tmp_path / "out"), "--mined", str(mined), "--results-md", str(tmp_path / "R.md"), "--set",
            "train.batch_size=4", "model.query_max_length=16", "model.passage_max_length=32", "run.tensorboard=false"]
    assert main(argv) == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text()).values()
    model = tmp_path / "out" / row["model"]  # recorded relative to --out
    assert len(pretrained) == 1 and model != pretrained[0] and model.parent != pretrained[0].parent
    cfg = yaml.safe_load((model.parent / "finetune_config.yaml").read_text())
    assert cfg["model"]["encoder"] == str(pretrained[0]) and (model / "config.json").is_file()
