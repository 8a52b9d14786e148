"""``backend="ai2thor"``: the genuine ``ai2thor.controller.Controller`` started on ``thorgym-thor``
(our FIFO server on the built-in simulator), and the backend's error messages.

Nothing here is skipped: a missing ``thorgym-thor`` or ``ai2thor`` package fails with a message
saying what to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import thorgym  # noqa: F401
from thorgym.datasets.objectnav import load_episodes
from thorgym.envs.backends import AI2ThorBackend, BackendUnavailable
from thorgym.envs.objectnav import ObjectNavEnv
from thorgym.tasks import objectnav as on

W = H = 64


def thorgym_thor() -> str:
    found = shutil.which("thorgym-thor")
    if found:
        return found
    candidate = Path(sys.executable).parent / "thorgym-thor"
    if candidate.is_file():
        return str(candidate)
    pytest.fail(
        "thorgym-thor is not installed (neither on PATH nor next to the Python interpreter): "
        "pip install -e '.[dev]' installs the console script and the ai2thor client"
    )


def _episodes(n: int = 3) -> list[dict]:
    return load_episodes("val", room_types=["bathroom"])[:n]


def _env(**kw) -> ObjectNavEnv:
    try:
        import ai2thor  # noqa: F401
    except ImportError:
        pytest.fail("the ai2thor client is not installed: pip install 'thorgym[ai2thor]'")
    kw.setdefault("episodes", _episodes())
    env = gym.make(
        "thorgym/ObjectNav-v0",
        backend="ai2thor",
        width=W,
        height=H,
        render_mode="rgb_array",
        controller_kwargs={"local_executable_path": thorgym_thor()},
        **kw,
    )
    return env.unwrapped


@pytest.fixture(scope="module")
def thor_env():
    env = _env(timeout=20.0)
    yield env
    env.close()


def test_checkers_pass_on_ai2thor_backend(thor_env):
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        gym_check_env(thor_env, skip_render_check=False)
    sb3_check_env(thor_env, warn=True)


def test_ai2thor_backend_matches_sim_backend(thor_env):
    """Same episode and actions through the genuine client → the same observations."""
    sim_env = ObjectNavEnv(width=W, height=H, episodes=_episodes())
    acts = [on.MOVE_AHEAD, on.ROTATE_RIGHT, on.LOOK_UP, on.LOOK_DOWN, on.MOVE_AHEAD, on.DONE]
    for idx in (0, 1):
        a_obs, a_info = thor_env.reset(options={"episode_index": idx})
        s_obs, s_info = sim_env.reset(options={"episode_index": idx})
        assert a_info == s_info
        np.testing.assert_array_equal(a_obs["rgb"], s_obs["rgb"])
        for a in acts:
            a_obs, a_r, a_te, a_tr, a_info = thor_env.step(a)
            s_obs, s_r, s_te, s_tr, s_info = sim_env.step(a)
            np.testing.assert_array_equal(a_obs["rgb"], s_obs["rgb"])
            assert (a_r, a_te, a_tr) == (s_r, s_te, s_tr)
            assert a_info == s_info
            assert thor_env.path[-1] == pytest.approx(sim_env.path[-1])
    sim_env.close()


def test_dead_backend_is_restarted_and_episode_truncated(thor_env):
    thor_env.reset(options={"episode_index": 0})
    thor_env.step(on.ROTATE_LEFT)
    pid = thor_env.backend.pid
    assert pid
    os.kill(pid, signal.SIGKILL)
    obs, r, term, trunc, info = thor_env.step(on.MOVE_AHEAD)
    assert trunc and not term and info["backend_restart"] and r == 0.0
    assert thor_env.backend.pid not in (None, pid)
    obs, info = thor_env.reset(options={"episode_index": 1})
    assert not info["backend_restart"]
    _, _, term, trunc, info = thor_env.step(on.ROTATE_LEFT)
    assert not (term or trunc) and info["last_action_success"]
    os.kill(thor_env.backend.pid, signal.SIGKILL)  # dies between episodes: reset restarts it
    obs, info = thor_env.reset(options={"episode_index": 0})
    assert info["backend_restart"] and info["path_length"] == 0
    _, _, term, trunc, info = thor_env.step(on.ROTATE_LEFT)
    assert not (term or trunc or info["backend_restart"])


@pytest.mark.slow
def test_silent_backend_times_out_and_is_restarted():
    env = _env(timeout=2.0)
    env.reset(options={"episode_index": 0})
    pid = env.backend.pid
    os.kill(pid, signal.SIGSTOP)  # alive but silent
    try:
        t0 = time.monotonic()
        _, _, term, trunc, info = env.step(on.MOVE_AHEAD)
        assert trunc and info["backend_restart"]
        assert time.monotonic() - t0 < 120
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        env.close()


@pytest.mark.slow
def test_sampled_episodes_on_ai2thor_use_the_controllers_pose_graph():
    """Without fixed episodes the pose graph is read through the controller; on thorgym-thor it
    must agree with the simulator's own (same visibility)."""
    env = _env(episodes=None, scenes=["FloorPlan401"], targets=["LightSwitch"], timeout=30.0)
    obs, info = env.reset(seed=0)
    g = env.backend.pose_graph("FloorPlan401")
    sim_g = on.build_pose_graph("FloorPlan401")
    for p in range(g.num_poses):
        x, z, r, h = g.pose_values(p)
        q = sim_g.pose(x, z, r, h)
        assert g.visibility("LightSwitch")[p] == sim_g.visibility("LightSwitch")[q]
    assert info["l_opt"] >= 2
    env.close()


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai2thor", None)
    monkeypatch.setitem(sys.modules, "ai2thor.controller", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'thorgym\[ai2thor\]'"):
        AI2ThorBackend()


def test_no_display_says_what_to_set(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.fail("this check is for Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(BackendUnavailable, match="x_display") as e:
        AI2ThorBackend()
    assert "thorgym-thor" in str(e.value)
    # thorgym-thor needs no display: the backend fills in the one the client insists on.
    be = AI2ThorBackend(controller_kwargs={"local_executable_path": thorgym_thor()})
    assert be.controller_kwargs["x_display"] == ":0"


def test_missing_executable_says_what_to_pass():
    with pytest.raises(BackendUnavailable, match="thorgym-thor"):
        AI2ThorBackend(controller_kwargs={"local_executable_path": "/nonexistent/thor"})


def test_make_vec_falls_back_to_async_for_ai2thor():
    venv = gym.make_vec(
        "thorgym/ObjectNav-v0",
        num_envs=1,
        backend="ai2thor",
        width=W,
        height=H,
        episodes=_episodes(1),
        controller_kwargs={"local_executable_path": thorgym_thor()},
    )
    try:
        assert isinstance(venv, gym.vector.AsyncVectorEnv)
        obs, info = venv.reset(seed=0)
        assert obs["rgb"].shape == (1, H, W, 3)
        obs, r, term, trunc, info = venv.step(np.array([on.ROTATE_LEFT]))
        assert r.shape == (1,) and not term[0]
    finally:
        venv.close()
