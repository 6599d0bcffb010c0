"""SearchIndex: exact search equals brute force; IVF/HNSW recall; save/load and mismatch errors."""

from __future__ import annotations

import json
import math

import faiss
import numpy as np
import pytest

import msm.retrieval.index as index_module
from msm.errors import MSMError
from msm.retrieval.index import gpu_count, SearchIndex


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


def rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)  # not unit: L2 ranks differently


def unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_scores_are_inner_products(kind):
    """Every kind scores by inner product (not L2 distance): the returned scores are q . x of the returned ids,
    in decreasing order, and the top hit is the brute-force argmax."""
    x, q = rows(300), rows(5, seed=1)
    ids = [f"d{i}" for i in range(300)]
    built = SearchIndex.build(x, ids, kind=kind, nlist=4, nprobe=4)
    scores, hits = built.search(q, 5)
    dots = q @ x.T
    for r in range(5):
        expected = [dots[r, int(h[1:])] for h in hits[r]]
        np.testing.assert_allclose(scores[r], expected, rtol=1e-4, atol=1e-4)
        assert list(scores[r]) == sorted(scores[r], reverse=True)
        assert hits[r][0] == f"d{int(np.argmax(dots[r]))}"


@pytest.fixture()
def one_gpu(monkeypatch):
    """faiss reporting one GPU, its CPU->GPU converter recorded (CPU faiss has none)."""
    calls = []
    monkeypatch.setattr(index_module, "gpu_count", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", lambda index: calls.append(index) or index, raising=False)
    return calls


def test_one_visible_gpu_is_used_by_default(one_gpu, tmp_path):
    """use_gpu=None means "when faiss sees a GPU": one is enough, for build and load alike; False keeps the CPU."""
    x = rows(20)
    ids = [str(i) for i in range(20)]
    built = SearchIndex.build(x, ids)
    assert built.meta.get("gpu") is True and one_gpu == [built.index]
    assert "gpu" not in SearchIndex.build(x, ids, use_gpu=False).meta and len(one_gpu) == 1
    SearchIndex.build(x, ids, use_gpu=False).save(tmp_path / "idx")
    loaded = SearchIndex.load(tmp_path / "idx")
    assert loaded.meta.get("gpu") is True and len(one_gpu) == 2
    assert isinstance(one_gpu[-1], faiss.Index) and one_gpu[-1].ntotal == 20  # the index read from disk
    assert "gpu" not in SearchIndex.load(tmp_path / "idx", use_gpu=False).meta


def test_query_dimension_error_names_the_model():
    built = SearchIndex.build(rows(10), [str(i) for i in range(10)], model="e5-small")
    with pytest.raises(MSMError, match=r"queries have dimension 4, the index 8 \(built with model e5-small\); "
                                       r"encode with the same model"):
        built.search(rows(2, d=4), 3)
    anonymous = SearchIndex.build(rows(10), [str(i) for i in range(10)])
    with pytest.raises(MSMError, match=r"\(built with model \?\)"):
        anonymous.search(rows(2, d=4), 3)


@pytest.mark.parametrize("n", [400, 2500])
def test_ivf_default_lists_and_probes(n):
    """nlist = 4 sqrt(n), nprobe = an eighth of the lists but at least 16 (and at most nlist)."""
    x = unit_rows(n)
    index = SearchIndex.build(x, [str(i) for i in range(n)], kind="ivf", use_gpu=False)
    nlist = int(4 * math.sqrt(n))
    assert index.meta["nlist"] == nlist == index.index.nlist
    assert index.meta["nprobe"] == max(16, nlist // 8) == index.index.nprobe
    few = SearchIndex.build(x[:40], [str(i) for i in range(40)], kind="ivf", nlist=10, use_gpu=False)
    assert few.index.nprobe == 10 and few.meta == {"dim": 8, "kind": "ivf", "model": "", "count": 40,
                                                  "nlist": 10, "nprobe": 10}
    given = SearchIndex.build(x, [str(i) for i in range(n)], kind="ivf", nlist=20, nprobe=3, use_gpu=False)
    assert (given.index.nlist, given.index.nprobe) == (20, 3)


def test_hnsw_parameters_reach_faiss():
    x = unit_rows(200)
    index = SearchIndex.build(x, [str(i) for i in range(200)], kind="hnsw", hnsw_m=8, ef_search=40,
                              ef_construction=60, use_gpu=False)
    assert index.index.hnsw.efSearch == 40 and index.index.hnsw.efConstruction == 60
    assert index.index.hnsw.nb_neighbors(1) == 8  # M links per node above layer 0
    assert index.meta == {"dim": 8, "kind": "hnsw", "model": "", "count": 200, "hnsw_m": 8, "ef_search": 40,
                          "ef_construction": 60}
    default = SearchIndex.build(x, [str(i) for i in range(200)], kind="hnsw", use_gpu=False)
    assert (default.index.hnsw.efSearch, default.index.hnsw.efConstruction) == (128, 200)
    assert default.index.hnsw.nb_neighbors(1) == 32


def test_k_beyond_the_corpus_and_unfilled_slots():
    x = unit_rows(30)
    ids = [f"d{i}" for i in range(30)]
    flat = SearchIndex.build(x, ids, model="m", use_gpu=False)
    scores, hits = flat.search(x[:2], 50)
    assert scores.shape == (2, 30) and sorted(hits[0]) == sorted(ids)  # every id once, "d0" included
    assert hits[0][0] == "d0" and hits[1][0] == "d1"
    # one probed list of eight cannot fill k=30: faiss pads with -1, which must not map to ids[-1]
    ivf = SearchIndex.build(x, ids, kind="ivf", nlist=8, nprobe=1, use_gpu=False)
    _, hits = ivf.search(x[:5], 30)
    assert all(0 < len(row) < 30 and len(set(row)) == len(row) for row in hits)
    assert all(row[0] == f"d{i}" for i, row in enumerate(hits))


def test_build_rejects_bad_input():
    x = unit_rows(5)
    with pytest.raises(MSMError, match=r"embeddings \(5, 8\) and 4 ids do not match"):
        SearchIndex.build(x, list("abcd"), use_gpu=False)
    with pytest.raises(MSMError, match=r"embeddings \(8,\) and 8 ids"):
        SearchIndex.build(x[0], list("abcdefgh"), use_gpu=False)
    with pytest.raises(MSMError, match="index kind 'lsh' unknown"):
        SearchIndex.build(x, list("abcde"), kind="lsh", use_gpu=False)
    with pytest.raises(MSMError, match=r"queries have dimension 8, the index 8 \(built with model \?\)"):
        SearchIndex.build(x, list("abcde"), use_gpu=False).search(x[0], 1)


def test_saved_files_and_cpu_default(tmp_path):
    assert gpu_count() == 0  # this suite runs on CPU faiss: the default (use_gpu=None) must stay on the CPU
    x = unit_rows(20)
    ids = [f"é{i}" for i in range(20)]
    built = SearchIndex.build(x, ids, model="e5", kind="flat")
    assert "gpu" not in built.meta
    built.save(tmp_path / "idx")
    assert json.loads((tmp_path / "idx" / "meta.json").read_text()) == {"dim": 8, "kind": "flat", "model": "e5",
                                                                        "count": 20}
    assert "é0" in (tmp_path / "idx" / "ids.json").read_text(encoding="utf-8")  # readable, not \u escapes
    loaded = SearchIndex.load(tmp_path / "idx")
    assert loaded.ids == ids and loaded.dim == 8 and "gpu" not in loaded.meta
    assert loaded.search(x[3:4], 1)[1] == [["é3"]]
    with pytest.raises(MSMError, match=r"another model \(e5\): rebuild it"):
        SearchIndex.load(tmp_path / "idx", expected_dim=4)
    SearchIndex.build(x, ids).save(tmp_path / "anonymous")
    with pytest.raises(MSMError, match=r"another model \(\?\): rebuild it"):
        SearchIndex.load(tmp_path / "anonymous", expected_dim=4)
    (tmp_path / "idx" / "meta.json").write_text("{not json")
    with pytest.raises(MSMError, match="corrupt index files"):
        SearchIndex.load(tmp_path / "idx")
    (tmp_path / "idx" / "meta.json").write_text(json.dumps({"dim": 4}))
    with pytest.raises(MSMError, match="holds 20 vectors of dim 8 but the id map has 20 ids / meta dim 4"):
        SearchIndex.load(tmp_path / "idx")
    (tmp_path / "idx" / "ids.json").unlink()
    with pytest.raises(MSMError, match="ids.json: missing"):
        SearchIndex.load(tmp_path / "idx")


def test_gpu_count_asks_faiss_when_it_can(monkeypatch):
    import faiss

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 3, raising=False)
    assert gpu_count() == 3
    monkeypatch.delattr(faiss, "get_num_gpus")  # a faiss build without GPU support
    assert gpu_count() == 0


def test_gpu_paths_convert_through_faiss(monkeypatch, tmp_path):
    """The GPU branches with faiss's CPU<->GPU converters replaced by recorders (CPU faiss has no GPU)."""
    import faiss

    calls = []
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", lambda index: calls.append(("to_gpu", index)) or index,
                        raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda index: calls.append(("to_cpu", index)) or index,
                        raising=False)
    x = unit_rows(20)
    ids = [str(i) for i in range(20)]
    built = SearchIndex.build(x, ids, use_gpu=True)
    assert built.meta["gpu"] is True and calls == [("to_gpu", built.index)]
    hnsw = SearchIndex.build(x, ids, kind="hnsw", use_gpu=True)  # faiss has no GPU HNSW: stays on the CPU
    assert "gpu" not in hnsw.meta and len(calls) == 1
    built.save(tmp_path / "idx")
    assert calls[-1] == ("to_cpu", built.index)
    assert "gpu" not in json.loads((tmp_path / "idx" / "meta.json").read_text())
    loaded = SearchIndex.load(tmp_path / "idx", use_gpu=True)
    assert loaded.meta["gpu"] is True and calls[-1][0] == "to_gpu"
    hnsw.save(tmp_path / "hnsw")
    assert "gpu" not in SearchIndex.load(tmp_path / "hnsw", use_gpu=True).meta


def test_save_overwrites_and_writes_readable_meta(tmp_path):
    x = unit_rows(12)
    SearchIndex.build(x, [f"a{i}" for i in range(12)], use_gpu=False).save(tmp_path / "idx")
    SearchIndex.build(x[:5], [f"b{i}" for i in range(5)], use_gpu=False).save(tmp_path / "idx")  # rebuild in place
    loaded = SearchIndex.load(tmp_path / "idx", use_gpu=False)
    assert loaded.ids == [f"b{i}" for i in range(5)] and loaded.index.ntotal == 5
    assert (tmp_path / "idx" / "meta.json").read_text().startswith('{\n  "dim": 8')  # indented for people
