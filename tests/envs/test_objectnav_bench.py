"""The env benchmark runs and reports env and raw simulator throughput side by side."""

from __future__ import annotations

from thorgym.envs.bench import format_table, run


def test_bench_records():
    records = run(num_envs=(1, 2), size=32, scenes=["FloorPlan401"], min_seconds=0.05, rounds=1)
    assert [r["num_envs"] for r in records] == [1, 2]
    for r in records:
        for key in ("raw_steps_per_s", "env_steps_per_s", "make_vec_steps_per_s"):
            assert r[key] > 0
        assert "overhead_pct" in r
    assert records[0]["single_env_steps_per_s"] > 0
    assert "overhead_pct" in format_table(records)
