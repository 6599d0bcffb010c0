"""Training-curve plot: the running mean against a plain loop, the PNG, and a clear error without metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msm.errors import MSMError
from msm.train.plot import main, plot_run, running_mean


def test_running_mean_matches_a_loop():
    x = np.random.default_rng(0).normal(size=37).tolist()
    for w in (1, 5, 40):
        ref = [sum(x[max(0, i - w + 1): i + 1]) / len(x[max(0, i - w + 1): i + 1]) for i in range(len(x))]
        np.testing.assert_allclose(running_mean(x, w), ref, rtol=1e-12)


def test_plot_writes_a_png_and_names_a_missing_run(tmp_path):
    rows = [{"step": s, "loss": 5 - s / 30, "acc_same_doc": s / 60, "acc_other_doc": s / 90,
             **({"val_score": 0.5 + s / 200} if s % 20 == 0 else {})} for s in range(1, 61)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = plot_run(tmp_path, tmp_path / "c.png", window=10)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    with pytest.raises(MSMError, match="metrics.jsonl not found; pass a pretraining run folder"):
        plot_run(tmp_path / "nope", tmp_path / "d.png")
    assert main([str(tmp_path / "nope")]) == 2 and not (tmp_path / "d.png").exists()
