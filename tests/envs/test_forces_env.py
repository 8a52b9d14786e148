"""thorgym/ForcePrediction-v0: spaces, rewards, live and stored samples, seeding, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import thorgym  # noqa: F401  (registers the ids)
from thorgym.tasks.forces import NUM_CLASSES, STEPS


@pytest.fixture
def shipped():
    env = gym.make("thorgym/ForcePrediction-v0", split="test", data="shipped")
    yield env
    env.close()


def test_shipped_samples_reward_whole_sequence_correctness(shipped):
    obs, info = shipped.reset(seed=3, options={"index": 5})
    assert obs["image"].shape == (64, 64, 3) and obs["mask"].shape == (64, 64, 1)
    assert set(np.unique(obs["mask"])) <= {0, 255} and obs["mask"].any()
    assert shipped.observation_space.contains(obs)
    from thorgym.datasets.forces import load_split

    truth = load_split(None, "test").labels[5]
    _, reward, terminated, truncated, info = shipped.step(truth)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] and info["per_step_accuracy"] == 1.0
    np.testing.assert_array_equal(info["labels"], truth)
    shipped.reset(options={"index": 5})
    wrong = truth.copy()
    wrong[0] = (wrong[0] + 1) % NUM_CLASSES
    _, reward, terminated, _, info = shipped.step(wrong)
    assert reward == 0.0 and terminated
    assert info["per_step_accuracy"] == pytest.approx((STEPS - 1) / STEPS)


def test_live_samples_are_seeded_and_come_from_the_split():
    env = gym.make("thorgym/ForcePrediction-v0", split="val", size=48)
    a, ia = env.reset(seed=11)
    b, ib = env.reset(seed=11)
    assert ia == ib
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert ia["scene"] in {f"FloorPlan{k}" for t in (0, 200, 300, 400) for k in range(t + 21, t + 26)}
    assert a["image"].shape == (48, 48, 3) and a["mask"].any()
    _, reward, terminated, _, info = env.step(env.action_space.sample())
    assert terminated and reward in (0.0, 1.0) and info["labels"].shape == (STEPS,)
    env.close()


def test_bad_input_is_named(shipped):
    with pytest.raises(RuntimeError, match="before reset"):
        shipped.unwrapped.step(np.zeros(STEPS, dtype=np.int64))
    shipped.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        shipped.unwrapped.step(np.full(STEPS, NUM_CLASSES))
    with pytest.raises(ValueError, match="action must be"):
        shipped.unwrapped.step(np.zeros(STEPS + 1, dtype=np.int64))
    with pytest.raises(ValueError, match="options\\['index'\\]"):
        shipped.reset(options={"index": 10_000})
    with pytest.raises(ValueError, match="unknown split"):
        gym.make("thorgym/ForcePrediction-v0", split="holdout")
    with pytest.raises(ValueError, match="backend must be 'sim'"):
        gym.make("thorgym/ForcePrediction-v0", backend="ai2thor")
    with pytest.raises(ValueError, match="only the test split ships"):
        gym.make("thorgym/ForcePrediction-v0", split="train", data="shipped")


# -- thorgym/ForcePush-v0 ---------------------------------------------------------------------
def _greedy(obs) -> np.ndarray:
    """Push towards the goal, softly when near: the controller a learner should match."""
    right, ahead = obs["goal"][:2]
    angle = np.degrees(np.arctan2(right, ahead)) % 360
    return np.array([int(round(angle / 45)) % 8, 1 if np.hypot(right, ahead) > 0.3 else 0])


def test_force_push_is_solvable_and_seeded():
    env = gym.make("thorgym/ForcePush-v0", split="val")
    wins, first = 0, None
    for ep in range(6):
        obs, info = env.reset(seed=ep)
        assert env.observation_space.contains(obs) and obs["mask"].any()
        if first is None:
            first = (obs, info)
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(_greedy(obs))
            done = terminated or truncated
        wins += info["success"]
        assert info["pushes"] <= 8
    assert wins >= 2  # the greedy controller reached 5 of 10 val episodes when measured
    again = env.reset(seed=0)
    assert again[1] == first[1] and all(np.array_equal(again[0][k], first[0][k]) for k in again[0])
    with pytest.raises(ValueError, match="action must be"):
        env.unwrapped.step(np.array([8, 0]))
    env.close()
