"""Generic adapters for multi-agent tasks: a PettingZoo ``ParallelEnv``, a Gymnasium env with a
joint (dict) action, and a batched Gymnasium ``VectorEnv``.

A multi-agent task (``thorgym.tasks``, e.g. FurnLift) holds its rules batched over N worlds of
A agents: ``agent_ids``, per-agent ``observation_space`` / ``action_space``, ``step(actions (N,
A), live (N,))`` returning per-agent rewards (N, A) and per-world ends, ``observe()`` returning
arrays (N, A, …). The three adapters drive the same task calls; the single-world ones are N = 1
of the same code path, so all three play identical episodes for the same seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from pettingzoo import ParallelEnv

from .task_env import EpisodeSource, SubEnvStarts
from .task_env import autoreset_mode as _autoreset_mode

__all__ = ["MultiAgentTaskEnv", "MultiAgentTaskVectorEnv", "TaskParallelEnv", "joint_actions"]


def joint_actions(task: Any, actions: Any, num_worlds: int) -> np.ndarray:
    """(N, A) int64 actions from a dict {agent id: (N,) or int} or an (N, A) array; a clear
    ValueError for unknown agent ids, missing agents, wrong shapes or values out of range."""
    ids = tuple(task.agent_ids)
    k = task.action_space.n
    if isinstance(actions, Mapping):
        unknown = [a for a in actions if a not in ids]
        if unknown:
            raise ValueError(f"unknown agent id(s) {unknown}: the agents are {list(ids)}")
        missing = [a for a in ids if a not in actions]
        if missing:
            raise ValueError(f"no action for agent(s) {missing}: give one per agent {list(ids)}")
        cols = []
        for a in ids:
            v = np.asarray(actions[a])
            if v.shape not in ((), (num_worlds,)) or (num_worlds != 1 and v.shape == ()):
                raise ValueError(f"action of {a} must have shape ({num_worlds},), got {v.shape}")
            cols.append(v.reshape(-1))
        arr = np.stack(cols, -1)
    else:
        arr = np.asarray(actions)
        if arr.shape != (num_worlds, len(ids)):
            raise ValueError(
                f"actions must be a dict {{agent id: action}} or an array of shape ({num_worlds}, "
                f"{len(ids)}), got shape {arr.shape}"
            )
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.all(np.mod(arr, 1) == 0)):
        raise ValueError(f"actions must be integers in [0, {k}), got {actions!r}")
    arr = arr.astype(np.int64)
    if (arr < 0).any() or (arr >= k).any():
        raise ValueError(f"actions must be integers in [0, {k}) ({task.action_names}), got {arr.tolist()}")
    return arr


def _per_agent(obs: Mapping[str, np.ndarray], ids: Sequence[str], world: int | None) -> dict[str, Any]:
    """{agent id: {sensor: array}} from task observations (N, A, …) for one world or all (N, …)."""
    out = {}
    for a, aid in enumerate(ids):
        out[aid] = {k: (v[world, a] if world is not None else v[:, a]) for k, v in obs.items()}
    return out


def side_by_side(obs: Mapping[str, np.ndarray] | None, world: int) -> np.ndarray | None:
    """The agents' RGB views of one world next to each other (None without RGB)."""
    if obs is None or "rgb" not in obs:
        return None
    return np.concatenate(list(obs["rgb"][world]), axis=1)


class _Single:
    """One world of a multi-agent task: reset, step and bookkeeping shared by the single-world
    Gymnasium env and the PettingZoo env."""

    def __init__(self, task: Any, worlds: Any, episodes: Sequence[Any] | None) -> None:
        if worlds.num_worlds != 1:
            raise ValueError(f"a single environment drives one world, got {worlds.num_worlds}")
        self.task, self.worlds = task, worlds
        task.bind(worlds)
        self.source = EpisodeSource(task, 1, episodes)
        self.started = False
        self.ended = False

    def reset(
        self, rng: np.random.Generator, seeded: bool, options: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        if seeded:
            self.source.restart(0)
        self.task.begin(0, self.source.next(0, rng, dict(options)))
        self.started, self.ended = True, False
        return self.task.observe()

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], Any]:
        if not self.started:
            raise RuntimeError("call reset() before step()")
        if self.ended:
            raise RuntimeError("the episode has ended: call reset() before step()")
        acts = joint_actions(self.task, actions, 1)
        out = self.task.step(acts, np.ones(1, dtype=bool))
        self.ended = bool(out.terminated[0] or out.truncated[0])
        return self.task.observe(), out

    def info(self) -> dict[str, Any]:
        return {
            k: (v[0].item() if isinstance(v[0], np.generic) else v[0]) for k, v in self.task.info().items()
        }


class MultiAgentTaskEnv(gym.Env):
    """A multi-agent task on one world as a Gymnasium env: the observation is a dict {agent id:
    that agent's observation}, the action a dict {agent id: action}; the reward is the team's
    (the sum of the agents' rewards, each in ``info["agent_rewards"]``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self, task: Any, worlds: Any, episodes: Sequence[Any] | None = None, render_mode: str | None = None
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.core = _Single(task, worlds, episodes)
        self.task, self.worlds = task, worlds
        self.render_mode = render_mode
        ids = tuple(task.agent_ids)
        self.observation_space = spaces.Dict({a: task.observation_space for a in ids})
        self.action_space = spaces.Dict({a: task.action_space for a in ids})
        self._obs: dict[str, np.ndarray] | None = None

    @property
    def fixed_episodes(self) -> list[Any] | None:
        return self.core.source.fixed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._obs = self.core.reset(self.np_random, seed is not None, options or {})
        return _per_agent(self._obs, self.task.agent_ids, 0), self.core.info()

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        self._obs, out = self.core.step(action)
        info = self.core.info()
        info["agent_rewards"] = out.reward[0].astype(np.float64)
        obs = _per_agent(self._obs, self.task.agent_ids, 0)
        return obs, float(out.reward[0].sum()), bool(out.terminated[0]), bool(out.truncated[0]), info

    def render(self) -> np.ndarray | None:
        return side_by_side(self._obs, 0) if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        if getattr(self, "worlds", None) is not None:
            self.worlds.close()
            self.worlds = None

    def expert_action(self) -> dict[str, int]:
        acts = self.task.expert_actions(0)
        return {a: int(acts[k]) for k, a in enumerate(self.task.agent_ids)}


class TaskParallelEnv(ParallelEnv):
    """A multi-agent task on one world as a PettingZoo ``ParallelEnv``: each agent gets its own
    observation and reward; the episode ends for all agents at once."""

    metadata = {"render_modes": ["rgb_array"], "name": "thorgym_parallel_v0", "is_parallelizable": True}

    def __init__(
        self, task: Any, worlds: Any, episodes: Sequence[Any] | None = None, render_mode: str | None = None
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.core = _Single(task, worlds, episodes)
        self.task, self.worlds = task, worlds
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "name": f"thorgym_{task.name}_v0"}
        self.possible_agents = list(task.agent_ids)
        self.agents: list[str] = []
        self._observation_spaces = {a: task.observation_space for a in self.possible_agents}
        self._action_spaces = {a: task.action_space for a in self.possible_agents}
        self._obs: dict[str, np.ndarray] | None = None
        self._rng, _ = seeding.np_random(None)

    def observation_space(self, agent: str) -> spaces.Space:
        if agent not in self._observation_spaces:
            raise ValueError(f"unknown agent id {agent!r}: the agents are {self.possible_agents}")
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        if agent not in self._action_spaces:
            raise ValueError(f"unknown agent id {agent!r}: the agents are {self.possible_agents}")
        return self._action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng, _ = seeding.np_random(seed)
        self._obs = self.core.reset(self._rng, seed is not None, options or {})
        self.agents = list(self.possible_agents)
        info = self.core.info()
        return _per_agent(self._obs, self.possible_agents, 0), {a: dict(info) for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("the episode has ended (no agents left): call reset()")
        self._obs, out = self.core.step(actions)
        obs = _per_agent(self._obs, self.possible_agents, 0)
        rewards = {a: float(out.reward[0, k]) for k, a in enumerate(self.possible_agents)}
        term = {a: bool(out.terminated[0]) for a in self.possible_agents}
        trunc = {a: bool(out.truncated[0]) for a in self.possible_agents}
        info = self.core.info()
        infos = {a: dict(info) for a in self.possible_agents}
        if self.core.ended:
            self.agents = []
        return obs, rewards, term, trunc, infos

    def render(self) -> np.ndarray | None:
        return side_by_side(self._obs, 0) if self.render_mode == "rgb_array" else None

    def state(self) -> np.ndarray:
        """The global state: the agents' observations (rgb) side by side."""
        views = side_by_side(self._obs, 0)
        if views is None:
            raise RuntimeError("call reset() before state()")
        return views

    def close(self) -> None:
        if getattr(self, "worlds", None) is not None:
            self.worlds.close()
            self.worlds = None


class MultiAgentTaskVectorEnv(VectorEnv):
    """A multi-agent task on N worlds of one batched backend as a Gymnasium ``VectorEnv``: the
    single spaces are :class:`MultiAgentTaskEnv`'s (dicts keyed by agent id); rewards are the
    team's, per-agent rewards in ``info["agent_rewards"]`` (N, A). Autoreset as
    :class:`thorgym.envs.task_env.TaskVectorEnv` (NEXT_STEP by default).

    ``step`` also accepts an (N, A) integer array; :meth:`observe_stacked` gives the last
    observation as arrays (N, A, …) for batched agents.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        task: Any,
        worlds: Any,
        episodes: Sequence[Any] | None = None,
        render_mode: str | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        if render_mode is not None and render_mode != "rgb_array":
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        n = worlds.num_worlds
        self.task, self.worlds = task, worlds
        task.bind(worlds)
        self.num_envs = n
        self.render_mode = render_mode
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        ids = tuple(task.agent_ids)
        self.single_observation_space = spaces.Dict({a: task.observation_space for a in ids})
        self.single_action_space = spaces.Dict({a: task.action_space for a in ids})
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self.starts = SubEnvStarts(task, n, episodes)
        self._raw: dict[str, np.ndarray] | None = None
        self._started = False
        self.closed = False

    @property
    def fixed_episodes(self) -> list[Any] | None:
        return self.starts.source.fixed

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple:
        if self.closed:
            raise RuntimeError("the vector environment is closed")
        own_seed = self.starts.reset(seed, dict(options or {}))
        if own_seed is not None:
            super().reset(seed=own_seed)
        self._started = True
        self._raw = self.task.observe()
        return _per_agent(self._raw, self.task.agent_ids, None), self._infos()

    def step(self, actions: Any) -> tuple:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        acts = joint_actions(self.task, actions, self.num_envs)
        resetting = self.starts.needs_reset.copy()
        out = self.task.step(acts, ~resetting)
        ended = out.terminated | out.truncated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            for i in np.nonzero(resetting)[0]:
                self.starts.begin(i, {})
            raw = self.task.observe()
            infos = self._infos()
            self.starts.needs_reset[:] = ended
        else:
            raw = self.task.observe()
            infos = self._infos()
            if ended.any():
                final_obs = np.full(self.num_envs, None, dtype=object)
                for i in np.nonzero(ended)[0]:
                    final_obs[i] = _per_agent(
                        {k: v[i : i + 1] for k, v in raw.items()}, self.task.agent_ids, 0
                    )
                    self.starts.begin(i, {})
                final_info = infos
                raw = self.task.observe()
                infos = self._infos()
                infos["final_obs"], infos["_final_obs"] = final_obs, ended.copy()
                infos["final_info"], infos["_final_info"] = final_info, ended.copy()
        infos["agent_rewards"] = out.reward.astype(np.float64)
        infos["_agent_rewards"] = np.ones(self.num_envs, bool)
        self._raw = raw
        obs = _per_agent(raw, self.task.agent_ids, None)
        return obs, out.reward.sum(-1).astype(np.float64), out.terminated, out.truncated, infos

    def observe_stacked(self) -> dict[str, np.ndarray]:
        """The last observations as task arrays (N, A, …)."""
        if self._raw is None:
            raise RuntimeError("call reset() first")
        return self._raw

    def _infos(self) -> dict[str, Any]:
        info: dict[str, Any] = dict(self.task.info())
        for k in list(info):
            info["_" + k] = np.ones(self.num_envs, bool)
        return info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array" or self._raw is None or "rgb" not in self._raw:
            return None
        return tuple(side_by_side(self._raw, i) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        self.worlds.close()
        self._raw = None

    @property
    def needs_reset(self) -> np.ndarray:
        """(N,) bool: these worlds' episodes ended; their next step starts a new one."""
        return self.starts.needs_reset.copy()

    def expert_actions(self) -> np.ndarray:
        """(N, A) the task's expert joint actions in every world."""
        return np.stack([self.task.expert_actions(i) for i in range(self.num_envs)])
