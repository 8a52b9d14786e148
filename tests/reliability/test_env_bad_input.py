"""Bad input at the environments (#16): actions outside the space, step before reset, seeds of
every type Gymnasium allows, unknown options. Each gets a clear error and leaves the env usable."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import thorgym  # noqa: F401

ENVS = {
    "thorgym/ObjectNav-v1": {"width": 32, "height": 32},
    "thorgym/IQA-v0": {"split": "unseen", "width": 32, "height": 32},
}


@pytest.fixture(params=sorted(ENVS), scope="module")
def env(request):
    e = gym.make(request.param, **ENVS[request.param]).unwrapped
    yield e
    e.close()


def test_step_before_reset_is_a_clear_error(env):
    e = gym.make(env.spec.id, **ENVS[env.spec.id]).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        e.step(0)
    e.close()


@pytest.mark.parametrize("action", [-1, 10**6, 1.5, "MoveAhead", None, np.array([0, 1]), float("nan")])
def test_actions_outside_the_space_raise_and_change_nothing(env, action):
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)
    obs2, *_ = env.step(0)  # still usable afterwards
    assert env.observation_space.contains(obs2)


@pytest.mark.parametrize("seed", [None, 0, 7, 2**63 - 1])
def test_every_seed_type_gymnasium_allows(env, seed):
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", np.int64(5)])  # Gymnasium takes python ints only
def test_bad_seeds_are_rejected(env, seed):
    with pytest.raises(Exception, match="[Ss]eed"):
        env.reset(seed=seed)


def test_same_seed_same_episode(env):
    a, _ = env.reset(seed=123)
    b, _ = env.reset(seed=123)
    assert all(np.array_equal(a[k], b[k]) for k in a)
