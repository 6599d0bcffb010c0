"""SearchIndex: exact search equals brute force; IVF/HNSW recall; save/load and mismatch errors."""

from __future__ import annotations

import numpy as np
import pytest

from msm.errors import MSMError
from msm.retrieval.index import SearchIndex


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, [f"id{i}" for i in range(len(x))]


def test_flat_equals_brute_force(data):
    x, ids = data
    index = SearchIndex.build(x, ids, use_gpu=False)
    scores, hits = index.search(x[:10], 5)
    expected = np.argsort(-(x[:10] @ x.T), axis=1)[:, :5]
    assert hits == [[ids[j] for j in row] for row in expected]
    assert np.allclose(scores, np.take_along_axis(x[:10] @ x.T, expected, 1), atol=1e-5)


@pytest.mark.parametrize(("kind", "params"), [("ivf", {"nlist": 16, "nprobe": 8}), ("hnsw", {})])
def test_approximate_indexes_recall(data, kind, params):
    x, ids = data
    exact = SearchIndex.build(x, ids, use_gpu=False).search(x[:50], 10)[1]
    approx = SearchIndex.build(x, ids, kind=kind, use_gpu=False, **params).search(x[:50], 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert recall >= 0.9


def test_save_load_and_mismatches(data, tmp_path):
    x, ids = data
    SearchIndex.build(x, ids, model="m", use_gpu=False).save(tmp_path / "idx")
    loaded = SearchIndex.load(tmp_path / "idx", expected_dim=16, use_gpu=False)
    assert loaded.search(x[:1], 1)[1] == [["id0"]]
    with pytest.raises(MSMError, match="index dimension 16 != model dimension 384"):
        SearchIndex.load(tmp_path / "idx", expected_dim=384, use_gpu=False)
    with pytest.raises(MSMError, match="queries have dimension 8, the index 16"):
        loaded.search(np.zeros((1, 8), dtype=np.float32), 1)
    (tmp_path / "idx" / "ids.json").write_text('["only-one"]')
    with pytest.raises(MSMError, match="from different builds"):
        SearchIndex.load(tmp_path / "idx", use_gpu=False)
    with pytest.raises(MSMError, match="is not an index written by SearchIndex.save"):
        SearchIndex.load(tmp_path / "nowhere")
