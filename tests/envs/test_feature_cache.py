"""Per-pose feature cache: the cached vector of a pose is the backbone's pooled feature map of
the frame a fresh simulator renders at that pose; the disk cache round-trips and is keyed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from thorgym.agents.backbones import build_backbone, save_backbone
from thorgym.envs.feature_cache import FeatureCache, build_pose_features
from thorgym.sim import BatchedSimulator
from thorgym.tasks.objectnav import build_pose_graph

SCENE = "FloorPlan1"


def _reference(net, scene: str, pose: int, size: int, grid: int) -> np.ndarray:
    """The backbone (conv trunk → adaptive average pool) on the frame rendered at ``pose``."""
    x, z, yaw, horizon = build_pose_graph(scene).pose_values(pose)
    sim = BatchedSimulator([scene], width=size, height=size, rotate_step_degrees=45.0, field_of_view=90.0)
    assert bool(sim.teleport([0], [x], [z], yaw=[yaw], horizon=[horizon]).all())
    frame = sim.observe().rgb[:, 0]  # (1, H, W, 3) uint8
    trunk = torch.nn.Sequential(*list(net.features)[:-2])  # cnn_small: drop AdaptiveAvgPool2d(2), Flatten
    with torch.no_grad():
        fmap = trunk(net.normalize(frame.permute(0, 3, 1, 2)))
        return F.adaptive_avg_pool2d(fmap, grid).flatten(1)[0].numpy()


def test_pose_features_match_a_fresh_render() -> None:
    torch.manual_seed(0)
    net = build_backbone("cnn_small").eval()
    graph = build_pose_graph(SCENE)
    poses = [0, 1, 7, 16 * (graph.num_poses // 32) + 9, graph.num_poses - 1]  # both horizons, many yaws
    feats = build_pose_features(SCENE, net, size=64, grid=3, batch=4, poses=poses)
    assert feats.shape == (len(poses), 64 * 3 * 3) and feats.dtype == np.float16
    for row, pose in zip(feats, poses, strict=True):
        ref = _reference(net, SCENE, pose, 64, 3)
        np.testing.assert_allclose(row.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    assert not np.array_equal(feats[0], feats[1])  # horizon 0 vs 30: different frames


def test_cache_builds_once_and_keys_on_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import thorgym.envs.feature_cache as fc

    calls: list[str] = []

    def small_build(scene, backbone, **kw):  # the first 40 poses keep the test short
        calls.append(scene)
        return build_pose_features(scene, backbone, **{**kw, "poses": range(40)})

    monkeypatch.setattr(fc, "build_pose_features", small_build)
    cache = FeatureCache(tmp_path, "cnn_small", None, size=64, grid=3)
    [path] = cache.build([SCENE], progress=False)
    assert path == tmp_path / cache.key / f"{SCENE}.npy" and path.is_file()
    first = cache.get(SCENE)
    again = FeatureCache(tmp_path, "cnn_small", None, size=64, grid=3)
    assert again.key == cache.key
    np.testing.assert_array_equal(again.get(SCENE), first)  # read from disk, not rebuilt
    assert calls == [SCENE]
    torch.manual_seed(0)  # a random-init cache backbone is built under seed 0
    net = build_backbone("cnn_small").eval()
    np.testing.assert_allclose(
        first[17].astype(np.float32), _reference(net, SCENE, 17, 64, 3), rtol=2e-3, atol=2e-3
    )

    ckpt = save_backbone(build_backbone("cnn_small"), tmp_path / "bb.pt")
    keys = {
        cache.key,
        FeatureCache(tmp_path, "cnn_small", None, size=64, grid=2).key,
        FeatureCache(tmp_path, "cnn_small", None, size=96, grid=3).key,
        FeatureCache(tmp_path, "cnn_small", ckpt, size=64, grid=3).key,
    }
    assert len(keys) == 4
    with pytest.raises(FileNotFoundError):
        FeatureCache(tmp_path, "cnn_small", tmp_path / "missing.pt")
    with pytest.raises(ValueError):
        FeatureCache(tmp_path, "no_such_backbone")


def test_walking_reaches_the_cached_frames() -> None:
    """Frames met by stepping the simulator (not teleporting) match the cached features of the
    poses the pose graph predicts: the cache can stand in for rendering during training."""
    from thorgym.sim.batch import NAV_INDEX
    from thorgym.tasks.objectnav import ACTIONS, MOVE_AHEAD

    graph = build_pose_graph(SCENE)
    moves = graph.next_pose[:, MOVE_AHEAD] // 16 != np.arange(graph.num_poses) // 16
    pose = int(np.nonzero(moves & (np.arange(graph.num_poses) % 2 == 0))[0][0])  # horizon 0, can move
    plan = ["MoveAhead", "RotateRight", "MoveAhead", "LookDown", "RotateLeft", "MoveAhead", "LookUp"]
    torch.manual_seed(0)
    net = build_backbone("cnn_small").eval()
    x, z, yaw, horizon = graph.pose_values(pose)
    sim = BatchedSimulator([SCENE], width=64, height=64, rotate_step_degrees=45.0, field_of_view=90.0)
    sim.teleport([0], [x], [z], yaw=[yaw], horizon=[horizon])
    poses, frames = [], []
    for name in plan:
        sim.step_nav(torch.tensor([[NAV_INDEX[name]]]))
        pose = int(graph.next_pose[pose, ACTIONS.index(name)])
        poses.append(pose)
        frames.append(sim.observe().rgb[0, 0])
        np.testing.assert_allclose(sim.agent_poses()[0].numpy(), graph.pose_values(pose), atol=1e-4)
    cached = build_pose_features(SCENE, net, size=64, grid=3, poses=poses).astype(np.float32)
    trunk = torch.nn.Sequential(*list(net.features)[:-2])
    with torch.no_grad():
        walked = F.adaptive_avg_pool2d(trunk(net.normalize(torch.stack(frames).permute(0, 3, 1, 2))), 3)
    np.testing.assert_allclose(cached, walked.flatten(1).numpy(), rtol=2e-3, atol=2e-3)
