"""A short soak (`thorgym bench soak`): both loops run, nothing leaks a process or a descriptor."""

from __future__ import annotations

import pytest

from thorgym.benchmarks.soak import run


def test_short_soak_leaves_no_children_and_no_descriptors():
    sim, thor = run(minutes=0.2, envs=2, size=32, interval=2.0)
    for r in (sim, thor):
        assert r["steps"] > 0 and r["first_steps_per_s"] > 0 and r["last_steps_per_s"] > 0
        assert r["children_left"] == 0, r
        assert r["fds_end"] <= r["fds_start"] + 2, r
    assert thor["server_rss_start_mb"] > 0


def test_soak_rejects_a_bad_duration():
    with pytest.raises(ValueError, match="--minutes must be positive"):
        run(minutes=0)
