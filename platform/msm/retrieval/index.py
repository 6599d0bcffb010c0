"""``SearchIndex``: faiss inner-product search (Flat, IVF-Flat, HNSW) with an id map; GPU when faiss has one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from msm.errors import MSMError
from msm.io import atomic_dir

KINDS = ("flat", "ivf", "hnsw")


def gpu_count() -> int:
    import faiss  # lazy: faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


class SearchIndex:
    def __init__(self, index, ids: list[str], meta: dict) -> None:
        self.index, self.ids, self.meta = index, ids, meta
        self.dim = int(meta["dim"])

    @classmethod
    def build(cls, embeddings: np.ndarray, ids: Sequence[str], kind: str = "flat", model: str = "",
              nlist: int | None = None, nprobe: int | None = None, hnsw_m: int = 32, ef_search: int = 128,
              ef_construction: int = 200, use_gpu: bool | None = None) -> SearchIndex:
        import faiss  # lazy: faiss

        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(ids):
            raise MSMError(f"embeddings {x.shape} and {len(ids)} ids do not match; pass one id per row")
        if kind not in KINDS:
            raise MSMError(f"index kind {kind!r} unknown; use one of {KINDS}")
        dim = x.shape[1]
        meta = {"dim": dim, "kind": kind, "model": model, "count": len(ids)}
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = nlist or max(1, int(4 * np.sqrt(len(x))))
            # an eighth of the lists (at least 16): recall@10 0.985 on 72k e5-small sentence vectors, where 16 of
            # 1,072 lists gave 0.785 (benchmarks/results/search_speed_e5.json)
            nprobe = min(nlist, nprobe or max(16, nlist // 8))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            index.nprobe = nprobe
            meta.update(nlist=nlist, nprobe=nprobe)
        else:
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
            meta.update(hnsw_m=hnsw_m, ef_search=ef_search, ef_construction=ef_construction)
        index.add(x)
        if (use_gpu if use_gpu is not None else gpu_count() > 0) and kind != "hnsw":
            index = faiss.index_cpu_to_all_gpus(index)
            meta["gpu"] = True
        return cls(index, list(ids), meta)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise MSMError(f"queries have dimension {q.shape[-1]}, the index {self.dim} "
                           f"(built with model {self.meta.get('model') or '?'}); encode with the same model")
        scores, idx = self.index.search(q, min(k, len(self.ids)))
        return scores, [[self.ids[j] for j in row if j >= 0] for row in idx.tolist()]  # Python ints: fewer numpy scalars

    def save(self, out_dir: str | Path) -> Path:
        import faiss  # lazy: faiss

        index = faiss.index_gpu_to_cpu(self.index) if self.meta.get("gpu") else self.index
        with atomic_dir(Path(out_dir), overwrite=True) as tmp:
            faiss.write_index(index, str(tmp / "index.faiss"))
            (tmp / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False))
            (tmp / "meta.json").write_text(json.dumps({k: v for k, v in self.meta.items() if k != "gpu"}, indent=2))
        return Path(out_dir)

    @classmethod
    def load(cls, path: str | Path, expected_dim: int | None = None, use_gpu: bool | None = None) -> SearchIndex:
        import faiss  # lazy: faiss

        path = Path(path)
        files = [path / "index.faiss", path / "ids.json", path / "meta.json"]
        for f in files:
            if not f.is_file():
                raise MSMError(f"{f}: missing; {path} is not an index written by SearchIndex.save (rebuild it)")
        try:
            index = faiss.read_index(str(files[0]))
            ids = json.loads(files[1].read_text())
            meta = json.loads(files[2].read_text())
        except (RuntimeError, json.JSONDecodeError) as exc:
            raise MSMError(f"{path}: corrupt index files ({exc}); rebuild the index") from exc
        if index.ntotal != len(ids) or index.d != meta.get("dim"):
            raise MSMError(f"{path}: index holds {index.ntotal} vectors of dim {index.d} but the id map has "
                           f"{len(ids)} ids / meta dim {meta.get('dim')}; the files come from different builds")
        if expected_dim is not None and index.d != expected_dim:
            raise MSMError(f"{path}: index dimension {index.d} != model dimension {expected_dim}; it was built "
                           f"with another model ({meta.get('model') or '?'}): rebuild it with this model")
        if (use_gpu if use_gpu is not None else gpu_count() > 0) and meta.get("kind") != "hnsw":
            index = faiss.index_cpu_to_all_gpus(index)
            meta["gpu"] = True
        return cls(index, ids, meta)
