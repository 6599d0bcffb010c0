"""Mined document pairs (``msm mine`` output: ``documents/`` and ``pairs/`` Parquet shards, see
``msm.data.schema``) → aligned sentence rows and a similarity heatmap with the alignment path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msm.errors import MSMError


@dataclass
class MinedRun:
    folder: Path
    documents: dict[str, dict]
    pairs: list[dict]  # sorted by pair_score, best first
    manifest: dict


def _read_shards(folder: Path, name: str) -> list[dict]:
    import pyarrow.parquet as pq  # lazy: pyarrow

    files = sorted((folder / name).glob("*.parquet"))
    rows = []
    for f in files:
        try:
            rows += pq.read_table(f).to_pylist()
        except Exception as exc:  # ArrowInvalid / OSError for truncated or foreign files
            raise MSMError(f"{f}: unreadable Parquet shard ({exc}); re-run msm mine for {folder}") from exc
    return rows


def load_mined(folder: str | Path) -> MinedRun:
    folder = Path(folder)
    if not (folder / "pairs").is_dir() or not (folder / "documents").is_dir():
        raise MSMError(f"{folder}: not an msm mine output (needs documents/ and pairs/ Parquet shards); "
                       "run msm mine --config configs/mine/... or pick another folder")
    manifest = {}
    if (folder / "manifest.json").is_file():
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except json.JSONDecodeError as exc:
            raise MSMError(f"{folder / 'manifest.json'}: not valid JSON ({exc})") from exc
    documents = {d["doc_id"]: d for d in _read_shards(folder, "documents")}
    pairs = sorted(_read_shards(folder, "pairs"), key=lambda p: -(p.get("pair_score") or 0.0))
    return MinedRun(folder, documents, pairs, manifest)


def pair_sentences(run: MinedRun, pair: dict) -> tuple[list[str], list[str]]:
    try:
        return list(run.documents[pair["src_doc_id"]]["sentences"]), list(run.documents[pair["tgt_doc_id"]]["sentences"])
    except KeyError as exc:
        raise MSMError(f"pair {pair.get('pair_id')}: document {exc} is not in {run.folder}/documents; "
                       "the shards come from different runs") from exc


def aligned_rows(run: MinedRun, pair: dict) -> list[dict]:
    """One row per alignment link: joined source and target sentences (n:m links) and the link score."""
    src, tgt = pair_sentences(run, pair)
    rows = []
    for link in pair["links"]:
        s_idx, t_idx = list(link["src"]), list(link["tgt"])
        rows.append({"src": ",".join(map(str, s_idx)), "source sentence": " ".join(src[i] for i in s_idx),
                     "tgt": ",".join(map(str, t_idx)), "target sentence": " ".join(tgt[j] for j in t_idx),
                     "score": None if link["score"] is None else round(float(link["score"]), 4)})
    return rows


def path_cells(links: list[dict]) -> list[tuple[int, int]]:
    """(source, target) sentence index cells covered by the links (an n:m link covers n×m cells)."""
    return [(i, j) for link in links for i in link["src"] for j in link["tgt"]]


def similarity(encoder, src: list[str], tgt: list[str]) -> np.ndarray:
    """Cosine similarity [len(src), len(tgt)] of the sentence embeddings (passage side, as mining does)."""
    a = encoder.encode(src, kind="passage")
    b = encoder.encode(tgt, kind="passage")
    return a @ b.T


def alignment_figure(sim: np.ndarray, links: list[dict], src_label: str = "source", tgt_label: str = "target"):
    """Heatmap of ``sim`` with the alignment path drawn on it (matplotlib Figure)."""
    from matplotlib.figure import Figure  # lazy: matplotlib

    fig = Figure(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(sim, cmap="viridis", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    cells = path_cells(links)
    if cells:
        ii, jj = zip(*cells)
        ax.plot(jj, ii, color="red", linewidth=1.5, marker="o", markersize=3, label="alignment path")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel(f"{tgt_label} sentence")
    ax.set_ylabel(f"{src_label} sentence")
    fig.tight_layout()
    return fig
