"""The batched ObjectNav vector env: equal to N single envs, autoreset modes, SB3 adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from objectnav_helpers import SMALL, random_actions

import thorgym  # noqa: F401
from thorgym.envs.objectnav import ObjectNavEnv
from thorgym.envs.task_env import TaskVectorEnv
from thorgym.envs.vector import ObjectNavVectorEnv
from thorgym.tasks import objectnav as on

N = 3
T = 32


def test_make_vec_returns_native_batched_env():
    venv = gym.make_vec("thorgym/ObjectNav-v0", num_envs=2, **SMALL)
    assert isinstance(venv, TaskVectorEnv) and isinstance(venv, VectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = venv.reset(seed=0)
    assert obs["rgb"].shape == (2, 64, 64, 3) and obs["rgb"].dtype == np.uint8
    assert obs["target"].shape == (2,) and obs["target_embedding"].shape == (2, 50)
    assert venv.observation_space.contains(obs)
    assert info["scene"].shape == (2,) and info["_scene"].all()
    venv.close()
    venv.close()


def test_vector_env_equals_single_envs_next_step():
    acts = np.stack([random_actions(T, seed=10 + i) for i in range(N)], 1)
    venv = ObjectNavVectorEnv(N, **SMALL, max_steps=9)
    singles = [ObjectNavEnv(**SMALL, max_steps=9) for _ in range(N)]
    vobs, vinfo = venv.reset(seed=7)
    pending = [False] * N
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=7 + i)
        for k in obs:
            np.testing.assert_array_equal(vobs[k][i], obs[k])
        assert vinfo["target"][i] == info["target"] and vinfo["l_opt"][i] == info["l_opt"]
    ended_any = 0
    for t in range(T):
        vobs, vr, vterm, vtrunc, vinfo = venv.step(acts[t])
        for i, env in enumerate(singles):
            if pending[i]:  # NEXT_STEP: this step resets the sub-environment
                obs, info = env.reset()
                r, term, trunc = 0.0, False, False
                pending[i] = False
            else:
                obs, r, term, trunc, info = env.step(int(acts[t, i]))
                pending[i] = term or trunc
                ended_any += term or trunc
            for k in obs:
                np.testing.assert_array_equal(vobs[k][i], obs[k], err_msg=f"t={t} env={i} {k}")
            assert vr[i] == pytest.approx(r) and vterm[i] == term and vtrunc[i] == trunc
            for key in ("scene", "target", "success", "l_opt", "path_length"):
                assert vinfo[key][i] == info[key], (t, i, key)
            assert vinfo["spl"][i] == pytest.approx(info["spl"])
    assert ended_any >= 3  # the run crossed several episode boundaries
    venv.close()
    for env in singles:
        env.close()


def test_same_step_autoreset_returns_final_obs():
    venv = ObjectNavVectorEnv(2, **SMALL, max_steps=3, autoreset_mode=AutoresetMode.SAME_STEP)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=1)
    before = {k: v.copy() for k, v in obs.items()}
    # env 0: Done (terminates), env 1: turn (continues)
    obs, r, term, trunc, info = venv.step(np.array([on.DONE, on.ROTATE_LEFT]))
    assert term.tolist() == [True, False] and not trunc.any()
    assert info["_final_obs"].tolist() == [True, False]
    for k in before:  # Done changes nothing: the final observation is the previous one
        np.testing.assert_array_equal(info["final_obs"][0][k], before[k][0])
    assert info["final_info"]["path_length"][0] == 1 and info["path_length"][0] == 0
    # env 1 reaches its step limit (3) two steps later and restarts in the same step
    venv.step(np.array([on.ROTATE_LEFT, on.ROTATE_LEFT]))
    obs, r, term, trunc, info = venv.step(np.array([on.ROTATE_LEFT, on.ROTATE_LEFT]))
    assert trunc.tolist() == [False, True]
    assert info["final_info"]["path_length"][1] == 3 and info["path_length"][1] == 0
    assert info["final_obs"][1]["rgb"].shape == (64, 64, 3)
    venv.close()


def test_reset_mask_resets_only_selected():
    venv = ObjectNavVectorEnv(2, **SMALL)
    venv.reset(seed=3)
    venv.step(np.array([on.ROTATE_LEFT, on.ROTATE_LEFT]))
    before = venv.episodes
    _, info = venv.reset(options={"reset_mask": np.array([False, True])})
    assert venv.episodes[0] == before[0]
    assert info["path_length"].tolist() == [1, 0]
    venv.close()


def test_sb3_adapter_with_ppo():
    from stable_baselines3 import PPO

    from thorgym.envs.sb3 import SB3VecEnv

    venv = SB3VecEnv.make("thorgym/ObjectNav-v0", num_envs=2, **SMALL, max_steps=5)
    venv.seed(0)
    obs = venv.reset()
    assert obs["rgb"].shape == (2, 64, 64, 3)
    saw_end = False
    for _ in range(6):
        obs, rewards, dones, infos = venv.step(np.array([on.ROTATE_LEFT, on.MOVE_AHEAD]))
        assert isinstance(infos, list) and len(infos) == 2 and rewards.dtype == np.float32
        for d, info in zip(dones, infos, strict=True):
            if d:
                saw_end = True
                assert info["terminal_observation"]["rgb"].shape == (64, 64, 3)
                assert info["TimeLimit.truncated"] is True
                assert info["path_length"] == 5
    assert saw_end
    model = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0)
    model.learn(total_timesteps=16)
    venv.close()


def test_sb3_adapter_requires_same_step():
    from thorgym.envs.sb3 import SB3VecEnv

    venv = ObjectNavVectorEnv(1, **SMALL)
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(venv)
    venv.close()


def test_vector_env_bad_arguments():
    with pytest.raises(ValueError, match="ai2thor"):
        ObjectNavVectorEnv(2, backend="ai2thor")
    with pytest.raises(ValueError, match="autoreset_mode"):
        ObjectNavVectorEnv(1, **SMALL, autoreset_mode=AutoresetMode.DISABLED)
    venv = ObjectNavVectorEnv(2, **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros(2, dtype=int))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        venv.step(np.array([0, 9]))
    venv.close()
