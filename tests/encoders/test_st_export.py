"""sentence-transformers export: the folder loads offline and reproduces pooled AutoModel outputs."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from msm.errors import MSMError
from msm.encoders.st_export import write_sentence_transformers_folder

TEXTS = ["The weather is lovely today, isn't it?", "Wo ist der Bahnhof?", "今天天气很好。", "Где вокзал?"]


def reference(model_dir, texts: list[str], pooling: str, normalize: bool) -> np.ndarray:
    """Independent reference: AutoModel hidden states pooled by hand."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir).eval()
    enc = AutoTokenizer.from_pretrained(model_dir)(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    if pooling == "cls":
        vec = hidden[:, 0]
    else:
        mask = enc["attention_mask"].unsqueeze(-1).float()
        vec = (hidden * mask).sum(1) / mask.sum(1)
    return (torch.nn.functional.normalize(vec, dim=-1) if normalize else vec).numpy()


@pytest.fixture(scope="module")
def model_with_prefixes(tiny_model_dir, tmp_path_factory):
    """The tiny model with e5-style prefixes in its msm_model.json."""
    path = tmp_path_factory.mktemp("prefixed") / "tiny"
    shutil.copytree(tiny_model_dir, path)
    (path / "msm_model.json").write_text(json.dumps(
        {"pooling": "mean", "query_prefix": "query: ", "passage_prefix": "passage: "}))
    return path


def test_export_loads_and_matches_mean_pooled_automodel(model_with_prefixes, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = write_sentence_transformers_folder(model_with_prefixes, tmp_path / "st")
    modules = json.loads((out / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    assert not (out / "msm_model.json").exists()
    st = SentenceTransformer(str(out), device="cpu")
    assert st.max_seq_length == 128  # the tiny model's 130 positions minus RoBERTa's padding offset
    np.testing.assert_allclose(st.encode(TEXTS, prompt_name="query"),
                               reference(model_with_prefixes, ["query: " + t for t in TEXTS], "mean", True),
                               atol=1e-5)
    np.testing.assert_allclose(st.encode(TEXTS, prompt_name="passage"),
                               reference(model_with_prefixes, ["passage: " + t for t in TEXTS], "mean", True),
                               atol=1e-5)


def _json(path):
    return json.loads(path.read_text())


def test_export_is_what_sentence_transformers_saves_and_loads_without_deprecation(model_with_prefixes, tmp_path):
    """modules.json names each module by its current class path (not a deprecated ``sentence_transformers.models.*``
    alias), every module's config file is what ``SentenceTransformer.save()`` of the pinned release writes for the
    same model, and loading warns about nothing deprecated."""
    import sentence_transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import deprecated_import

    out = write_sentence_transformers_folder(model_with_prefixes, tmp_path / "st")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = SentenceTransformer(str(out), device="cpu")
        st.encode(TEXTS, prompt_name="passage")
    deprecated = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    deprecations = [w for w in caught if issubclass(w.category, deprecated)]
    assert deprecations == [], [str(w.message) for w in deprecations]

    modules = _json(out / "modules.json")
    loaded = [f"{type(m).__module__}.{type(m).__qualname__}" for m in st]
    assert [m["type"] for m in modules] == loaded  # the class itself, not an alias that resolves to it
    assert not {m["type"].rpartition(".")[0] for m in modules} & set(deprecated_import.DEPRECATED_MODULE_PATHS)

    st.save(str(tmp_path / "saved"))
    saved = tmp_path / "saved"
    assert modules == _json(saved / "modules.json"), sentence_transformers.__version__
    for name in ["sentence_bert_config.json", "1_Pooling/config.json", "2_Normalize/config.json"]:
        assert _json(out / name) == _json(saved / name), name
    ours, theirs = _json(out / "config_sentence_transformers.json"), _json(saved / "config_sentence_transformers.json")
    assert ours.pop("prompts") == {"query": "query: ", "passage": "passage: "}
    assert theirs.pop("prompts").items() >= {"query": "query: ", "passage": "passage: "}.items()  # + its defaults
    theirs.pop("__version__")  # the versions of the saving process: not written by the export
    assert ours == theirs
    max_len = [_json(folder / "tokenizer_config.json")["model_max_length"] for folder in (out, saved)]
    assert max_len == [128, 128]


def test_export_cls_pooling_without_normalize(tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = write_sentence_transformers_folder(tiny_model_dir, tmp_path / "st", pooling="cls", normalize=False)
    assert not (out / "2_Normalize").exists()
    emb = SentenceTransformer(str(out), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(emb, reference(tiny_model_dir, TEXTS, "cls", False), atol=1e-5)
    assert not np.allclose(np.linalg.norm(emb, axis=1), 1.0)  # really unnormalised


def test_export_errors(tiny_model_dir, tmp_path):
    out = write_sentence_transformers_folder(tiny_model_dir, tmp_path / "st")
    with pytest.raises(MSMError, match="a sentence-transformers folder; nothing was changed: pass --overwrite"):
        write_sentence_transformers_folder(tiny_model_dir, out)
    assert write_sentence_transformers_folder(tiny_model_dir, out, overwrite=True) == out
    with pytest.raises(MSMError, match="pooling 'max' is not supported; use one of mean, cls"):
        write_sentence_transformers_folder(tiny_model_dir, tmp_path / "st2", pooling="max")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MSMError, match="is not a model folder .*expected config.json"):
        write_sentence_transformers_folder(tmp_path / "empty", tmp_path / "st3")
    assert not (tmp_path / "st2").exists() and not (tmp_path / "st3").exists()
