"""The cached (pose-table) ObjectNav env plays the same episodes as the rendering one."""

from __future__ import annotations

import numpy as np
import pytest

from thorgym.envs.cached import CachedObjectNavVectorEnv
from thorgym.envs.vector import ObjectNavVectorEnv
from thorgym.tasks import objectnav as nav

SCENES = ["FloorPlan401", "FloorPlan402"]


def _pose_features(scene: str) -> np.ndarray:
    """A 'feature' that names the pose: (scene number, pose index)."""
    g = nav.build_pose_graph(scene)
    num = int(scene.removeprefix("FloorPlan"))
    return np.stack([np.full(g.num_poses, num), np.arange(g.num_poses)], 1).astype(np.float32)


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_cached_env_equals_online_env_step_for_step(version):
    n, steps = 4, 150
    kw = dict(scenes=SCENES, max_steps=25, version=version)
    online = ObjectNavVectorEnv(n, width=64, height=64, **kw)
    cached = CachedObjectNavVectorEnv(n, features_fn=_pose_features, **kw)
    o1, i1 = online.reset(seed=3)
    o2, i2 = cached.reset(seed=3)
    rng = np.random.default_rng(0)
    ends = 0
    for t in range(steps):
        for k in ("target", "target_embedding"):
            np.testing.assert_array_equal(o1[k], o2[k])
        for key in nav.INFO_KEYS:
            np.testing.assert_array_equal(i1[key], i2[key], err_msg=f"{key} at step {t}")
        np.testing.assert_allclose(online.worlds.poses(), cached.worlds.poses(), atol=1e-4)
        np.testing.assert_array_equal(online.target_visible, cached.target_visible)
        # the feature looked up is the one of the pose the simulator stands in
        for i, ep in enumerate(cached.episodes):
            g = nav.build_pose_graph(ep.scene)
            assert int(o2["features"][i, 1]) == g.pose(*online.worlds.poses()[i])
        a = rng.integers(0, len(nav.ACTIONS), size=n)
        a[rng.random(n) < 0.6] = nav.MOVE_AHEAD  # move about more than the uniform policy would
        o1, r1, te1, tr1, i1 = online.step(a)
        o2, r2, te2, tr2, i2 = cached.step(a)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        ends += int((te1 | tr1).sum())
    assert ends >= 4  # episodes ended and were reset on both sides
    online.close()
    cached.close()


def test_cached_env_rejects_rendering_sensors_and_bad_poses():
    env = CachedObjectNavVectorEnv(1, scenes=SCENES[:1], features_fn=_pose_features)
    with pytest.raises(ValueError, match="features"):
        env.worlds.sensors(["rgb"])
    ok, msg = env.worlds.teleport(0, 99.0, 99.0, 0.0, 0.0)
    assert not ok and "reachable" in msg
