"""MSMModel.save / load / export_encoder: what each file holds, and the errors a bad checkpoint gets (found by
mutation testing: the round trip alone let a dropped pooling, a wrong state filter or an unchecked mismatch pass)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from msm.config import ConfigError
from msm.errors import MSMError
from msm.model.msm import MSMModel


@pytest.fixture()
def saved(tiny_cfg, batch, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, pooling="cls", temperature=0.07)
    model = MSMModel.from_config(cfg)
    model(batch)  # fills the memory bank
    return model, model.save(tmp_path / "ckpt")


def test_checkpoint_files_hold_the_config_and_only_the_msm_state(saved):
    model, ckpt = saved
    text = (ckpt / "msm_config.json").read_text()
    assert text.startswith('{\n  "')  # indented: a file people read and diff
    assert json.loads(text) == dataclasses.asdict(model.cfg)
    state = load_file(str(ckpt / "msm_state.safetensors"))
    full = model.state_dict()
    assert set(state) == {k for k in full if not k.startswith("sentence_encoder.")}
    assert any(k.startswith("document_encoder.") for k in state) and "memory_bank.keys" in state
    assert int((state["memory_bank.langs"] >= 0).sum()) > 0  # the filled bank is saved
    for k, v in state.items():
        assert torch.equal(v, full[k].cpu()), k
    loaded = MSMModel.load(ckpt)
    assert loaded.cfg == model.cfg and loaded.encoder_path == ckpt / "encoder"
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_exported_encoder_meta_keeps_the_source_prefixes_and_the_pooling(tiny_cfg, tiny_model_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(tiny_model_dir, src)
    (src / "msm_model.json").write_text(json.dumps({"pooling": "mean", "query_prefix": "query: ",
                                                    "passage_prefix": "passage: "}))
    model = MSMModel(dataclasses.replace(tiny_cfg, encoder=str(src), pooling="cls"), src)
    text = (model.export_encoder(tmp_path / "export") / "msm_model.json").read_text()
    assert json.loads(text) == {"pooling": "cls", "query_prefix": "query: ", "passage_prefix": "passage: "}
    assert text.startswith('{\n  "')
    model.encoder_path = tmp_path / "not-a-folder"  # a hub id: no meta file to carry over
    out = model.export_encoder(tmp_path / "export2")
    assert json.loads((out / "msm_model.json").read_text()) == {"pooling": "cls"}
    assert (out / "config.json").is_file()


def test_mismatched_state_names_the_keys_and_the_file(saved):
    _, ckpt = saved
    state_file = ckpt / "msm_state.safetensors"
    state = load_file(str(state_file))
    doc_keys = sorted(k for k in state if k.startswith("document_encoder."))
    assert len(doc_keys) > 3
    save_file({k: v for k, v in state.items() if k not in doc_keys}, str(state_file))
    with pytest.raises(MSMError) as err:
        MSMModel.load(ckpt)
    msg = str(err.value)
    assert str(state_file) in msg and "does not match the model" in msg and "another msm_config.json" in msg
    listed = [k for k in doc_keys if repr(k) in msg]
    assert len(listed) == 3, msg  # the first few missing keys, not all of them
    save_file({**state, "extra.weight": torch.zeros(2)}, str(state_file))
    with pytest.raises(MSMError, match=r"unexpected \['extra.weight'\]"):
        MSMModel.load(ckpt)
    extras = [f"extra.{c}" for c in "abcde"]
    save_file({**state, **{k: torch.zeros(1) for k in extras}}, str(state_file))
    with pytest.raises(MSMError) as err:
        MSMModel.load(ckpt)
    assert sum(repr(k) in str(err.value) for k in extras) == 3  # the first few unexpected keys too


def test_bad_checkpoint_config_names_its_file(saved):
    _, ckpt = saved
    cfg_file = ckpt / "msm_config.json"
    good = json.loads(cfg_file.read_text())
    cfg_file.write_text("{not json")
    with pytest.raises(MSMError, match=rf"{cfg_file}: corrupt JSON .*re-save the checkpoint"):
        MSMModel.load(ckpt)
    cfg_file.write_text(json.dumps({**good, "temperature": "warm"}))
    with pytest.raises(ConfigError, match=rf"{cfg_file}: temperature"):
        MSMModel.load(ckpt)


def test_saving_again_replaces_the_checkpoint_and_the_export(saved, tmp_path):
    """A second save / export into the same folder replaces it (a run rewrites its checkpoint folder)."""
    model, ckpt = saved
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    assert model.save(ckpt) == ckpt
    loaded = MSMModel.load(ckpt)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    out = model.export_encoder(tmp_path / "export")
    with torch.no_grad():
        for p in model.sentence_encoder.parameters():
            p.mul_(2.0)
    assert model.export_encoder(out) == out
    exported = load_file(str(out / "model.safetensors"))
    name, value = next((k, v) for k, v in model.sentence_encoder.state_dict().items() if v.dtype.is_floating_point
                       and v.abs().sum() > 0 and k.split(".", 1)[-1] in exported)
    assert torch.equal(exported[name.split(".", 1)[-1]], value)
