"""`thorgym pretrain`: free labels, cached deterministic frames, metrics, checkpoint → train path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from thorgym.agents.backbones import load_backbone
from thorgym.agents.backbones.checkpoint import read_backbone_checkpoint
from thorgym.agents.metrics import average_precision, mean_average_precision
from thorgym.datasets.pretrain_frames import (
    LABEL_INDEX,
    LABEL_TYPES,
    NUM_TARGET_TYPES,
    cache_path,
    generate_frames,
    labels_from_instance,
    load_or_generate,
)
from thorgym.pretrain import PretrainArgs, pretrain
from thorgym.sim.batch import BatchedSimulator
from thorgym.tasks.objectnav import TARGET_TYPES

METRIC_KEYS = {
    "backbone",
    "map_pretrained",
    "map_random_init_probe",
    "map_pretrained_probe",
    "map_chance",
    "results",
    "per_class_ap",
    "classes",
    "classes_evaluated",
    "train_frames",
    "heldout_frames",
    "history",
    "seconds",
    "args",
    "frames_from_cache",
}


def test_label_vector_covers_savn_targets_first() -> None:
    assert LABEL_TYPES[:NUM_TARGET_TYPES] == TARGET_TYPES
    assert len(set(LABEL_TYPES)) == len(LABEL_TYPES) > NUM_TARGET_TYPES


def test_labels_count_pixels_per_type() -> None:
    # objects 0 and 2 are Bowls (3 + 2 pixels), object 1 a Fridge (4 pixels), 3 a Box (1 pixel)
    inst = np.full((4, 4), -1, dtype=np.int32)
    inst.flat[:3] = 0
    inst.flat[3:7] = 1
    inst.flat[7:9] = 2
    inst.flat[9] = 3
    types = ["Bowl", "Fridge", "Bowl", "Box"]
    lab = labels_from_instance(inst, types, min_pixels=4)
    assert set(np.flatnonzero(lab)) == {LABEL_INDEX["Bowl"], LABEL_INDEX["Fridge"]}
    lab = labels_from_instance(inst, types, min_pixels=5)
    assert set(np.flatnonzero(lab)) == {LABEL_INDEX["Bowl"]}
    with pytest.raises(ValueError, match="min_pixels"):
        labels_from_instance(inst, types, min_pixels=0)


def test_labels_match_the_instance_segmentation_of_the_frame() -> None:
    """Each generated frame, re-rendered alone at its recorded pose, has the same pixels, and its
    label is exactly the set of types covering >= K pixels of that instance map."""
    k = 6
    fs = generate_frames(["FloorPlan1", "FloorPlan401"], 6, size=64, seed=1, min_pixels=k, worlds=2)
    assert fs.labels.sum() > 0
    for j in range(len(fs)):
        scene = fs.scenes[fs.scene_ids[j]]
        sim = BatchedSimulator([scene], width=64, height=64, render_depth=False)
        x, z, yaw, horizon = (float(v) for v in fs.poses[j])
        sim.pos[0, 0, 0], sim.pos[0, 0, 2], sim.yaw[0, 0], sim.horizon[0, 0] = x, z, yaw, horizon
        step = sim.observe()
        np.testing.assert_array_equal(step.rgb[0, 0].numpy(), fs.images[j])
        inst = step.instance[0, 0].numpy()
        expected = np.zeros(len(LABEL_TYPES), dtype=np.uint8)
        for t in set(o.object_type for o in sim.worlds[0].objects):
            ids = [i for i, o in enumerate(sim.worlds[0].objects) if o.object_type == t]
            expected[LABEL_INDEX[t]] = int(np.isin(inst, ids).sum() >= k)
        np.testing.assert_array_equal(fs.labels[j], expected)


def test_frames_are_deterministic_and_cached(tmp_path: Path) -> None:
    a = generate_frames(["FloorPlan2", "FloorPlan302"], 10, seed=5, worlds=2)
    b = generate_frames(["FloorPlan2", "FloorPlan302"], 10, seed=5, worlds=6)  # batching is free
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = generate_frames(["FloorPlan2", "FloorPlan302"], 10, seed=6, worlds=2)
    assert not np.array_equal(a.poses, c.poses)

    first, cached = load_or_generate(tmp_path, "heldout", 40, seed=0)
    assert not cached
    path = cache_path(tmp_path, "heldout", 40, 64, 0, 8)
    stamp = path.stat().st_mtime_ns
    again, cached = load_or_generate(tmp_path, "heldout", 40, seed=0)
    assert cached and path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert all(int(s.removeprefix("FloorPlan")) % 100 > 20 for s in first.scenes)  # val + test only
    assert not list(tmp_path.glob("*.tmp"))
    path.write_bytes(b"truncated")  # a corrupt cache is rendered again, not trusted
    redone, cached = load_or_generate(tmp_path, "heldout", 40, seed=0)
    assert not cached
    np.testing.assert_array_equal(redone.images, first.images)


def test_average_precision() -> None:
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.0])
    assert average_precision(y, s) == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))
    assert average_precision(y, np.zeros(5)) == pytest.approx(0.4)  # constant score: the prior
    assert np.isnan(average_precision(np.zeros(5), s))
    labels = np.stack([y, np.zeros(5, dtype=int)], 1)
    m, aps = mean_average_precision(labels, np.stack([s, s], 1))
    assert m == pytest.approx(aps[0]) and np.isnan(aps[1])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pretrain")
    args = PretrainArgs(
        out=out, train_frames=240, heldout_frames=120, epochs=1, batch_size=64, progress=False
    )
    pretrain(args)
    return out


def test_pretrain_writes_backbone_and_metrics(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["train_frames"] == 240 and metrics["heldout_frames"] == 120
    for key in ("map_pretrained", "map_random_init_probe", "map_pretrained_probe", "map_chance"):
        assert 0.0 < metrics[key] <= 1.0
    assert metrics["classes"] == list(LABEL_TYPES)
    ckpt = read_backbone_checkpoint(run_dir / "backbone.pt")
    assert ckpt["name"] == "cnn_small" and ckpt["num_classes"] == 0
    assert not any(k.startswith("head.") for k in ckpt["state_dict"])
    model = load_backbone("cnn_small", run_dir)  # the directory stands for its backbone.pt
    assert model(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape == (2, model.out_dim)
    classifier = load_backbone("cnn_small", run_dir / "classifier.pt")
    assert classifier.num_classes == len(LABEL_TYPES)


def test_resume_continues_to_the_same_weights(run_dir: Path, tmp_path: Path) -> None:
    for f in run_dir.glob("frames_*.npz"):
        shutil.copy(f, tmp_path / f.name)
    straight = PretrainArgs(
        out=tmp_path, train_frames=240, heldout_frames=120, epochs=2, batch_size=64, progress=False
    )
    m_straight = pretrain(straight)
    assert m_straight["frames_from_cache"] == {"train": True, "heldout": True}
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    m_resumed = pretrain(PretrainArgs(**{**straight.__dict__, "out": resumed_dir, "resume": True}))
    assert [h["epoch"] for h in m_resumed["history"]] == [1, 2]
    a = read_backbone_checkpoint(tmp_path / "backbone.pt")["state_dict"]
    b = read_backbone_checkpoint(resumed_dir / "backbone.pt")["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    with pytest.raises(ValueError, match="--resume"):
        pretrain(PretrainArgs(**{**straight.__dict__, "out": resumed_dir, "resume": True, "lr": 0.5}))


def test_checkpoint_loads_frozen_through_the_train_path(run_dir: Path, tmp_path: Path) -> None:
    from thorgym.train import TrainArgs, build_model, make_vec_env

    args = TrainArgs(
        backbone="cnn_small",
        backbone_ckpt=str(run_dir),
        freeze_backbone=True,
        envs=1,
        n_steps=8,
        device="cpu",
        out=tmp_path,
        progress=False,
    )
    venv = make_vec_env(args)
    try:
        model = build_model(args, venv)
    finally:
        venv.close()
    extractor = model.policy.features_extractor
    assert extractor.frozen
    saved = read_backbone_checkpoint(run_dir / "backbone.pt")["state_dict"]
    own = extractor.backbone.state_dict()
    assert set(own) == set(saved)
    for k, v in saved.items():
        torch.testing.assert_close(own[k].cpu(), v)
    assert all(not p.requires_grad for p in extractor.backbone.parameters())
    assert any(p.requires_grad for p in extractor.image_proj.parameters())


def test_bad_input_is_rejected_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid names"):
        pretrain(PretrainArgs(backbone="no_such_net", out=tmp_path))
    with pytest.raises(ValueError, match="--size"):
        pretrain(PretrainArgs(size=32, out=tmp_path))
    with pytest.raises(ValueError, match="--epochs"):
        PretrainArgs(epochs=0).validate()
    with pytest.raises(FileNotFoundError, match="backbone.pt"):
        load_backbone("cnn_small", tmp_path)  # a directory without a checkpoint
    assert not list(tmp_path.iterdir())  # nothing rendered for bad arguments


def test_cli_reports_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from thorgym.cli import app

    result = CliRunner().invoke(app, ["pretrain", "--size", "32", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--size" in result.output


def test_cli_default_out_is_where_savn_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from thorgym.cli import app
    from thorgym.train_savn import resolve_backbone_ckpt

    monkeypatch.chdir(tmp_path)
    args = ["pretrain", "--train-frames", "64", "--heldout-frames", "32", "--epochs", "1", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = Path("runs") / "pretrain_cnn_small" / "backbone.pt"
    assert expected.is_file() and str(expected) in result.output
    assert resolve_backbone_ckpt(None, "cnn_small") == str(expected)
