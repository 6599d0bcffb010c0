"""SearchIndex details the recall tests do not pin: the IVF/HNSW parameters it documents, k beyond the corpus,
unfilled (-1) results, the saved files and the CPU default when faiss sees no GPU."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from msm.errors import MSMError
from msm.retrieval.index import SearchIndex, gpu_count


def unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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
