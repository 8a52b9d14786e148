"""Small vector environments with PPO's observation layout, for tests and throughput runs.

* :class:`CueMemoryEnv`: the rewarded action depends on the target and on a cue shown only at
  the first step of the episode, so a policy without memory cannot beat 50 %.
* :class:`SyntheticPoseEnv`: a cached-ObjectNav stand-in (a random pose graph, a table of
  fp16 per-pose features, targets visible from random poses), cheap enough to time the trainer.

Both follow gymnasium's NEXT_STEP autoreset: the step after an episode ended ignores its
action, returns reward 0 and the first observation of a new episode.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

__all__ = ["CueMemoryEnv", "SyntheticPoseEnv"]


class _NextStepVectorEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def _setup(self, num_envs: int, obs_space: gym.spaces.Dict, num_actions: int) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = num_envs
        self.single_observation_space = obs_space
        self.single_action_space = gym.spaces.Discrete(num_actions)
        self.observation_space = batch_space(obs_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.rng = np.random.default_rng()
        self.needs_reset = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._start(np.ones(self.num_envs, dtype=bool))
        self.needs_reset[:] = False
        return self._observe(), {}

    def _start(self, mask: np.ndarray) -> None:
        raise NotImplementedError

    def _observe(self) -> dict[str, np.ndarray]:
        raise NotImplementedError


class CueMemoryEnv(_NextStepVectorEnv):
    """Episodes of ``length`` steps. Step 0 shows a cue c ∈ {0, 1} in ``features``; the last
    step pays 1 when the action is ``2 * target + c`` (4 actions, targets ∈ {0, 1}) and ends
    the episode. Chance: 0.25; best without memory: 0.5; best: 1."""

    def __init__(self, num_envs: int, length: int = 3) -> None:
        if length < 2:
            raise ValueError(f"length must be >= 2 (the cue comes before the decision), got {length}")
        self.length = length
        self.dim = 2 + length
        space = gym.spaces.Dict(
            {
                "features": gym.spaces.Box(-1.0, 1.0, (self.dim,), np.float32),
                "target": gym.spaces.Discrete(2),
            }
        )
        self._setup(num_envs, space, 4)
        self.cue = np.zeros(num_envs, dtype=np.int64)
        self.target = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)

    def _start(self, mask: np.ndarray) -> None:
        k = int(mask.sum())
        self.cue[mask] = self.rng.integers(0, 2, k)
        self.target[mask] = self.rng.integers(0, 2, k)
        self.t[mask] = 0

    def _observe(self) -> dict[str, np.ndarray]:
        f = np.zeros((self.num_envs, self.dim), dtype=np.float32)
        first = self.t == 0
        f[first, self.cue[first]] = 1.0
        f[np.arange(self.num_envs), 2 + np.minimum(self.t, self.length - 1)] = 1.0
        return {"features": f, "target": self.target.copy()}

    def step(self, actions):
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        resetting = self.needs_reset.copy()
        live = ~resetting
        last = live & (self.t == self.length - 1)
        reward = np.where(last & (a == 2 * self.target + self.cue), 1.0, 0.0)
        self.t[live] += 1
        self._start(resetting)
        self.needs_reset = last
        zeros = np.zeros(self.num_envs, dtype=bool)
        return self._observe(), reward, last, zeros, {}


class SyntheticPoseEnv(_NextStepVectorEnv):
    """Cached-ObjectNav stand-in: ``poses`` random poses with ``dim`` fp16 features each, a
    random transition table for the 5 moves, ``targets`` target types visible from ~5 % of the
    poses; Done (action 5) ends the episode (+5 when the target is visible), −0.01 per step,
    truncation after ``max_steps``. Infos carry ``success`` and ``spl`` (L_opt taken as 1)."""

    def __init__(self, num_envs: int, dim: int = 576, poses: int = 4096, targets: int = 20,
                 max_steps: int = 100, seed: int = 0) -> None:  # fmt: skip
        g = np.random.default_rng(seed)
        self.features = g.standard_normal((poses, dim)).astype(np.float16)
        self.next_pose = g.integers(0, poses, (poses, 5))
        self.visible = g.random((poses, targets)) < 0.05
        self.max_steps = max_steps
        space = gym.spaces.Dict(
            {
                "features": gym.spaces.Box(-np.inf, np.inf, (dim,), np.float16),
                "target": gym.spaces.Discrete(targets),
            }
        )
        self._setup(num_envs, space, 6)
        self.pose = np.zeros(num_envs, dtype=np.int64)
        self.target = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)

    def _start(self, mask: np.ndarray) -> None:
        k = int(mask.sum())
        self.pose[mask] = self.rng.integers(0, len(self.features), k)
        self.target[mask] = self.rng.integers(0, self.visible.shape[1], k)
        self.t[mask] = 0

    def _observe(self) -> dict[str, np.ndarray]:
        return {"features": self.features[self.pose], "target": self.target.copy()}

    def step(self, actions):
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        resetting = self.needs_reset.copy()
        live = ~resetting
        done = live & (a == 5)
        success = done & self.visible[self.pose, self.target]
        move = live & ~done
        self.pose[move] = self.next_pose[self.pose[move], a[move]]
        self.t[live] += 1
        trunc = live & ~done & (self.t >= self.max_steps)
        reward = np.where(success, 5.0, -0.01) * live
        self._start(resetting)
        self.needs_reset = done | trunc
        spl = np.where(success, 1.0 / np.maximum(self.t, 1), 0.0)
        info = {"success": success, "_success": done | trunc, "spl": spl, "_spl": done | trunc}
        return self._observe(), reward, done, trunc, info
