"""``thorgym/ObjectNav-v0`` on the built-in simulator: API checkers, determinism, pickling,
reward/termination semantics and an oracle agent reaching SPL 1."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from objectnav_helpers import SMALL, oracle_action, random_actions
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import thorgym
from thorgym.envs.objectnav import ObjectNavEnv
from thorgym.registration import env_ids
from thorgym.tasks import objectnav as on

# Per registered id: the small settings its checks run with (sim backend).
CHECK_KWARGS = {
    "thorgym/ObjectNav-v0": {**SMALL, "depth": True},
    "thorgym/ObjectNav-v1": {**SMALL, "depth": True},
    "thorgym/ForcePrediction-v0": {"split": "test", "data": "shipped"},
    "thorgym/ForcePush-v0": {"split": "test", "size": 48},
}


def _obs_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_import_thorgym_imports_neither_torch_nor_ai2thor():
    code = (
        "import sys, gymnasium, thorgym\n"
        "assert {'thorgym/ObjectNav-v0', 'thorgym/ObjectNav-v1'} <= set(gymnasium.registry)\n"
        "bad = [m for m in ('torch', 'ai2thor') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("env_id", env_ids())
def test_registered_envs_pass_gymnasium_and_sb3_checkers(env_id):
    assert env_id in gym.registry
    kwargs = CHECK_KWARGS.get(env_id, {})
    env = gym.make(env_id, backend="sim", render_mode="rgb_array", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # checker warnings are failures
        gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)
    env.close()
    env.close()  # closing twice is safe


def test_make_and_spaces():
    env = gym.make("thorgym/ObjectNav-v0", backend="sim", **SMALL)
    obs, info = env.reset(seed=0)
    assert obs["rgb"].shape == (64, 64, 3) and obs["rgb"].dtype == np.uint8
    assert "depth" not in obs
    assert obs["target"] == on.TARGET_INDEX[info["target"]]
    assert obs["target_embedding"].shape == (50,) and obs["target_embedding"].dtype == np.float32
    assert env.observation_space.contains(obs)
    assert set(info) >= {
        "scene", "target", "success", "spl", "l_opt", "path_length", "backend_restart"
    }  # fmt: skip
    assert info["scene"] in SMALL["scenes"] and info["l_opt"] >= 2
    env.close()


def test_target_embedding_is_mean_of_word_vectors():
    from thorgym.datasets.objectnav_embeddings import embed_types

    e = embed_types(["Coffee", "Maker", "CoffeeMaker", "coffeemaker"])
    np.testing.assert_allclose(e[2], (e[0] + e[1]) / 2, rtol=1e-6)
    assert np.linalg.norm(e[2]) > 0


def test_same_seed_same_episode():
    acts = random_actions(40, seed=3)
    runs = []
    for _ in range(2):
        env = ObjectNavEnv(**SMALL)
        obs, info = env.reset(seed=11)
        trace = [(obs, info["target"], info["scene"])]
        for a in acts:
            obs, r, term, trunc, info = env.step(int(a))
            trace.append((obs, r, term, trunc))
            if term or trunc:
                obs, info = env.reset()
                trace.append((obs, info["target"], info["scene"]))
        runs.append(trace)
        env.close()
    assert len(runs[0]) == len(runs[1])
    for x, y in zip(*runs, strict=True):
        assert _obs_equal(x[0], y[0]) and x[1:] == y[1:]


def test_pickle_roundtrip():
    env = ObjectNavEnv(**SMALL, max_steps=7)
    obs, info = env.reset(seed=4)
    clone = pickle.loads(pickle.dumps(env))
    obs2, info2 = clone.reset(seed=4)
    assert _obs_equal(obs, obs2) and info == info2
    assert clone.max_steps == 7
    env.close()
    clone.close()


def test_done_without_target_terminates_with_penalty():
    env = ObjectNavEnv(**SMALL)
    obs, info = env.reset(seed=0)
    assert not env.target_visible  # L_opt ≥ 2: not visible at the start
    obs2, r, term, trunc, info = env.step(on.DONE)
    assert (r, term, trunc, info["success"], info["spl"]) == (-0.01, True, False, False, 0.0)
    assert info["path_length"] == 1
    assert _obs_equal(obs, obs2)  # Done does not change the state
    env.close()


def test_horizon_stays_in_0_30():
    env = ObjectNavEnv(**SMALL)
    obs, _ = env.reset(seed=1)
    obs_up, r, term, trunc, info = env.step(on.LOOK_UP)  # at 0: fails, nothing changes
    assert not info["last_action_success"] and r == -0.01 and not (term or trunc)
    assert _obs_equal(obs, obs_up) and env.path[-1][3] == 0.0
    _, _, _, _, info = env.step(on.LOOK_DOWN)
    assert info["last_action_success"] and env.path[-1][3] == 30.0
    _, _, _, _, info = env.step(on.LOOK_DOWN)  # at 30: fails
    assert not info["last_action_success"] and env.path[-1][3] == 30.0
    _, _, _, _, info = env.step(on.LOOK_UP)
    assert info["last_action_success"] and env.path[-1][3] == 0.0
    env.close()


def test_step_limit_truncates():
    env = ObjectNavEnv(**SMALL, max_steps=3)
    env.reset(seed=2)
    ends = [env.step(on.ROTATE_RIGHT)[2:4] for _ in range(3)]
    assert ends == [(False, False), (False, False), (False, True)]
    env.close()


def test_oracle_reaches_target_with_spl_one():
    env = ObjectNavEnv(**SMALL)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        total, steps = 0.0, 0
        while True:
            obs, r, term, trunc, info = env.step(oracle_action(env))
            total += r
            steps += 1
            if term or trunc:
                break
        assert term and not trunc
        assert info["success"] and r == on.SUCCESS_REWARD
        assert steps == info["l_opt"] == info["path_length"]
        assert info["spl"] == pytest.approx(1.0)
        assert total == pytest.approx(5.0 - 0.01 * (steps - 1))
    env.close()


def test_fixed_episodes_are_played_in_order():
    eps = [
        {"scene": "FloorPlan401", "target": "Sink", "position": {"x": x, "z": z},
         "rotation": 90.0, "horizon": 0.0}
        for x, z in [(0.0, 0.0), (0.25, 0.0)]
    ]  # fmt: skip
    graph = on.build_pose_graph("FloorPlan401")
    ok = [e for e in eps if graph.position_index(e["position"]["x"], e["position"]["z"]) is not None]
    assert ok, "pick positions that are reachable in FloorPlan401"
    env = ObjectNavEnv(**SMALL, episodes=ok)
    seen = []
    for _ in range(len(ok) + 1):
        _, info = env.reset()
        seen.append((env.episode.x, env.episode.z, info["l_opt"]))
    assert [s[:2] for s in seen] == [(e["position"]["x"], e["position"]["z"]) for e in ok] + [
        (ok[0]["position"]["x"], ok[0]["position"]["z"])
    ]
    assert all(s[2] == graph.l_opt(graph.pose(s[0], s[1], 90.0, 0.0), "Sink") for s in seen)
    env.close()


def test_shipped_episodes_load_into_env():
    env = ObjectNavEnv(width=64, height=64, episodes="val")
    assert len(env.fixed_episodes) == 1000
    _, info = env.reset(options={"episode_index": 999})
    assert info["scene"].startswith("FloorPlan42") and info["l_opt"] >= 2
    env.close()


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        ObjectNavEnv(backend="unity")
    with pytest.raises(ValueError, match="unknown scene"):
        ObjectNavEnv(scenes=["Kitchen1"])
    with pytest.raises(ValueError, match="render_mode"):
        ObjectNavEnv(render_mode="human")
    env = ObjectNavEnv(**SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(6)
    env.close()


def test_thorgym_version():
    assert thorgym.__version__


def test_v1_starts_anywhere_reachable_v0_never_sees_the_target():
    seen = {"v0": [], "v1": []}
    for version in seen:
        env = gym.make(f"thorgym/ObjectNav-{version}", **SMALL)
        for s in range(40):
            _, info = env.reset(seed=s)
            seen[version].append(info["l_opt"])
        env.close()
    assert min(seen["v0"]) >= 2
    assert min(seen["v1"]) >= 1 and 1 in seen["v1"]  # some SAVN-protocol starts already see it


def test_cached_make_vec_is_registered():
    venv = gym.make_vec(
        "thorgym/ObjectNav-v1",
        num_envs=2,
        scenes=SMALL["scenes"],
        cached=True,
        features_fn=lambda scene: np.zeros((on.build_pose_graph(scene).num_poses, 4)),
    )
    obs, info = venv.reset(seed=0)
    assert obs["features"].shape == (2, 4) and "rgb" not in obs
    venv.close()
