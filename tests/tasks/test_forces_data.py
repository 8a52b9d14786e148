"""Forces labels, measures and the dataset generator (determinism, resume, damaged shards)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from thorgym.datasets.forces import ForceArrays, generate_forces, load_split, read_shard, scene_samples
from thorgym.tasks.forces import (
    CLASS_NAMES,
    NUM_CLASSES,
    STEPS,
    STOP,
    WINDOW,
    class_weights,
    direction_class,
    most_frequent_sequence,
    score,
    trajectory_labels,
)


# -- labels -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("d", "yaw", "name"),
    [
        ((0.0, 0.0, 0.005), 0.0, "stop"),
        ((0.0, 0.0, 0.1), 0.0, "slide away"),
        ((0.1, 0.0, 0.0), 0.0, "slide right"),  # +x is to the right of a camera at yaw 0
        ((0.1, 0.0, 0.0), 90.0, "slide away"),  # ... and ahead of one turned to +x
        ((0.0, 0.0, -0.1), 0.0, "slide toward"),
        ((-0.1, 0.0, 0.1), 0.0, "slide away-left"),
        ((0.0, -0.05, 0.1), 0.0, "fall away"),  # 27 degrees down
        ((0.0, -0.1, -0.02), 0.0, "fall down"),
        ((0.0, 0.05, 0.1), 0.0, "slide away"),  # upward motion counts as horizontal
    ],
)
def test_direction_classes(d, yaw, name):
    assert CLASS_NAMES[direction_class(np.array(d), yaw)] == name


def test_class_layout():
    assert len(CLASS_NAMES) == NUM_CLASSES == 18 and CLASS_NAMES[STOP] == "stop"


def test_trajectory_labels_slide_then_stop():
    t = np.arange(0, 0.5, 0.02)
    z = np.minimum(t, 0.2)  # 1 m/s for 0.2 s, then rest
    pos = np.stack([np.zeros_like(t), np.zeros_like(t), z], axis=1)
    labels = trajectory_labels(t, pos, 0.0)
    assert labels.shape == (STEPS,)
    assert [CLASS_NAMES[c] for c in labels] == ["slide away", "slide away"] + ["stop"] * 4
    assert WINDOW == 0.15


def test_score_and_baselines_on_a_hand_made_case():
    labels = np.array([[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [2, 2, 0, 0, 0, 0], [0] * 6])
    types = ["Mug", "Mug", "Box", "Box"]
    seq = most_frequent_sequence(labels)
    assert seq.tolist() == [1, 0, 0, 0, 0, 0]
    m = score(np.tile(seq, (4, 1)), labels, types)
    assert m["moving_samples"] == 3 and m["all_stop_samples"] == 1
    assert m["sequence_accuracy"] == pytest.approx(100 * 2 / 3, abs=0.01)
    assert m["per_step_accuracy"] == pytest.approx(100 * (6 + 6 + 4 + 5) / 24, abs=0.01)
    assert m["per_object_type"]["Mug"]["sequence_accuracy"] == 100.0
    assert m["per_object_type"]["Box"]["sequence_accuracy"] == 0.0
    w = class_weights(labels)
    assert w.shape == (NUM_CLASSES,) and w[STOP] < w[1] == w[2] and w[5] == 0  # 17 stops, 2 of each


# -- generator ----------------------------------------------------------------------------------
def test_scene_samples_are_consistent_and_deterministic():
    a, counts = scene_samples("FloorPlan26", 6, seed=4, size=48)
    b, _ = scene_samples("FloorPlan26", 6, seed=4, size=48)
    assert a is not None and len(a) == 6 and counts["views"] >= 2
    assert a.to_bytes() == b.to_bytes()
    assert a.image.shape == (6, 48, 48, 3) and a.mask.shape == (6, 48, 48)
    for k in range(6):
        px, py = a.point[k]
        assert a.mask[k][int(py * 48), int(px * 48)]  # the force acts on the object's pixels
        n = a.traj_len[k]
        np.testing.assert_allclose(a.trajectory[k, 0], a.trajectory[k, 0])
        labels = trajectory_labels(np.arange(n) * 0.02, a.trajectory[k, :n], float(a.camera[k, 3]))
        np.testing.assert_array_equal(labels, a.labels[k])
    c, _ = scene_samples("FloorPlan26", 6, seed=5, size=48)
    assert c.to_bytes() != a.to_bytes()


def test_generate_resume_and_damaged_shards(tmp_path):
    scenes = ["FloorPlan1", "FloorPlan226"]
    m1 = generate_forces(tmp_path / "a", scenes=scenes, n=3, seed=0, size=32, progress=False)
    assert set(m1["splits"]) == {"train", "test"}
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").glob("*/*.npz")}
    # a damaged shard and a missing one are made again, identical; the manifest too
    (tmp_path / "a" / "test" / "FloorPlan226.npz").write_bytes(b"not a shard")
    (tmp_path / "a" / "train" / "FloorPlan1.npz").unlink()
    m2 = generate_forces(tmp_path / "a", scenes=scenes, n=3, seed=0, size=32, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").glob("*/*.npz")} == first
    assert m2 == m1
    with pytest.raises(ValueError, match="not a thorgym forces shard"):
        read_shard(_write(tmp_path / "bad.npz", b"PK\x03\x04junk"))
    assert len(load_split(tmp_path / "a", "test")) == 3
    with pytest.raises(FileNotFoundError, match="thorgym data forces"):
        load_split(tmp_path / "a", "val")
    with pytest.raises(ValueError, match="unknown split"):
        load_split(tmp_path / "a", "dev")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_wrong_version_shard_is_refused(tmp_path):
    a, _ = scene_samples("FloorPlan26", 1, seed=0, size=32)
    import io

    buf = io.BytesIO()
    np.savez(buf, format_version=np.int64(99), **{k: getattr(a, k) for k in ("labels",)})
    with pytest.raises(ValueError, match="format version 99"):
        read_shard(_write(tmp_path / "v99.npz", buf.getvalue()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        generate_forces("/tmp/never", scenes=["FloorPlan1"], size=8, progress=False)
    with pytest.raises(ValueError, match="FloorPlan999"):
        generate_forces("/tmp/never", scenes=["FloorPlan999"], progress=False)
    with pytest.raises(ValueError, match="n must be"):
        generate_forces("/tmp/never", scenes=["FloorPlan1"], n=0, progress=False)


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_bytes_of_an_uninterrupted_run(tmp_path):
    cmd = [sys.executable, "-m", "thorgym", "data", "forces", "--scenes", "FloorPlan1,FloorPlan2,FloorPlan3",
           "--n", "6", "--size", "32"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [*cmd, "--out", str(tmp_path / "ref")], check=True, env=env, timeout=600, capture_output=True
    )
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "cut")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not list((tmp_path / "cut").glob("train/*.npz")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "cut").glob("**/*.tmp"))  # no partial file under a final name
    subprocess.run(
        [*cmd, "--out", str(tmp_path / "cut")], check=True, env=env, timeout=600, capture_output=True
    )
    ref = {p.relative_to(tmp_path / "ref"): p.read_bytes() for p in (tmp_path / "ref").glob("*/*.npz")}
    cut = {p.relative_to(tmp_path / "cut"): p.read_bytes() for p in (tmp_path / "cut").glob("*/*.npz")}
    assert ref == cut and len(ref) == 3
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["shards"].keys() == {
        "FloorPlan1", "FloorPlan2", "FloorPlan3"
    }  # fmt: skip


def test_forcearrays_concat_and_subset():
    a, _ = scene_samples("FloorPlan26", 2, seed=0, size=32)
    both = ForceArrays.concat([a, a])
    assert len(both) == 4 and len(both.subset([0, 3])) == 2
