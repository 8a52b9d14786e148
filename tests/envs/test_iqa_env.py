"""``thorgym/IQA-v0``: checkers, rewards, the batched env against the single one, both backends."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import thorgym  # noqa: F401
from thorgym.datasets.iqa import shipped_questions
from thorgym.envs.iqa import IQAEnv, IQAVectorEnv
from thorgym.envs.task_env import TaskVectorEnv
from thorgym.tasks import iqa

S = 48


def thorgym_thor() -> str:
    found = shutil.which("thorgym-thor") or str(Path(sys.executable).parent / "thorgym-thor")
    if not Path(found).is_file():
        pytest.fail("thorgym-thor is not installed: pip install -e '.[dev]'")
    return found


def _questions(n: int = 6) -> list[iqa.Question]:
    qs = shipped_questions("unseen")
    by_type = {t: [q for q in qs if q.question_type == t][:2] for t in iqa.QUESTION_TYPES}
    return [q for t in iqa.QUESTION_TYPES for q in by_type[t]][:n]


def test_gymnasium_and_sb3_checkers_pass():
    env = gym.make("thorgym/IQA-v0", split="unseen", width=S, height=S, depth=True, classes=True)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(IQAEnv(split="unseen", width=S, height=S), warn=False)
    env.close()


def test_observation_and_info():
    env = IQAEnv(split="train", questions=_questions(), width=S, height=S, depth=True, classes=True)
    obs, info = env.reset(seed=0)
    assert (
        obs["rgb"].shape == (S, S, 3) and obs["depth"].shape == (S, S, 1) and obs["classes"].shape == (S, S)
    )
    assert obs["question_tokens"].shape == (16, 50) and np.abs(obs["question_tokens"][0]).sum() > 0
    assert obs["pose"][3] == iqa.START_HORIZON and obs["pose"][2] % 90 == 0
    assert env.observation_space.contains(obs)
    assert info["given_answer"] == -1 and info["episode_length"] == 0


def _play(env: IQAEnv, q: iqa.Question, actions: list[int]) -> list[tuple]:
    env.reset(options={"episode": q.to_dict()})
    out = []
    for a in actions:
        obs, r, te, tr, info = env.step(a)
        out.append((r, te, tr, info))
        if te or tr:
            break
    return out


def test_answer_rewards_follow_the_reference():
    env = IQAEnv(split="unseen", width=S, height=S)
    qs = shipped_questions("unseen")
    no = next(q for q in qs if q.question_type == "existence" and q.answer == 0)
    yes = next(q for q in qs if q.question_type == "existence" and q.answer == 1)
    (r, te, _, info), = _play(env, no, [iqa.ANSWER0])  # fmt: skip
    assert te and info["correct"] and info["evidence_seen"]
    assert r == pytest.approx((iqa.STEP_PENALTY + iqa.CORRECT_ANSWER) / 10)
    # a correct "yes" before the object was seen is not rewarded as correct
    env.reset(options={"episode": yes.to_dict()})
    if not env.task._evidence[0]:
        _, r, te, _, info = env.step(iqa.ANSWER0 + 1)
        assert te and info["correct"] and r == pytest.approx(-3.0)
    # Answer2 on a yes/no question is an invalid action: fails, episode goes on
    out = _play(env, no, [iqa.ANSWER0 + 3])
    r, te, _, info = out[0]
    assert not te and info["invalid_actions"] == 1 and not info["last_action_success"]
    assert r == pytest.approx((iqa.STEP_PENALTY + iqa.FAILED_ACTION) / 10, abs=0.2)


def test_look_limits_and_timeout():
    env = IQAEnv(split="unseen", width=S, height=S, max_steps=5)
    q = shipped_questions("unseen")[0]
    out = _play(env, q, [iqa.LOOK_DOWN, iqa.LOOK_DOWN, iqa.LOOK_DOWN, iqa.ROTATE_LEFT, iqa.ROTATE_LEFT])
    assert [o[3]["last_action_success"] for o in out[:3]] == [True, False, False]
    assert out[-1][2] and not out[-1][1]  # truncated at max_steps
    assert out[-1][0] <= (iqa.STEP_PENALTY + iqa.TIMEOUT) / 10 + 0.2


def test_open_and_close_at_the_image_centre_changes_the_world():
    env = IQAEnv(split="unseen", width=S, height=S)
    env.reset(options={"episode": shipped_questions("unseen")[0].to_dict()})
    sim = env.worlds.sim
    world = sim.worlds[0]
    fridge = next(o for o in world.objects if o.object_type == "Fridge")
    # stand in front of the fridge, facing it, camera level
    pts = np.asarray(world.spec.reachable)
    fx, fz = fridge.center[0], fridge.center[2]
    for x, z in sorted(pts.tolist(), key=lambda p: (p[0] - fx) ** 2 + (p[1] - fz) ** 2):
        for rot in (0.0, 90.0, 180.0, 270.0):
            env.worlds.teleport(0, x, z, rot, 0.0)
            hit = sim.object_at(0.5, 0.5)
            if int(hit.index[0]) == world.index[fridge.object_id] and int(hit.reason[0]) == 0:
                break
        else:
            continue
        break
    _, r, _, _, info = env.step(iqa.OPEN)
    assert info["last_action_success"] and world.is_open[fridge.object_id]
    _, r2, _, _, info = env.step(iqa.CLOSE)
    assert info["last_action_success"] and not world.is_open[fridge.object_id]
    _, _, _, _, info = env.step(iqa.CLOSE)  # already closed: fails
    assert not info["last_action_success"]


def test_vector_env_plays_what_single_envs_play():
    qs = _questions(4)
    venv = IQAVectorEnv(num_envs=2, split="train", questions=qs, width=S, height=S, sample=True)
    obs, _ = venv.reset(seed=3)
    singles = [IQAEnv(split="train", questions=qs, width=S, height=S, sample=True) for _ in range(2)]
    for i, e in enumerate(singles):
        e.reset(seed=3 + i)
    rng = np.random.default_rng(0)
    for _ in range(12):
        a = rng.integers(0, 7, size=2)
        obs, r, te, tr, _ = venv.step(a)
        for i, e in enumerate(singles):
            o, ri, tei, tri, _ = e.step(int(a[i]))
            assert np.array_equal(o["rgb"], obs["rgb"][i]) and ri == pytest.approx(r[i])
            assert (tei, tri) == (te[i], tr[i])
            if tei or tri:
                return


def test_make_vec_is_batched_and_unknown_options_fail():
    venv = gym.make_vec("thorgym/IQA-v0", num_envs=3, split="unseen", width=S, height=S)
    assert isinstance(venv, TaskVectorEnv) and venv.sim.num_worlds == 3
    obs, _ = venv.reset(seed=0)
    assert obs["rgb"].shape == (3, S, S, 3)
    venv.close()
    with pytest.raises(ValueError, match="generated on demand"):
        IQAEnv(split="train")
    with pytest.raises(ValueError, match="unknown backend"):
        IQAEnv(split="unseen", backend="unity")


def test_ai2thor_backend_through_the_genuine_client():
    env = IQAEnv(
        split="unseen", backend="ai2thor", width=S, height=S, classes=True,
        controller_kwargs={"local_executable_path": thorgym_thor(), "x_display": ":0"},
    )  # fmt: skip
    sim_env = IQAEnv(split="unseen", width=S, height=S, classes=True)
    try:
        q = shipped_questions("unseen")[1]
        o1, _ = env.reset(options={"episode": q.to_dict()})
        o2, _ = sim_env.reset(options={"episode": q.to_dict()})
        assert np.array_equal(o1["pose"], o2["pose"])  # same configuration and start
        for a in (iqa.ROTATE_LEFT, iqa.MOVE_AHEAD, iqa.OPEN, iqa.LOOK_UP):
            o1, r1, *_, i1 = env.step(a)
            o2, r2, *_, i2 = sim_env.step(a)
            assert i1["last_action_success"] == i2["last_action_success"]
            assert np.array_equal(o1["pose"], o2["pose"])
            assert r1 == pytest.approx(r2, abs=1e-6)
    finally:
        env.close()
        sim_env.close()


def test_semantic_map_observation_single_and_vector():
    qs = _questions(4)
    env = IQAEnv(split="train", questions=qs, width=S, height=S, semantic_map=True, sample=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    cov0 = int(obs["semantic_map"][23].sum())
    assert cov0 > 0 and obs["semantic_map"][22].sum() == 1  # seen cells; the agent's own cell visited
    obs, *_ = env.step(iqa.ROTATE_LEFT)
    assert int(obs["semantic_map"][23].sum()) >= cov0
    venv = IQAVectorEnv(num_envs=2, split="train", questions=qs, width=S, height=S, semantic_map=True,
                        sample=True, autoreset_mode="SameStep")  # fmt: skip
    vobs, _ = venv.reset(seed=1)
    assert venv.single_observation_space["semantic_map"].shape == (24, 64, 64)
    env.reset(seed=1)
    assert np.array_equal(vobs["semantic_map"][0], env.reset(seed=1)[0]["semantic_map"])
    vobs, *_ = venv.step(np.array([iqa.ANSWER0, iqa.ROTATE_LEFT]))  # env 0 ends and starts anew
    assert vobs["semantic_map"][0][22].sum() == 1
