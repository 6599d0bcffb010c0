"""Pretraining: schedule, configs, exact resume (in-process), and Ray Train runs with a crash and a fault drill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msm.config import load_config
from msm.errors import MSMError
from msm.train.config import PretrainConfig
from msm.train.schedule import lr_factor

from factories import tiny_pretrain

REPO = Path(__file__).resolve().parents[2]


def tiny(tmp_path: Path, shared_data: Path, *overrides: str) -> PretrainConfig:
    return tiny_pretrain(tmp_path, shared_data, *overrides)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_schedule_warmup_then_polynomial_decay():
    assert [lr_factor(s, 4, 12) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(8, 4, 12) == pytest.approx(0.5) and lr_factor(12, 4, 12) == 0.0
    assert lr_factor(8, 4, 12, power=2.0) == pytest.approx(0.25)


def test_configs_load():
    for name in ("tiny-cpu", "e5-small-cpu", "e5-small-mined", "e5-small-gpu", "xlmr-base-8gpu"):
        cfg = load_config(REPO / "configs" / "pretrain" / f"{name}.yaml", PretrainConfig)
        assert cfg.optim.max_steps >= 1
    paper = load_config(REPO / "configs" / "pretrain" / "xlmr-base-8gpu.yaml", PretrainConfig)
    assert (paper.model.max_sentences, paper.model.max_tokens, paper.model.memory_bank_size) == (32, 64, 4096)


@pytest.mark.timeout(300)
def test_resume_reproduces_the_uninterrupted_loss_trajectory(tmp_path, shared_data):
    from msm.train.loop import FaultDrill
    from msm.train.trainer import run_local

    common = ("optim.max_steps=6", "run.checkpoint_every=3", "validation.every_steps=3", "model.mlm_weight=0.5")
    straight = rows(run_local(tiny(tmp_path / "a", shared_data, *common)))
    with pytest.raises(FaultDrill):
        run_local(tiny(tmp_path / "b", shared_data, *common, "run.fail_at_step=5"))
    assert [r["step"] for r in rows(tmp_path / "b")] == [1, 2, 3, 4]
    resumed = rows(run_local(tiny(tmp_path / "b", shared_data, *common, "run.fail_at_step=5"), resume=True))
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]  # step 4 was redone from the step-3 checkpoint
    for a, b in zip(straight, resumed):
        for key in ("loss", "doc_loss", "mlm_loss", "acc_same_doc", "lr"):
            assert b[key] == pytest.approx(a[key], abs=1e-4), (a["step"], key)
    assert resumed[-1]["val_score"] == pytest.approx(straight[-1]["val_score"], abs=1e-6)
    assert 0.0 <= straight[2]["val_score"] <= 1.0 and "val_deu" in straight[2]
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]


def test_checkpoint_and_data_errors(tmp_path, shared_data):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from msm.train.corpus import build_local
    from msm.train.loop import FaultDrill
    from msm.train.trainer import resume_config, run_local

    cfg = tiny(tmp_path / "run", shared_data, "optim.max_steps=2", "run.checkpoint_every=1", "run.fail_at_step=2",
               "validation.every_steps=-1")
    with pytest.raises(FaultDrill):
        run_local(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-1"
    (ckpt / "optimizer.pt").write_bytes(b"not a torch file")
    with pytest.raises(MSMError, match="optimizer.pt: unreadable optimiser state"):
        run_local(cfg, resume=True)
    (ckpt / "trainer_state.json").write_text("{")
    with pytest.raises(MSMError, match="trainer_state.json: corrupt trainer state"):
        run_local(cfg, resume=True)
    with pytest.raises(MSMError, match="no checkpoint to resume from"):
        run_local(tiny(tmp_path / "fresh", shared_data), resume=True)
    with pytest.raises(MSMError, match="no pretrain_config.yaml there"):
        resume_config(tmp_path / "fresh")
    with pytest.raises(MSMError, match="corpus was built with other data settings"):  # refused before a rebuild
        run_local(tiny(tmp_path / "run", shared_data, "data.max_docs_per_lang=3", "optim.max_steps=2"), resume=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": 1, "fingerprint": "0123"}))
    with pytest.raises(MSMError, match="written for other training data"):  # e.g. other batching settings
        run_local(cfg, resume=True)

    mined = tmp_path / "mined"
    (mined / "documents").mkdir(parents=True)
    (mined / "manifest.json").write_text("{}")
    pq.write_table(pa.table({"doc_id": ["a", "b"], "lang": ["de", "de"], "sentences": [["Nur ein Satz."], []]}),
                   mined / "documents" / "part-00000.parquet")
    with pytest.raises(MSMError, match="empty dataset: no document"):
        build_local(tiny(tmp_path, shared_data, "data.source=mined", f"data.path={mined}"))
    pq.write_table(pa.table({"doc": ["x"]}), mined / "documents" / "part-00000.parquet")
    with pytest.raises(MSMError, match="part-00000.parquet: unreadable or wrong schema"):
        build_local(tiny(tmp_path, shared_data, "data.source=mined", f"data.path={mined}"))
    with pytest.raises(MSMError, match="not an `msm mine` output"):
        build_local(tiny(tmp_path, shared_data, "data.source=mined", f"data.path={tmp_path / 'nowhere'}"))
    with pytest.raises(MSMError, match="would overlap training"):
        from msm.train.validate import validation_pairs

        validation_pairs(tiny(tmp_path, shared_data, "data.max_docs_per_lang=120"))


@pytest.mark.timeout(120)
def test_trainer_takes_workers_retries_and_checkpoints_from_the_config(ray_local, tmp_path, shared_data):
    """FailureConfig / ScalingConfig / CheckpointConfig come from ``run.*`` (a 2-worker crash and restart runs in
    tests/cluster/test_submit.py; the restore it triggers is the loop's resume path, tested above). The corpus is
    built in process first and reused (its Ray Data build: tests/train/test_corpus.py)."""
    from msm.train.corpus import build_local
    from msm.train.trainer import absolute, build_trainer

    cfg = absolute(tiny(tmp_path, shared_data, "run.num_workers=2", "run.cpus_per_worker=0.5", "run.max_failures=3",
                        "run.keep_checkpoints=1"))
    build_local(cfg, log=lambda *_: None)
    logged = []
    trainer = build_trainer(cfg, log=logged.append)
    assert logged and logged[0].startswith("corpus: reusing")
    assert trainer.run_config.failure_config.max_failures == 3
    assert trainer.run_config.checkpoint_config.num_to_keep == 1
    assert trainer.run_config.name == "tiny" and trainer.run_config.storage_path == str(tmp_path)
    assert trainer.scaling_config.num_workers == 2
    assert trainer.scaling_config.resources_per_worker == {"CPU": 0.5}


def test_mined_source_and_code_switched_copies(tmp_path, shared_data):
    """Documents come from the mine shards; with cross_lingual=1 every 1-1 linked sentence is switched."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from msm.data.schema import DOCUMENTS, PAIRS
    from msm.train.corpus import load_documents

    mined = tmp_path / "mined"
    (mined / "documents").mkdir(parents=True)
    (mined / "pairs").mkdir()
    (mined / "manifest.json").write_text("{}")
    de = ["Eins.", "Zwei.", "Drei.", "Vier."]
    en = ["One.", "Two and three.", "Four."]
    base = {"declared_lang": None, "detected_lang": None, "lang_confidence": None, "flags": [], "source": "t",
            "url": None, "pair_ids": ["p"]}
    pq.write_table(pa.Table.from_pylist([dict(base, doc_id="de1", lang="de", sentences=de, aligned_doc_ids=["en1"]),
                                         dict(base, doc_id="en1", lang="en", sentences=en, aligned_doc_ids=["de1"])],
                                        schema=DOCUMENTS), mined / "documents" / "part-00000.parquet")
    links = [{"src": [0], "tgt": [0], "score": 0.9}, {"src": [1, 2], "tgt": [1], "score": 0.8},
             {"src": [3], "tgt": [2], "score": 0.9}]
    pq.write_table(pa.Table.from_pylist([{"pair_id": "p", "src_doc_id": "de1", "src_lang": "de", "tgt_doc_id": "en1",
                                          "tgt_lang": "en", "pair_score": 1.2, "links": links, "align_score": 0.9}],
                                        schema=PAIRS), mined / "pairs" / "part-00000.parquet")
    plain = load_documents(tiny(tmp_path, shared_data, "data.source=mined", f"data.path={mined}"))
    assert plain == [(de, "de"), (en, "en")]
    switched = load_documents(tiny(tmp_path, shared_data, "data.source=mined", f"data.path={mined}",
                                   "data.cross_lingual=1.0"))
    assert switched[:2] == plain
    assert switched[2:] == [(["One.", "Zwei.", "Drei.", "Four."], "de"), (["Eins.", "Two and three.", "Vier."], "en")]
    assert load_documents(tiny(tmp_path, shared_data, "data.source=mined", f"data.path={mined}",
                               "data.languages=[en]")) == [(en, "en")]
