"""Generic environment adapters over (task, worlds): one Gymnasium env, one batched VectorEnv, and
the factories (:func:`make_env`, :func:`make_vector_env`) the registration table points at for a
task given by class path: adding such a task is its module in ``tasks/`` plus one table line.

Both drive the same task object (``thorgym.tasks``) over a backend's worlds
(``thorgym.envs.worlds``); the single env is the N = 1 case of the same calls, so a single
environment reset with seed ``s + i`` plays exactly what sub-environment i of the vector env
plays after ``reset(seed=s)``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from thorgym.tasks.base import EnvTask, EpisodeFile, Task, TextEncoder

from .backends import BackendDied
from .worlds import build_worlds

__all__ = [
    "EpisodeSource",
    "SubEnvStarts",
    "TaskEnv",
    "TaskVectorEnv",
    "autoreset_mode",
    "build",
    "episode_list",
    "make_env",
    "make_parallel_env",
    "make_vector_env",
    "resolve_data",
    "resolve_task",
]


def autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    m = AutoresetMode(mode) if isinstance(mode, str) else mode
    if m not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ValueError(f"autoreset_mode must be NEXT_STEP or SAME_STEP, got {mode!r}")
    return m


class EpisodeSource:
    """Where each sub-environment's next episode comes from: given in the reset options, the
    next of a fixed list (sub-environment i plays episodes i, i+N, i+2N, …), or sampled by the
    task from the sub-environment's generator."""

    def __init__(self, task: Task, num_envs: int, fixed: Sequence[Any] | None) -> None:
        self.task = task
        self.num_envs = num_envs
        self.fixed = None if fixed is None else [task.episode_from_dict(e) for e in fixed]
        if self.fixed is not None and not self.fixed:
            raise ValueError("episodes must contain at least one episode")
        self.next_index = np.arange(num_envs)

    def restart(self, i: int) -> None:
        self.next_index[i] = i

    def next(self, i: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Any:
        if "episode" in options:
            return self.task.episode_from_dict(options["episode"])
        if self.fixed is not None:
            k = int(options.get("episode_index", self.next_index[i]))
            self.next_index[i] = k + self.num_envs
            return self.fixed[k % len(self.fixed)]
        return self.task.sample_episode(rng, options)


class SubEnvStarts:
    """How the N sub-environments of a batched adapter begin episodes: each its own generator,
    episodes from an :class:`EpisodeSource`, seeds and reset masks as Gymnasium's ``VectorEnv``
    takes them. Shared by :class:`TaskVectorEnv` and the multi-agent vector env."""

    def __init__(self, task: Task, num_envs: int, episodes: Sequence[Any] | None) -> None:
        self.task, self.num_envs = task, num_envs
        self.source = EpisodeSource(task, num_envs, episodes)
        self.rngs: list[np.random.Generator | None] = [None] * num_envs
        self.needs_reset = np.zeros(num_envs, dtype=bool)  # ended: the next step begins anew

    def begin(self, i: int, options: Mapping[str, Any]) -> None:
        if self.rngs[i] is None:
            self.rngs[i], _ = seeding.np_random(None)
        self.task.begin(i, self.source.next(i, self.rngs[i], options))
        self.needs_reset[i] = False

    def reset(self, seed: int | Sequence[int | None] | None, options: dict[str, Any]) -> int | None:
        """Begin the sub-environments of ``options["reset_mask"]`` (all by default; popped),
        sub-environment i seeded with ``seed + i`` (an int) or ``seed[i]`` (a list). Returns the
        int seed, for the vector env's own generator, or None."""
        n = self.num_envs
        mask = options.pop("reset_mask", None)
        mask = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != (n,):
            raise ValueError(f"reset_mask must have shape ({n},)")
        if isinstance(seed, int | np.integer):
            seeds: list[int | None] = [int(seed) + i for i in range(n)]
        elif seed is None:
            seeds = [None] * n
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed must be an int or a list of {n} seeds")
        for i in np.nonzero(mask)[0]:
            if seeds[i] is not None:
                self.rngs[i], _ = seeding.np_random(seeds[i])
                self.source.restart(i)
            self.begin(i, options)
        return int(seed) if isinstance(seed, int | np.integer) else None


def _item(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class TaskEnv(gym.Env):
    """A task on one world as a Gymnasium environment (the concrete env classes document the task).

    Args:
        task: the task's rules (``thorgym.tasks``); worlds: the backend's worlds (N = 1).
        episodes: fixed episodes (task dicts or episode objects) played in order instead of
            sampled; a seeded reset starts again from the first.
        render_mode: None or "rgb_array" (the egocentric frame).

    ``reset(options=...)`` accepts ``{"episode": dict}`` (play this episode), ``{"episode_index":
    i}`` (the i-th fixed episode) and the task's own sampling options (e.g. ``{"scene": name}``).
    A backend that dies (``BackendDied``) is restarted: the episode is truncated with
    ``info["backend_restart"] = True``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, task: Task, worlds: Any, episodes: Sequence[Any] | None = None, render_mode: str | None = None
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if worlds.num_worlds != 1:
            raise ValueError(f"TaskEnv drives one world, got {worlds.num_worlds}; use TaskVectorEnv")
        self.task, self.worlds = task, worlds
        task.bind(worlds)
        self.render_mode = render_mode
        self.observation_space = task.observation_space
        self.action_space = task.action_space
        self.source = EpisodeSource(task, 1, episodes)
        self._obs: dict[str, Any] | None = None
        self._restarted = False
        self._last_action: int | None = None

    @property
    def fixed_episodes(self) -> list[Any] | None:
        return self.source.fixed

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.source.restart(0)
        options = dict(options or {})
        self._restarted = False
        self._last_action = None
        mark = int(self.source.next_index[0])
        try:
            self.task.begin(0, self.source.next(0, self.np_random, options))
            obs = self.task.observe()
        except BackendDied:  # the AI2-THOR process died: restart it and try once more
            self._restart_worlds()
            self.source.next_index[0] = mark
            self.task.begin(0, self.source.next(0, self.np_random, options))
            obs = self.task.observe()
            self._restarted = True
        self._obs = {k: _item(v[0]) for k, v in obs.items()}
        return self._obs, self._info()

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        n = self.action_space.n
        try:
            a = int(action)
        except (TypeError, ValueError):
            raise ValueError(f"action must be an integer in [0, {n}), got {action!r}") from None
        if not 0 <= a < n or a != action:
            raise ValueError(f"action must be in [0, {n}), got {action!r}")
        self._restarted = False
        self._last_action = a
        try:
            out = self.task.step(np.array([a]), np.ones(1, dtype=bool))
            obs = self.task.observe()
        except BackendDied:
            return self._truncate_after_restart()
        self._obs = {k: _item(v[0]) for k, v in obs.items()}
        return self._obs, float(out.reward[0]), bool(out.terminated[0]), bool(out.truncated[0]), self._info()

    def _restart_worlds(self) -> None:
        restart = getattr(self.worlds, "restart", None)
        if restart is None:
            raise RuntimeError("the backend died and cannot be restarted")
        restart()

    def _truncate_after_restart(self) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """The backend died mid-episode: restart it, truncate the episode, say so in info."""
        self._restart_worlds()
        self.task.truncate(0)
        self._obs = {k: _item(v[0]) for k, v in self.task.observe().items()}
        self._restarted = True
        return self._obs, 0.0, False, True, self._info()

    def _info(self) -> dict[str, Any]:
        info = {k: _item(v[0]) for k, v in self.task.info().items()}
        info["backend_restart"] = self._restarted
        return info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._obs is None or "rgb" not in self._obs:
            return None
        return np.array(self._obs["rgb"], copy=True)

    def close(self) -> None:
        worlds = getattr(self, "worlds", None)
        if worlds is not None:
            worlds.close()
        self._obs = None

    # -- what maps, videos and the oracle read -------------------------------------------------
    @property
    def episode(self) -> Any:
        """The current episode."""
        return self.task.episodes[0]

    @property
    def path(self) -> list[tuple[float, ...]]:
        """Poses of the current episode so far (when the task tracks paths)."""
        return self.task.paths[0]

    @property
    def backend(self) -> Any:
        """The controller-contract backend behind the world, else the worlds object (both give
        ``pose_graph(scene)``)."""
        return getattr(self.worlds, "backend", self.worlds)

    def pose_graph(self, scene: str) -> Any:
        return self.worlds.pose_graph(scene)

    @property
    def target_visible(self) -> bool:
        return bool(self.task.target_visible[0])

    @property
    def last_action(self) -> str | None:
        return None if self._last_action is None else self.task.action_names[self._last_action]

    def layout(self) -> dict[str, Any]:
        """Top-down layout of the current scene (bounds, walls, objects), for maps and videos."""
        return self.worlds.layout(0)

    def expert_action(self) -> int:
        """The task's shortest-path action from the current state."""
        return int(self.task.expert_action(0))


class TaskVectorEnv(VectorEnv):
    """A task on N worlds of one batched backend as a Gymnasium ``VectorEnv``.

    Args:
        task, worlds, episodes, render_mode: as :class:`TaskEnv` (``worlds.num_worlds`` = N).
        autoreset_mode: ``NEXT_STEP`` (default: the step after an episode ended resets that
            sub-environment and ignores its action) or ``SAME_STEP`` (the ending step returns
            the next episode's first observation; the last one is in ``info["final_obs"]``, the
            ending info in ``info["final_info"]``).

    ``reset(options={"reset_mask": mask})`` resets only the sub-environments where mask is True.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        task: Task,
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
        self.autoreset_mode = globals()["autoreset_mode"](autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = task.observation_space
        self.single_action_space = task.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self.starts = SubEnvStarts(task, n, episodes)
        self._all = np.ones(n, dtype=bool)
        self._obs: dict[str, np.ndarray] | None = None
        self._started = False
        self.closed = False

    @property
    def fixed_episodes(self) -> list[Any] | None:
        return self.starts.source.fixed

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.closed:
            raise RuntimeError("the vector environment is closed")
        own_seed = self.starts.reset(seed, dict(options or {}))
        if own_seed is not None:
            super().reset(seed=own_seed)
        self._started = True
        self._obs = self.task.observe()
        return self._obs, self._infos()

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        n_act = self.single_action_space.n
        a = np.asarray(actions).reshape(-1)
        if (
            a.shape != (self.num_envs,)
            or not np.issubdtype(a.dtype, np.integer)
            or (a < 0).any()
            or (a >= n_act).any()
        ):
            raise ValueError(f"actions must be {self.num_envs} integers in [0, {n_act}), got {actions!r}")
        resetting = self.starts.needs_reset.copy()
        out = self.task.step(a.astype(np.int64), ~resetting)
        ended = out.terminated | out.truncated
        n = self.num_envs
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            for i in np.nonzero(resetting)[0]:
                self.starts.begin(i, {})
            obs = self.task.observe()
            infos = self._infos()
            self.starts.needs_reset[:] = ended
        else:
            obs = self.task.observe()
            infos = self._infos()
            if ended.any():
                final_obs = np.full(n, None, dtype=object)
                for i in np.nonzero(ended)[0]:
                    final_obs[i] = {k: v[i].copy() for k, v in obs.items()}
                    self.starts.begin(i, {})
                final_info = infos
                obs = self.task.observe()
                infos = self._infos()
                infos["final_obs"] = final_obs
                infos["_final_obs"] = ended.copy()
                infos["final_info"] = final_info
                infos["_final_info"] = ended.copy()
        self._obs = obs
        return obs, out.reward.astype(np.float64), out.terminated, out.truncated, infos

    def _infos(self) -> dict[str, Any]:
        info: dict[str, Any] = dict(self.task.info())
        info["backend_restart"] = np.zeros(self.num_envs, dtype=bool)
        for k in list(info):
            info["_" + k] = self._all.copy()
        return info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array" or self._obs is None or "rgb" not in self._obs:
            return None
        return tuple(np.array(f) for f in self._obs["rgb"])

    def close_extras(self, **kwargs: Any) -> None:
        self.worlds.close()
        self._obs = None

    @property
    def episodes(self) -> list[Any]:
        """The current episode of every sub-environment."""
        return list(self.task.episodes)

    @property
    def target_visible(self) -> np.ndarray:
        """(N,) bool: the target is visible now, per sub-environment."""
        return self.task.target_visible

    @property
    def sim(self) -> Any:
        """The batched simulator behind the worlds (built-in simulator worlds only)."""
        sim = getattr(self.worlds, "sim", None)
        if sim is None:
            raise AttributeError(f"{type(self.worlds).__name__} has no batched simulator")
        return sim


# -- the generic factory: a task class and keyword arguments to an environment -----------------
def resolve_task(task: str | type[EnvTask]) -> type[EnvTask]:
    """A task class, or its path ``"package.module:Class"`` (the registration table's form)."""
    if isinstance(task, str):
        module, sep, name = task.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"task must be 'package.module:Class', got {task!r}")
        task = getattr(importlib.import_module(module), name)
    if not isinstance(task, type) or not callable(getattr(task, "env_setup", None)):
        raise ValueError(
            f"{task!r} is not a task class with an env_setup classmethod (thorgym.tasks.base.EnvTask)"
        )
    return task


def episode_list(episodes: Sequence[Any] | EpisodeFile | None) -> Sequence[Any] | None:
    """A set-up's fixed episodes as a list: an :class:`~thorgym.tasks.base.EpisodeFile` (a shipped
    set, or a path) is read (``thorgym.datasets.episode_files``); a list or None stays as it is."""
    if isinstance(episodes, EpisodeFile):
        from thorgym.datasets.episode_files import read_episodes, shipped_episodes

        name = episodes.name
        if "/" in name or name.endswith((".json", ".json.gz")):  # a path, not a shipped set
            return read_episodes(name)
        return shipped_episodes(name)
    return episodes


def resolve_data(ref: Any) -> Any:
    """What a task names in ``EnvSetup.data``, read through the datasets layer: an
    :class:`~thorgym.tasks.base.EpisodeFile` → its list of dicts, a
    :class:`~thorgym.tasks.base.TextEncoder` → its function (text → array); anything else as it is."""
    if isinstance(ref, EpisodeFile):
        return episode_list(ref)
    if isinstance(ref, TextEncoder):
        if ref.name == "question_tokens":
            from thorgym.datasets.iqa import question_tokens

            return question_tokens
        raise ValueError(f"unknown text encoder {ref.name!r}; known: 'question_tokens'")
    return ref


def build(
    task: str | type[EnvTask],
    num_worlds: int,
    backend: str = "sim",
    device: str = "cpu",
    compile: bool = False,
    controller_kwargs: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    **kwargs: Any,
) -> tuple[Task, Any, Sequence[Any] | None]:
    """(task, worlds, fixed episodes) of a task class and its keyword arguments: what every
    adapter takes. The backend's arguments choose the worlds (:func:`~thorgym.envs.worlds.
    build_worlds`); the others are the task's ``env_setup``'s. What the set-up names in ``data``
    is read (:func:`resolve_data`) and handed to ``task.provide``."""
    setup = resolve_task(task).env_setup(num_worlds, **kwargs)
    if setup.data:
        setup.task.provide({k: resolve_data(v) for k, v in setup.data.items()})
    worlds = build_worlds(setup.worlds, num_worlds, backend=backend, device=device, compile=compile,
                          controller_kwargs=controller_kwargs, timeout=timeout)  # fmt: skip
    return setup.task, worlds, episode_list(setup.episodes)


def _is_multi_agent(task: Task) -> bool:
    return bool(getattr(task, "agent_ids", ()))


def make_env(
    task: str | type[EnvTask],
    backend: str = "sim",
    device: str = "cpu",
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    **kwargs: Any,
) -> gym.Env:
    """``entry_point`` of a task registered by class: ``task`` is the class (or its path), the other
    keyword arguments are its ``env_setup``'s; ``backend``, ``device``, ``render_mode``,
    ``controller_kwargs`` and ``timeout`` choose the worlds (:func:`~thorgym.envs.worlds.build_worlds`).
    A :class:`TaskEnv`, or for a multi-agent task (``agent_ids``) the Gymnasium
    ``thorgym.envs.multi_agent.MultiAgentTaskEnv`` (joint dict action, team reward). The
    environment's ``__doc__`` is the task class's: its Gymnasium documentation."""
    cls = resolve_task(task)
    if render_mode is not None and render_mode not in TaskEnv.metadata["render_modes"]:
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    parts = build(cls, 1, backend, device, False, controller_kwargs, timeout, **kwargs)
    if _is_multi_agent(parts[0]):
        from .multi_agent import MultiAgentTaskEnv

        env: gym.Env = MultiAgentTaskEnv(*parts, render_mode)
    else:
        env = TaskEnv(*parts, render_mode)
    env.__doc__ = cls.__doc__
    return env


def make_parallel_env(
    task: str | type[EnvTask],
    backend: str = "sim",
    device: str = "cpu",
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A multi-agent task class (or its path) as a PettingZoo ``ParallelEnv``
    (``thorgym.envs.multi_agent.TaskParallelEnv``); arguments as :func:`make_env`."""
    from .multi_agent import TaskParallelEnv

    cls = resolve_task(task)
    parts = build(cls, 1, backend, device, False, controller_kwargs, **kwargs)
    if not _is_multi_agent(parts[0]):
        raise ValueError(f"{cls.__name__} is a one-agent task: use make_env")
    env = TaskParallelEnv(*parts, render_mode)
    env.__doc__ = cls.__doc__
    return env


def make_vector_env(
    num_envs: int = 1,
    task: str | type[EnvTask] | None = None,
    backend: str = "sim",
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    device: str = "cpu",
    compile: bool = False,
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    **kwargs: Any,
) -> VectorEnv:
    """``vector_entry_point`` of a task registered by class: N worlds of one batched simulator in
    a :class:`TaskVectorEnv` (multi-agent tasks: ``MultiAgentTaskVectorEnv``; ``compile``:
    torch.compile the ray caster), or for ``backend="ai2thor"`` an ``AsyncVectorEnv`` of
    :func:`make_env` (one AI2-THOR process each). Sub-environment i plays what :func:`make_env`
    reset with seed ``seed + i`` plays."""
    if task is None:
        raise ValueError("make_vector_env needs task='package.module:Class'")
    cls = resolve_task(task)
    mode = globals()["autoreset_mode"](autoreset_mode)
    if backend == "ai2thor":
        fn = functools.partial(make_env, cls, backend=backend, device=device, render_mode=render_mode,
                               controller_kwargs=controller_kwargs, timeout=timeout, **kwargs)  # fmt: skip
        return gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=mode)
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    parts = build(cls, num_envs, backend, device, compile, **kwargs)
    if _is_multi_agent(parts[0]):
        from .multi_agent import MultiAgentTaskVectorEnv

        return MultiAgentTaskVectorEnv(*parts, render_mode, mode)
    return TaskVectorEnv(*parts, render_mode, mode)
