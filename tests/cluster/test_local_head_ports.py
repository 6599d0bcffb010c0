"""The private Ray head's ports: the worker-port block never overlaps the other components' ports."""

from __future__ import annotations

import socket

import pytest

import msm.cluster.local_head as local_head


def test_worker_block_skips_blocks_that_hit_avoided_or_bound_ports(monkeypatch):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        avoid = {taken + 100}
        real = local_head.free_ports
        starts = iter([[taken - 5], [taken + 90], [taken + 200]])  # hits the bound port, then the avoided one
        monkeypatch.setattr(local_head, "free_ports", lambda n: next(starts, None) or real(n))
        start = local_head.free_port_range(41, avoid)
    block = range(start, start + 41)
    assert taken not in block and not avoid.intersection(block)
    assert start not in (taken - 5, taken + 90)


def test_no_block_found_names_the_problem(monkeypatch):
    monkeypatch.setattr(local_head, "_is_free", lambda port: False)
    with pytest.raises(local_head.MSMError, match="no 41 consecutive free ports"):
        local_head.free_port_range(41, set(), tries=3)
