"""benchmarks/backbones.py: records, side-by-side resnet18, JSON output."""

from __future__ import annotations

import io
import json

import pytest

from thorgym.benchmarks.backbones import format_table, run

KEYS = {"name", "batch", "height", "width", "device", "dtype", "images_per_s", "params", "macs"}


def test_run_records_and_json() -> None:
    buf = io.StringIO()
    recs = run(
        ["espnetv2_s0.5"],
        batches=(2,),
        sizes=((64, 96),),
        device="cpu",
        dtype="float32",
        as_json=True,
        repeats=1,
        rounds=2,
        out=buf,
    )
    assert [r["name"] for r in recs] == ["espnetv2_s0.5", "resnet18"]  # reference added
    assert json.loads(buf.getvalue()) == recs
    for r in recs:
        assert KEYS <= set(r)
        assert (r["batch"], r["height"], r["width"], r["dtype"]) == (2, 64, 96, "float32")
        assert r["images_per_s"] > 0 and r["params"] > 0 and r["macs"] > 0
        assert r["images_per_s"] >= r["images_per_s_median_round"] > 0
    assert recs[1]["vs_resnet18"] == 1.0
    assert "espnetv2_s0.5" in format_table(recs)


def test_run_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="valid names"):
        run(["nope"], batches=(1,), sizes=((64, 64),), out=io.StringIO())
