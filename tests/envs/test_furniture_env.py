"""FurnLift / FurnMove: PettingZoo and Gymnasium checkers, the rules on constructed situations,
the lifted Television moving with its carriers, joint-action failures, determinism, bad input,
the genuine ai2thor client (agentCount=2) and the shortest-path experts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import thorgym  # noqa: F401
from thorgym.datasets.furniture import load_episodes
from thorgym.envs.furniture import (
    FurnLiftEnv,
    FurnMoveEnv,
    furnlift_parallel_env,
    furnmove_parallel_env,
    make_furniture_vec,
)
from thorgym.tasks import furniture as fur
from thorgym.tasks import furniture_planning as plan

S = 48
SCENE = "FloorPlan226"


def _lift_situation(env: FurnLiftEnv, apart: bool, both_see: bool) -> dict:
    """An episode of SCENE with agents placed at pickup poses (or not) of the planner."""
    ep = load_episodes("furnlift", "test")[0]
    tv = tuple(ep["tv"])
    tv_id = env.task.worlds.object_ids(0, fur.TELEVISION) if env.task.worlds else None
    planner = plan.LiftPlanner(
        ep["scene"], tv, tv_id=tv_id[0], visibility_distance=fur.VISIBILITY_DISTANCE,
        field_of_view=fur.FIELD_OF_VIEW, min_apart=fur.MIN_APART, tv_height=float(fur.TV_SIZE[1]),
    )  # fmt: skip
    good = planner.good_nodes
    pos = planner.graph.positions
    xy = pos[good // 4]
    steps = np.abs(xy[:, None] - xy[None]).sum(-1) / fur.GRID_SIZE
    if apart:
        a, b = np.argwhere(steps >= fur.MIN_APART)[0]
    else:
        a, b = np.argwhere((steps >= 1) & (steps < fur.MIN_APART))[0]
    na, nb = int(good[a]), int(good[b])
    if not both_see:  # agent 1 turns away: a heading from which it does not see the TV
        k = nb // 4
        for h in range(4):
            if k * 4 + h not in set(good.tolist()):
                nb = k * 4 + h
                break
    agents = [[float(pos[n // 4][0]), float(pos[n // 4][1]), 90.0 * (n % 4)] for n in (na, nb)]
    return {"scene": ep["scene"], "tv": list(tv), "agents": agents}


def test_pettingzoo_parallel_api_test_passes():
    for make in (furnlift_parallel_env, furnmove_parallel_env):
        env = make(split="test", width=S, height=S, max_steps=20)
        parallel_api_test(env, num_cycles=30)
        assert env.observation_space("agent_0") is env.observation_space("agent_0")  # cached
        env.close()


def test_gymnasium_checker_passes_and_registration():
    for cls in (FurnLiftEnv, FurnMoveEnv):
        env = cls(split="test", width=S, height=S, max_steps=20)
        check_env(env, skip_render_check=True)
        env.close()
    env = gym.make("thorgym/FurnLift-v0", split="test", width=S, height=S)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"agent_0", "agent_1"} and obs["agent_0"]["rgb"].shape == (S, S, 3)
    env.close()


def test_pickup_succeeds_only_together_visible_and_apart():
    env = FurnLiftEnv(split="test", width=S, height=S)
    env.reset(seed=0)
    ok_ep = _lift_situation(env, apart=True, both_see=True)
    env.reset(options={"episode": ok_ep})
    both = {"agent_0": fur.PICKUP, "agent_1": fur.PICKUP}
    # One agent alone: a wrong pickup for it (−0.13), a step for the other; the episode goes on.
    _, r, term, _, info = env.step({"agent_0": fur.PICKUP, "agent_1": fur.PASS})
    assert not term and info["agent_rewards"] == pytest.approx([-0.13, -0.01])
    assert info["failed_pickups"] == 1 and info["missed_pickups"] == 1
    _, r, term, _, info = env.step(both)
    assert term and info["success"] and info["agent_rewards"] == pytest.approx([0.99, 0.99])
    for apart, see in ((False, True), (True, False)):
        env.reset(options={"episode": _lift_situation(env, apart=apart, both_see=see)})
        _, r, term, _, info = env.step(both)
        assert not term and not info["success"]
        assert info["agent_rewards"] == pytest.approx([-0.13, -0.13])
    env.close()


def test_lifted_television_moves_with_both_agents_and_mismatches_fail():
    env = FurnMoveEnv(split="test", width=S, height=S)
    env.reset(seed=0)
    ep = load_episodes("furnmove", "test")[0]
    env.reset(options={"episode": ep})
    task, worlds = env.task, env.task.worlds
    # The expert's first joint action is a group move or a rotation; it must work.
    act = int(env.expert_action()["agent_0"])
    tv0 = worlds.object_poses_by_id(0, task.tv_ids[0])
    poses0 = worlds.poses()[0]
    _, _, _, _, info = env.step({"agent_0": act, "agent_1": act})
    tv1 = worlds.object_poses_by_id(0, task.tv_ids[0])
    poses1 = worlds.poses()[0]
    if act in fur.GROUP_MOVES:
        d = tv1[[0, 2]] - tv0[[0, 2]]
        assert np.abs(d).sum() == pytest.approx(fur.GRID_SIZE)
        np.testing.assert_allclose(poses1[:, :2] - poses0[:, :2], [d, d], atol=1e-5)
        assert tv1[1] == pytest.approx(fur.LIFT_HEIGHT)
    assert info["failed_actions"] == 0
    # A mismatched pair (a joint action and an individual one) fails for both, changes nothing.
    before = (worlds.object_poses_by_id(0, task.tv_ids[0]), worlds.poses()[0].copy())
    _, _, _, _, info = env.step({"agent_0": fur.GROUP_MOVES.start, "agent_1": fur.PASS})
    assert info["agent_rewards"] == pytest.approx([-0.03, -0.03]) and info["mismatched"] == 1
    np.testing.assert_array_equal(before[0], worlds.object_poses_by_id(0, task.tv_ids[0]))
    np.testing.assert_array_equal(before[1], worlds.poses()[0])
    env.close()


def test_vector_env_matches_single_envs_and_is_deterministic():
    n = 3
    vec = make_furniture_vec(n, "furnmove", split="test", width=S, height=S)
    singles = [FurnMoveEnv(split="test", width=S, height=S) for _ in range(n)]
    obs, _ = vec.reset(seed=3)
    rng = np.random.default_rng(0)
    s_obs = [e.reset(options={"episode_index": i})[0] for i, e in enumerate(singles)]
    for i in range(n):
        np.testing.assert_array_equal(obs["agent_1"]["rgb"][i], s_obs[i]["agent_1"]["rgb"])
    for _ in range(6):
        acts = rng.integers(13, size=(n, 2))
        obs, rew, *_ = vec.step({"agent_0": acts[:, 0], "agent_1": acts[:, 1]})
        for i, e in enumerate(singles):
            o, r, *_ = e.step({"agent_0": acts[i, 0], "agent_1": acts[i, 1]})
            np.testing.assert_array_equal(obs["agent_0"]["rgb"][i], o["agent_0"]["rgb"])
            assert rew[i] == pytest.approx(r)
    vec.close()
    for e in singles:
        e.close()
    # Sampled (train) episodes: the same seed gives the same episodes.
    a = make_furniture_vec(2, "furnlift", width=S, height=S)
    b = make_furniture_vec(2, "furnlift", width=S, height=S)
    a.reset(seed=11)
    b.reset(seed=11)
    assert [e.to_dict() for e in a.task.episodes] == [e.to_dict() for e in b.task.episodes]
    a.close()
    b.close()


def test_bad_input_names_the_problem():
    env = furnlift_parallel_env(split="test", width=S, height=S)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"agent_0": 0, "agent_1": 0})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown agent id"):
        env.step({"agent_0": 0, "agent_7": 0})
    with pytest.raises(ValueError, match="no action for agent"):
        env.step({"agent_0": 0})
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        env.step({"agent_0": 9, "agent_1": 0})
    with pytest.raises(ValueError, match="unknown agent id"):
        env.action_space("agent_9")
    env.close()
    vec = make_furniture_vec(2, "furnlift", split="test", width=S, height=S)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        vec.step(np.zeros((2, 3), dtype=np.int64))
    vec.close()
    with pytest.raises(ValueError, match="living rooms"):
        FurnLiftEnv(split="train", width=S, height=S).reset(options={"scene": "FloorPlan1"})
    with pytest.raises(ValueError, match="unknown split"):
        FurnLiftEnv(split="nope")


def test_experts_solve_shipped_episodes():
    for task in ("furnlift", "furnmove"):
        vec = make_furniture_vec(4, task, split="test", width=32, height=32)
        vec.reset(seed=0)
        done = np.zeros(4, dtype=bool)
        success = np.zeros(4, dtype=bool)
        for _ in range(fur.MAX_STEPS):
            _, _, term, trunc, info = vec.step(vec.expert_actions())
            success |= term & ~done
            done |= term | trunc
            if done.all():
                break
        assert success.all(), task
        vec.close()


def _thorgym_thor() -> str:
    found = shutil.which("thorgym-thor") or str(Path(sys.executable).parent / "thorgym-thor")
    if not Path(found).is_file():
        pytest.fail("thorgym-thor is not installed: pip install -e '.[dev]'")
    return found


@pytest.mark.parametrize("cls", [FurnLiftEnv, FurnMoveEnv])
def test_ai2thor_backend_through_the_genuine_client_matches_sim(cls):
    kw = {"local_executable_path": _thorgym_thor(), "x_display": ":0"}
    env = cls(split="test", backend="ai2thor", width=S, height=S, controller_kwargs=kw)
    sim_env = cls(split="test", width=S, height=S)
    try:
        o1, _ = env.reset(seed=0)
        o2, _ = sim_env.reset(seed=0)
        np.testing.assert_array_equal(o1["agent_1"]["rgb"], o2["agent_1"]["rgb"])
        for _ in range(6):
            act = sim_env.expert_action()
            o1, r1, t1, _, i1 = env.step(act)
            o2, r2, t2, _, i2 = sim_env.step(act)
            assert r1 == pytest.approx(r2) and t1 == t2
            np.testing.assert_array_equal(o1["agent_0"]["rgb"], o2["agent_0"]["rgb"])
            if t1:
                break
    finally:
        env.close()
        sim_env.close()


def test_top_down_map_observation():
    env = furnmove_parallel_env(split="test", width=S, height=S, top_down_map=True)
    obs, _ = env.reset(seed=0)
    m0 = obs["agent_0"]["map"]
    assert m0.shape == (S, S, len(fur.MAP_CHANNELS)) and m0.dtype == np.uint8
    assert env.observation_space("agent_0")["map"].contains(m0)
    c = S // 2
    for a in ("agent_0", "agent_1"):  # egocentric: each agent at the centre of its own map
        m = obs[a]["map"]
        assert m[c, c, 2] == 255 and not m[0, 0, 2] and m[..., 0].any()
        assert m[c - 8 : c + 8, c - 8 : c + 8, 1].any()  # it holds the Television, within 0.76 m
    env.close()


def test_egocentric_map_turns_with_the_agent():
    layout = {"bounds": (-3.0, -3.0, 3.0, 3.0), "walls": [], "objects": []}
    m = fur.TopDownMap(layout, (64, 64))
    img = m.base.copy()
    m.rect(img, 1, 0.9, -0.1, 1.1, 0.1)  # a mark 1 m along +x of the origin
    for yaw, (row, col) in ((0, (32, 42)), (90, (22, 32)), (180, (32, 22)), (270, (42, 32))):
        ego = m.egocentric(img, 0.0, 0.0, yaw, (64, 64))[..., 1]
        rows, cols = np.nonzero(ego)
        assert abs(rows.mean() - row) <= 1.5 and abs(cols.mean() - col) <= 1.5, yaw
