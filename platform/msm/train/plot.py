"""Training curves of a pretraining run as one PNG: loss, masked-sentence accuracy and ``val_score`` per step.

    python -m msm.train.plot RUN_DIR [OUT.png] [--window 20]     # reads RUN_DIR/metrics.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from msm.errors import MSMError
from msm.io import atomic_write_png


def running_mean(values: list[float], window: int) -> np.ndarray:
    """Mean of each value and the ``window - 1`` before it (fewer at the start)."""
    x = np.asarray(values, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(1, len(x) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise MSMError(f"{path} not found; pass a pretraining run folder (its run.output_dir)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise MSMError(f"{path} is empty; the run has not finished a step yet")
    return rows


def plot_run(run_dir: str | Path, out: str | Path, window: int = 20) -> Path:
    """Write the curves of ``run_dir`` to ``out`` (PNG, written atomically)."""
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    rows = read_metrics(Path(run_dir))
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, [r["loss"] for r in rows], color="0.8", lw=0.8, label="per step")
    axes[0].plot(steps, running_mean([r["loss"] for r in rows], window), label=f"mean of {window}")
    axes[0].set_title("loss")
    for key, label in (("acc_same_doc", "same document"), ("acc_other_doc", "other documents")):
        axes[1].plot(steps, running_mean([r[key] for r in rows], window), label=label)
    axes[1].set_title(f"masked-sentence top-1 accuracy (mean of {window})")
    val = [(r["step"], r["val_score"]) for r in rows if r.get("val_score") is not None]
    if val:
        axes[2].plot(*zip(*val), marker="o")
    else:
        axes[2].text(0.5, 0.5, "no validation in this run", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_title("val_score (held-out retrieval acc@1)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    return atomic_write_png(out, fig, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msm.train.plot", description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("out", nargs="?", help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--window", type=int, default=20)
    args = p.parse_args(argv)
    try:
        out = plot_run(args.run_dir, args.out or Path(args.run_dir) / "curves.png", args.window)
    except MSMError as exc:
        print(f"msm.train.plot: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
