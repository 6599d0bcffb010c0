"""The slim cluster rehearsal (``benchmarks/cluster_rehearsal.py --slim``): mining, then pretraining with one worker
on each node, submitted with ``msm submit`` to a Ray cluster of two nodes that share no disk (node B in a private
mount namespace), every input and output in a real S3-compatible store (SeaweedFS on loopback); during pretraining
node B's raylet is killed by its PID after the first checkpoint reached the bucket: the job completes from that
checkpoint on a replacement node and logs every step once. ``make rehearsal`` runs the whole chain on one node and
on two (the same pairs, losses, metrics) and every drill, each compared with the undisturbed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.xdist_group("ray")  # a cluster of its own: not beside the session's
@pytest.mark.timeout(1500)
def test_mine_and_pretrain_on_two_nodes_without_a_shared_disk_survive_a_lost_node(tmp_path, shared_data):
    if os.geteuid() != 0:
        pytest.skip("needs root for unshare -m (CI runs as root)")
    out = tmp_path / "rehearsal.json"
    env = {**os.environ, "MSM_DATA_DIR": str(shared_data)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cluster_rehearsal.py"), "--slim", "--out",
                           str(out), "--keep-logs", str(tmp_path / "logs")], env=env, capture_output=True, text=True,
                          timeout=1450)
    report = json.loads(out.read_text()) if out.is_file() else None
    assert report is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    stages = {r["stage"]: r for r in report["stages"]}
    assert set(stages) == {"mine"}
    mine = stages["mine"]["two"]
    assert mine["complete"] and mine["input"] == 18 and mine["input"] == mine["kept"] + mine["quarantined"]
    assert mine["pairs"], "no document pair mined"
    drill = report["drills"]["pretrain"]
    assert drill["ok"] and drill["drill"]["killed"].startswith("node B raylet"), drill
    assert drill["drill"]["when"] == "the first checkpoint at the URI", drill
    assert drill["every_step_once"] and drill["result"]["steps"] == list(range(1, 13)), drill["result"]
    assert drill["result"]["complete"] and drill["passed"], drill
    assert report["passed"], proc.stdout[-3000:]
