"""The force-prediction agent (agents/forces): model, augmentation, trainer, evaluator, baselines.

Data are synthetic :class:`ForceArrays` written as shards: a toy world where a push slides the
object in the push's direction for a number of steps set by the magnitude, then it stops —
labels are a simple function of the force, so a working model learns them in a few hundred steps.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from thorgym.agents.forces.data import MIRROR_CLASS, augment, make_batch, mirror_classes
from thorgym.agents.forces.evaluate import (
    evaluate_forces,
    most_frequent_predictions,
    nearest_neighbour_predictions,
    random_predictions,
)
from thorgym.agents.forces.model import ForcesModel, ForcesModelConfig, point_maps, weighted_sequence_loss
from thorgym.agents.forces.trainer import (
    ForcesTrainArgs,
    load_checkpoint,
    load_model,
    loss_weights,
    predict,
    train_forces,
)
from thorgym.agents.forces.video import TRAJ_DT, class_direction, project
from thorgym.datasets.forces import TRAJ_LEN, ForceArrays, load_split
from thorgym.tasks.forces import (
    MAGNITUDES,
    NUM_CLASSES,
    PUSH_ANGLES,
    STEPS,
    class_weights,
    direction_class,
    score,
)

torch.set_num_threads(1)
TYPES = ("Mug", "Apple", "Book")


def toy_labels(angle: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """Slide along the push (class 1 + angle / 45) for 1 + index(magnitude) steps, then stop."""
    k = len(angle)
    cls = 1 + (np.rint(np.asarray(angle) / 45.0).astype(np.int64) % 8)
    n = 1 + np.searchsorted(MAGNITUDES, magnitude)
    labels = np.zeros((k, STEPS), dtype=np.int64)
    for i in range(k):
        labels[i, : n[i]] = cls[i]
    return labels


def toy_arrays(k: int, seed: int, size: int = 64, scene: str = "FloorPlan1") -> ForceArrays:
    """k synthetic samples: noise images with a bright square object, pushed at a mask pixel."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 120, size=(k, size, size, 3), dtype=np.uint8)
    mask = np.zeros((k, size, size), dtype=bool)
    point = np.zeros((k, 2), dtype=np.float32)
    for i in range(k):
        s = rng.integers(6, 16)
        y, x = rng.integers(0, size - s, 2)
        mask[i, y : y + s, x : x + s] = True
        image[i, y : y + s, x : x + s] = (200, 180, 60)
        py, px = y + rng.integers(0, s), x + rng.integers(0, s)
        point[i] = ((px + 0.5) / size, (py + 0.5) / size)
    angle = rng.choice(np.array(PUSH_ANGLES, dtype=np.float32), k)
    magnitude = rng.choice(np.array(MAGNITUDES, dtype=np.float32), k)
    labels = toy_labels(angle, magnitude)
    camera = np.tile(np.array([0.0, 0.9, 0.0, 0.0, 30.0], dtype=np.float32), (k, 1))
    point3d = np.stack([rng.uniform(-0.3, 0.3, k), np.full(k, 0.9), rng.uniform(0.8, 1.2, k)], 1).astype(
        np.float32
    )
    traj = np.repeat(point3d[:, None], TRAJ_LEN, 1).copy()
    for i in range(k):
        d = class_direction(int(labels[i, 0]), 0.0)
        n = int((labels[i] > 0).sum())
        t = np.arange(TRAJ_LEN) * 0.02
        traj[i] += (np.minimum(t, 0.15 * n) * 0.3)[:, None] * d
    object_id = np.array([f"{TYPES[i % 3]}|+0.00|+0.90|+{i:d}.00" for i in range(k)])
    return ForceArrays(
        image=image, mask=mask, point=point, angle=angle, magnitude=magnitude, point3d=point3d,
        trajectory=traj.astype(np.float32), traj_len=np.full(k, TRAJ_LEN, dtype=np.int32), labels=labels,
        scene=np.array([scene] * k), object_id=object_id,
        object_type=np.array([TYPES[i % 3] for i in range(k)]), camera=camera,
        outcome=np.array(["rest"] * k),
    )  # fmt: skip


def write_dataset(root: Path, train: int = 96, val: int = 32, test: int = 32) -> Path:
    for split, k, seed in (("train", train, 1), ("val", val, 2), ("test", test, 3)):
        half = k // 2
        for j, (n, scene) in enumerate(((half, f"FloorPlan{seed}"), (k - half, f"FloorPlan{seed + 200}"))):
            p = root / split / f"{scene}.npz"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(toy_arrays(n, 10 * seed + j, scene=scene).to_bytes())
    return root


def tiny_args(root: Path, out: Path, **kw) -> ForcesTrainArgs:
    base = dict(data_root=root, out=out, steps=6, batch_size=16, eval_every=3, checkpoint_every=2,
                device="cpu", progress=False, eval_batch_size=64)  # fmt: skip
    base.update(kw)
    return ForcesTrainArgs(**base)


# -- model -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", ["cnn_small", "espnetv2_s0.5"])
def test_model_shapes_and_resize(backbone):
    m = ForcesModel(ForcesModelConfig(backbone=backbone))
    d = toy_arrays(3, 0, size=80)  # another size than the model's 64: resized inside
    b = make_batch(d, np.arange(3), torch.device("cpu"))
    logits = m(b.image, b.mask, b.point, b.force)
    assert logits.shape == (3, STEPS, NUM_CLASSES)
    assert m.image_input(b.image, b.mask, b.point).shape == (3, 5, 64, 64)
    assert ForcesModel(ForcesModelConfig(point_map=False)).image_input(b.image, b.mask, b.point).shape[1] == 4


def test_point_map_peaks_at_the_point():
    pm = point_maps(torch.tensor([[0.25, 0.75]]), 64, 64)[0, 0]
    y, x = divmod(int(pm.argmax()), 64)
    assert (x, y) in ((15, 47), (16, 48), (15, 48), (16, 47))
    assert math.isclose(float(pm.max()), 1.0, abs_tol=0.05)


def test_weighted_loss_matches_cross_entropy_and_weights():
    logits = torch.randn(4, STEPS, NUM_CLASSES)
    labels = torch.randint(0, NUM_CLASSES, (4, STEPS))
    ones = torch.ones(NUM_CLASSES)
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES), labels.reshape(-1))
    assert torch.allclose(weighted_sequence_loss(logits, labels, ones), ref)
    w = torch.zeros(NUM_CLASSES)
    w[labels[0, 0]] = 1.0  # only one class counts
    sel = labels.reshape(-1) == labels[0, 0]
    ref1 = torch.nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES)[sel], labels.reshape(-1)[sel])
    assert torch.allclose(weighted_sequence_loss(logits, labels, w), ref1)


def test_loss_weights_soften_the_papers_weighting():
    labels = np.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 2]])  # 9 stop, 2 of class 1, 1 of class 2
    assert np.allclose(loss_weights(labels, 1.0), class_weights(labels))
    flat = loss_weights(labels, 0.0)
    assert np.allclose(flat[[0, 1, 2]], 1.0) and (flat[3:] == 0).all()
    half = loss_weights(labels, 0.5)
    assert half[0] < half[1] < half[2] and np.isclose(half[2] / half[0], 3.0)  # sqrt(9 / 1)


# -- augmentation --------------------------------------------------------------------------------------
def test_mirror_classes_swap_left_and_right():
    names = {0: 0, 1: 1, 3: 7, 7: 3, 2: 8, 4: 6, 5: 5, 9: 9, 11: 15, 13: 13, 17: 17}
    for c, m in names.items():
        assert MIRROR_CLASS[c] == m
    assert (mirror_classes(mirror_classes(np.arange(NUM_CLASSES))) == np.arange(NUM_CLASSES)).all()
    # the mirror of a displacement (x → −x at camera yaw 0) has the mirrored class
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.normal(size=3)
        assert (
            direction_class(d * [-1, 1, 1], 0.0) == MIRROR_CLASS[direction_class(d, 0.0)] or abs(d[0]) < 1e-9
        )


def test_mirror_augmentation_keeps_the_rule():
    d = toy_arrays(64, 5)
    img, mask, point, angle, labels = augment(d.image, d.mask, d.point, d.angle, d.labels,
                                              np.random.default_rng(0), mirror=True, jitter=0.0)  # fmt: skip
    flipped = (img != d.image).any(axis=(1, 2, 3))
    assert 10 < flipped.sum() < 54
    assert (labels == toy_labels(angle, d.magnitude)).all()  # labels still follow the force
    for i in np.nonzero(flipped)[0]:
        ys, xs = np.nonzero(mask[i])
        px = int(point[i, 0] * 64)
        assert mask[i, int(point[i, 1] * 64), px]  # the point is still on the object
        assert (mask[i] == d.mask[i, :, ::-1]).all() and xs.size
    # colour jitter changes colours only
    img2, mask2, *_ = augment(
        d.image, d.mask, d.point, d.angle, d.labels, np.random.default_rng(1), False, 0.3
    )
    assert (mask2 == d.mask).all() and (img2 != d.image).any()


# -- learning ------------------------------------------------------------------------------------------
def test_model_learns_the_toy_rule():
    """Labels are a function of the force's direction and magnitude: a few hundred steps of the
    trainer's loss and optimiser must get most whole sequences right on held-out samples."""
    torch.manual_seed(0)
    train, test = toy_arrays(512, 1), toy_arrays(128, 2)
    model = ForcesModel(ForcesModelConfig(point_map=False))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    w = torch.ones(NUM_CLASSES)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(250):
        b = make_batch(train, rng.choice(len(train), 32, replace=False), torch.device("cpu"), rng)
        loss = weighted_sequence_loss(model(b.image, b.mask, b.point, b.force), b.labels, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    preds, _ = predict(model, test, torch.device("cpu"))
    m = score(preds, test.labels, test.object_type.tolist())
    assert m["sequence_accuracy"] >= 85.0, m
    chance = score(random_predictions(len(test), 0), test.labels, test.object_type.tolist())
    assert chance["sequence_accuracy"] < 5.0


# -- trainer and evaluator -----------------------------------------------------------------------------
def test_train_resume_eval_round_trip(tmp_path):
    root = write_dataset(tmp_path / "data")
    final = train_forces(tiny_args(root, tmp_path / "run"))
    run = tmp_path / "run"
    assert final == run / "final.pt" and final.is_file()
    for name in ("args.json", "best.pt", "learning_curve.png", "train_summary.json"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt_*.pt"))[-1] == "ckpt_0000000006.pt"
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 6 and summary["selected_by"] == "val sequence accuracy"
    ckpt = load_checkpoint(final)
    assert ckpt["optimizer"] is None and ckpt["config"]["backbone"] == "cnn_small"
    # --resume with a larger budget continues from step 6
    train_forces(tiny_args(root, run, steps=8, resume=True))
    assert (run / "checkpoints" / "ckpt_0000000008.pt").is_file()
    assert json.loads((run / "train_summary.json").read_text())["steps"] == 8
    # eval on the run directory (its final.pt) with pictures
    out = tmp_path / "eval"
    metrics = evaluate_forces(run, "model", root, "test", out, video=3, seed=0, device="cpu")
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert metrics["agent"] == "model" and metrics["samples"] == 32 and metrics["split"] == "test"
    assert metrics["checkpoint"] == str(run / "final.pt")
    assert set(metrics["per_object_type"]) == set(TYPES)
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 32 and {
        "scene",
        "object_id",
        "object_type",
        "labels",
        "prediction",
        "correct",
    } <= set(lines[0])
    assert (out / "contact_sheet.png").stat().st_size > 1000
    assert (out / "forces.mp4").stat().st_size > 1000


def test_same_seed_same_metrics(tmp_path):
    root = write_dataset(tmp_path / "data")
    a = train_forces(tiny_args(root, tmp_path / "a", steps=4, eval_every=4))
    b = train_forces(tiny_args(root, tmp_path / "b", steps=4, eval_every=4))
    c = train_forces(tiny_args(root, tmp_path / "c", steps=4, eval_every=4, seed=1))
    sa, sb, sc = (load_checkpoint(p)["model"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    ma = evaluate_forces(a, "model", root, "val", tmp_path / "ea", device="cpu")
    mb = evaluate_forces(b, "model", root, "val", tmp_path / "eb", device="cpu")
    assert (
        ma["sequence_accuracy"] == mb["sequence_accuracy"]
        and ma["per_step_accuracy"] == mb["per_step_accuracy"]
    )
    r1 = evaluate_forces(None, "random", root, "test", tmp_path / "r1", seed=3)
    r2 = evaluate_forces(None, "random", root, "test", tmp_path / "r2", seed=3)
    assert (tmp_path / "r1/predictions.jsonl").read_text() == (tmp_path / "r2/predictions.jsonl").read_text()
    assert r1["per_step_accuracy"] == r2["per_step_accuracy"]


def _kill_resume_script(root: Path, out: Path, steps: int) -> str:
    return (
        "import torch; torch.set_num_threads(1)\n"
        "from tests.agents.test_forces_agent import tiny_args\n"
        "from thorgym.agents.forces.trainer import train_forces\n"
        "from pathlib import Path\n"
        f"train_forces(tiny_args(Path({str(root)!r}), Path({str(out)!r}), steps={steps}, checkpoint_every=3, "
        "eval_every=5, resume=True))\n"
    )


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_run(tmp_path):
    root = write_dataset(tmp_path / "data", train=256)
    steps = 40
    full = train_forces(tiny_args(root, tmp_path / "full", steps=steps, checkpoint_every=3, eval_every=5))
    run = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", _kill_resume_script(root, run, steps)], cwd=repo, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list((run / "checkpoints").glob("ckpt_00000000[1-9]*.pt")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "final.pt").exists(), "the run finished before it was killed: raise its steps"
    subprocess.run(
        [sys.executable, "-c", _kill_resume_script(root, run, steps)], cwd=repo, env=env, check=True
    )
    a, b = load_checkpoint(full), load_checkpoint(run / "final.pt")
    assert a["step"] == b["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_bad_checkpoints_give_clear_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable thorgym forces checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "thorgym-iqa-v1"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a thorgym forces checkpoint"):
        load_model(tmp_path / "other.pt")
    torch.save({"format": "thorgym-forces-v1", "config": {"backbone": "cnn_small"},
                "model": {"x": torch.zeros(1)}}, tmp_path / "mismatch.pt")  # fmt: skip
    with pytest.raises(ValueError, match="does not match the model"):
        load_model(tmp_path / "mismatch.pt")
    root = write_dataset(tmp_path / "data")
    final = train_forces(tiny_args(root, tmp_path / "run", steps=2))
    data = final.read_bytes()
    final.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match="not a readable"):
        evaluate_forces(final, "model", root, "test", tmp_path / "e")
    with pytest.raises(FileNotFoundError):
        evaluate_forces(tmp_path / "empty_run", "model", root, "test", tmp_path / "e")
    with pytest.raises(ValueError, match="needs --checkpoint"):
        evaluate_forces(None, "model", root, "test", tmp_path / "e")
    with pytest.raises(ValueError, match="unknown forces agent"):
        evaluate_forces(None, "oracle", root, "test", tmp_path / "e")
    with pytest.raises(ValueError, match="train split"):
        evaluate_forces(None, "most-frequent", None, "test", tmp_path / "e")


# -- baselines -----------------------------------------------------------------------------------------
def test_most_frequent_baseline_exact(tmp_path):
    """Train: 3× sequence A, 2× B, 4× all-stop (left out of the mode); test: 2 A, 1 B, 1 all-stop
    → the baseline predicts A: sequence accuracy 2/3 over the 3 moving samples."""
    a, bseq = [1, 1, 0, 0, 0, 0], [3, 3, 3, 0, 0, 0]
    train = toy_arrays(9, 0)
    train.labels = np.array([a] * 3 + [bseq] * 2 + [[0] * 6] * 4)
    test = toy_arrays(4, 1)
    test.labels = np.array([a, bseq, a, [0] * 6])
    root = tmp_path / "data"
    for split, d in (("train", train), ("test", test)):
        (root / split).mkdir(parents=True)
        (root / split / "FloorPlan1.npz").write_bytes(d.to_bytes())
    assert (most_frequent_predictions(train, 2) == np.array([a, a])).all()
    m = evaluate_forces(None, "most-frequent", root, "test", tmp_path / "e")
    assert m["sequence_accuracy"] == round(100 * 2 / 3, 2)
    assert m["moving_samples"] == 3 and m["all_stop_samples"] == 1
    # per step: A rows 6/6, B row 3/6 (the three stops), all-stop row 4/6
    assert m["per_step_accuracy"] == round(100 * (6 + 3 + 6 + 4) / 24, 2)


def test_nearest_neighbour_baseline(tmp_path):
    train = toy_arrays(60, 0)
    # a test set made of train samples: each one's nearest neighbour is itself
    assert (nearest_neighbour_predictions(train, train) == train.labels).all()
    # an object type unseen in train falls back to all train samples
    q = train.subset([0, 1])
    q.object_type = np.array(["Unseen", "Unseen"])
    assert (nearest_neighbour_predictions(train, q) == train.labels[:2]).all()
    # on the toy rule (labels follow the force) the baseline beats chance by far
    test = toy_arrays(64, 9)
    nn_acc = score(nearest_neighbour_predictions(toy_arrays(400, 8), test), test.labels, test.object_type)
    assert nn_acc["sequence_accuracy"] > 30  # chance: ~0


# -- pictures ------------------------------------------------------------------------------------------
def test_projection_convention():
    """A point straight ahead of the camera lands in the image centre; one to the camera's right,
    right of centre; one below, lower in the image."""
    cam = np.array([1.0, 0.9, 2.0, 90.0, 0.0])  # looking along +x, level
    eye_y = 0.9 + 0.675
    uv, front = project(
        np.array([[3.0, eye_y, 2.0], [3.0, eye_y, 1.5], [3.0, eye_y - 0.5, 2.0]]), cam, 64, 64
    )
    assert front.all()
    assert np.allclose(uv[0], [32, 32], atol=1e-4)
    assert uv[1, 0] > 32 and abs(uv[1, 1] - 32) < 1e-4  # yaw 90: right is −z
    assert uv[2, 1] > 32
    # fov 90: a point at 45° to the right is at the image edge
    uv, _ = project(np.array([[3.0, eye_y, 0.0]]), cam, 64, 64)
    assert np.allclose(uv[0], [64, 32], atol=1e-3)
    from thorgym.sim.layout import CAMERA_HEIGHT
    from thorgym.sim.physics import SAMPLE_DT

    assert CAMERA_HEIGHT == 0.675 and TRAJ_DT == SAMPLE_DT  # the video's constants are the sim's


def test_shipped_or_generated_test_split_loads():
    """When the lead's shipped test split is there, the baselines run on it end to end."""
    try:
        data = load_split(None, "test")
    except (FileNotFoundError, ValueError):
        pytest.skip("no shipped forces test split yet")
    m = score(random_predictions(len(data), 0), data.labels, data.object_type.tolist())
    assert m["samples"] == len(data)


def test_projection_matches_the_renderer():
    """The centre of a small visible object's box, projected with the sample's camera, lands on its
    rendered mask (the convention of sim/render.py: eye at agent y + CAMERA_HEIGHT, fov 90)."""
    from thorgym.sim import Controller

    with Controller(width=64, height=64, renderInstanceSegmentation=True) as c:
        ev = c.reset("FloorPlan1")
        ev = c.step("LookDown")
        checked = 0
        for action in ("RotateRight", "MoveAhead", "RotateRight", "RotateRight"):
            md = ev.metadata
            a = md["agent"]
            pos = a["position"]
            cam = np.array([pos["x"], pos["y"], pos["z"], a["rotation"]["y"], a["cameraHorizon"]])
            for o in md["objects"]:
                m = ev.instance_masks.get(o["objectId"])
                box = o["axisAlignedBoundingBox"]
                if m is None or m.sum() < 6 or max(box["size"].values()) > 0.4:
                    continue
                ys, xs = np.nonzero(m)
                if xs.min() == 0 or ys.min() == 0 or xs.max() == 63 or ys.max() == 63:
                    continue  # cut by the frame: its centroid is not the box centre's image
                ctr = box["center"]
                uv, front = project(np.array([[ctr["x"], ctr["y"], ctr["z"]]]), cam, 64, 64)
                assert front[0]
                assert abs(uv[0, 0] - (xs.mean() + 0.5)) < 2.0 and abs(uv[0, 1] - (ys.mean() + 0.5)) < 2.0
                checked += 1
            ev = c.step(action)
    assert checked >= 3


def test_budget_and_argument_checks():
    from thorgym.agents.forces.trainer import total_steps

    assert total_steps(ForcesTrainArgs(epochs=2, batch_size=32), 96) == 6
    assert total_steps(ForcesTrainArgs(steps=7), 96) == 7
    for bad in (dict(steps=0), dict(size=32), dict(jitter=1.0), dict(class_weight_power=-1.0)):
        with pytest.raises(ValueError):
            ForcesTrainArgs(**bad).validate()


def test_cli_shaped_arguments(tmp_path):
    """ForcesTrainArgs.from_options (the CLI's TrainOptions) and ForcesEvalArgs / run_forces_eval,
    the typed forms the agent registry takes."""
    from thorgym.agents.forces.evaluate import ForcesEvalArgs, run_forces_eval
    from thorgym.agents.train_args import TrainOptions

    o = TrainOptions(task="forces", agent="model", out=tmp_path / "run", steps=5, lr=3e-4, seed=2)
    args = ForcesTrainArgs.from_options(o, data_root=tmp_path / "data")
    assert (args.steps, args.lr, args.seed, args.backbone, args.checkpoint_every) == (
        5,
        3e-4,
        2,
        "cnn_small",
        1000,
    )
    o2 = TrainOptions(
        task="forces", agent="model", out=tmp_path / "run", checkpoint_every=50, backbone="resnet18"
    )
    assert ForcesTrainArgs.from_options(o2, data_root="d").checkpoint_every == 50
    with pytest.raises(ValueError, match="dataset folder"):
        ForcesTrainArgs.from_options(o)
    root = write_dataset(tmp_path / "data")
    m = run_forces_eval(ForcesEvalArgs(agent="random", data_root=root, out_dir=tmp_path / "e", seed=4))
    assert m["agent"] == "random" and m["seed"] == 4 and (tmp_path / "e" / "metrics.json").is_file()
