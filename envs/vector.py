"""Natively batched ``thorgym/ObjectNav-v0`` on the built-in simulator.

:class:`ObjectNavVectorEnv` steps N ObjectNav environments with one
:class:`thorgym.sim.BatchedSimulator` and one batched render per step (a second one only on steps
where some environment hits its step limit under SAME_STEP autoreset), and returns numpy
arrays. Sub-environment i behaves exactly as ``ObjectNavEnv`` reset with seed ``seed + i``.

``gymnasium.make_vec("thorgym/ObjectNav-v0", num_envs=N)`` builds it through
:func:`make_objectnav_vec`, which falls back to ``AsyncVectorEnv`` for ``backend="ai2thor"``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from thorgym.sim.scenes import parse_scene
from thorgym.tasks import objectnav as task

from .backends import objectnav_simulator
from .objectnav import MAX_DEPTH, load_episode_list, make_observation_space, target_embeddings

__all__ = ["ObjectNavVectorEnv", "make_objectnav_vec"]

_INFO_KEYS = (
    "scene",
    "target",
    "success",
    "spl",
    "l_opt",
    "path_length",
    "last_action_success",
    "backend_restart",
)


def _autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    m = AutoresetMode(mode) if isinstance(mode, str) else mode
    if m not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ValueError(f"autoreset_mode must be NEXT_STEP or SAME_STEP, got {mode!r}")
    return m


class ObjectNavVectorEnv(VectorEnv):
    """N ObjectNav environments on one batched simulator (see :class:`ObjectNavEnv` for the
    task, spaces and arguments).

    Args:
        num_envs: number of sub-environments.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default; the step after an episode ended
            resets that sub-environment and ignores its action) or ``AutoresetMode.SAME_STEP``
            (the ending step already returns the next episode's first observation; the last one
            is in ``info["final_obs"]``, the ending info in ``info["final_info"]``).
        compile: torch.compile the simulator's ray caster.
        episodes: fixed episodes; sub-environment i plays episodes i, i+N, i+2N, … in turn.
        Other arguments as :class:`thorgym.envs.objectnav.ObjectNavEnv` (backend "sim" only).

    ``reset(options={"reset_mask": mask})`` resets only the sub-environments where mask is True.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "train",
        room_types: Sequence[str] | str | None = None,
        scenes: Sequence[str] | str | None = None,
        targets: Sequence[str] | None = None,
        width: int = 128,
        height: int = 128,
        depth: bool = False,
        max_steps: int | Mapping[str, int] | None = None,
        device: str = "cpu",
        episodes: Any = None,
        render_mode: str | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        compile: bool = False,
        backend: str = "sim",
    ) -> None:
        if backend != "sim":
            raise ValueError(
                "ObjectNavVectorEnv runs on the built-in simulator only; for backend='ai2thor' "
                "use gymnasium.make_vec(..., backend='ai2thor') (an AsyncVectorEnv)"
            )
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None and render_mode != "rgb_array":
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.width, self.height, self.depth = int(width), int(height), bool(depth)
        self.max_steps = max_steps
        self.scenes = task.resolve_scenes(split, room_types, scenes)
        self.fixed_episodes = load_episode_list(episodes)
        self.single_observation_space = make_observation_space(self.width, self.height, self.depth)
        self.single_action_space = gym.spaces.Discrete(len(task.ACTIONS))
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.sim = objectnav_simulator(
            [self.scenes[0]] * num_envs,
            width=self.width,
            height=self.height,
            depth=self.depth,
            device=device,
            compile=compile,
        )
        self._graph_fn = functools.partial(
            task.build_pose_graph,
            field_of_view=task.FIELD_OF_VIEW,
            visibility_distance=task.VISIBILITY_DISTANCE,
            aspect=self.width / self.height,
            grid_size=task.GRID_SIZE,
        )
        self.sampler = task.SceneSampler(self.scenes, self._graph_fn, targets)
        self._embeddings = target_embeddings()
        n = num_envs
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._episodes: list[task.Episode | None] = [None] * n
        self._fixed_next = np.arange(n)
        self._steps = np.zeros(n, dtype=np.int64)
        self._limits = np.ones(n, dtype=np.int64)
        self._target = np.zeros(n, dtype=np.int64)
        self._l_opt = np.full(n, -1, dtype=np.int64)
        self._success = np.zeros(n, dtype=bool)
        self._last_ok = np.ones(n, dtype=bool)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._visible = np.zeros(n, dtype=bool)
        self._mask = np.zeros((n, 1), dtype=bool)  # (N, O): objects of the target type
        self._obs: dict[str, np.ndarray] | None = None
        self._scene_names = np.full(n, None, dtype=object)
        self._target_names = np.full(n, None, dtype=object)
        self._all = np.ones(n, dtype=bool)
        self._started = False
        self.closed = False
        nav = [self._nav_index(a) for a in task.ACTIONS]
        self._nav_of = np.array(nav, dtype=np.int64)

    @staticmethod
    def _nav_index(action: str) -> int:
        from thorgym.sim import NAV_ACTIONS

        return NAV_ACTIONS.index(action) if action != "Done" else -1

    # -- episodes --------------------------------------------------------------------------------
    def _next_episode(self, i: int, options: Mapping[str, Any]) -> task.Episode:
        if self.fixed_episodes is not None:
            k = int(self._fixed_next[i])
            self._fixed_next[i] += self.num_envs
            return self.fixed_episodes[k % len(self.fixed_episodes)]
        rng = self._rngs[i]
        if rng is None:
            rng, _ = seeding.np_random(None)
            self._rngs[i] = rng
        return self.sampler.sample(rng, scene=options.get("scene"))

    def _apply(self, i: int, ep: task.Episode) -> None:
        """Put sub-environment i at the start of an episode (no render)."""
        sim = self.sim
        scene = parse_scene(ep.scene)[0]
        if sim.worlds[i].spec.name != scene:
            sim.reset_world(i, scene)
        if ep.l_opt is None:
            g = self._graph_fn(scene)
            ep = task.Episode(
                ep.scene, ep.target, ep.x, ep.z, ep.rotation, ep.horizon,
                g.l_opt(g.pose(ep.x, ep.z, ep.rotation, ep.horizon), ep.target), ep.id,
            )  # fmt: skip
        if self.fixed_episodes is not None and not sim.position_free(i, ep.x, ep.z):
            raise ValueError(f"episode start ({ep.x}, {ep.z}) is not a valid position in {scene}")
        sim.pos[i, 0, 0] = ep.x
        sim.pos[i, 0, 2] = ep.z
        sim.yaw[i, 0] = float(ep.rotation) % 360.0
        sim.horizon[i, 0] = float(ep.horizon)
        sim._visible = None
        self._episodes[i] = ep
        self._scene_names[i] = ep.scene
        self._target_names[i] = ep.target
        self._steps[i] = 0
        self._limits[i] = task.max_steps_for(scene, self.max_steps)
        self._target[i] = task.TARGET_INDEX[ep.target]
        self._l_opt[i] = -1 if ep.l_opt is None else ep.l_opt
        self._success[i] = False
        self._last_ok[i] = True
        self._needs_reset[i] = False
        self._update_mask(i)

    def _update_mask(self, i: int) -> None:
        width = max(len(w.objects) for w in self.sim.worlds)
        if self._mask.shape[1] < width:
            grown = np.zeros((self.num_envs, width), dtype=bool)
            grown[:, : self._mask.shape[1]] = self._mask
            self._mask = grown
        target = self._episodes[i].target
        self._mask[i] = False
        for k, o in enumerate(self.sim.worlds[i].objects):
            if o.object_type == target:
                self._mask[i, k] = True

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.closed:
            raise RuntimeError("the vector environment is closed")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        mask = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must have shape ({self.num_envs},)")
        if isinstance(seed, int):
            super().reset(seed=seed)
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
        elif seed is None:
            seeds = [None] * self.num_envs
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} seeds")
        for i in np.nonzero(mask)[0]:
            if seeds[i] is not None:
                self._rngs[i], _ = seeding.np_random(seeds[i])
                self._fixed_next[i] = i
            self._apply(i, self._next_episode(i, options))
        self._started = True
        obs = self._observe()
        return obs, self._infos(np.zeros(self.num_envs, dtype=bool))

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        import torch

        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        if a.shape != (self.num_envs,) or (a < 0).any() or (a >= len(task.ACTIONS)).any():
            raise ValueError(
                f"actions must be {self.num_envs} integers in [0, {len(task.ACTIONS)}), got {actions!r}"
            )
        sim = self.sim
        n = self.num_envs
        resetting = self._needs_reset.copy()
        live = ~resetting
        look = a >= task.LOOK_UP
        blocked_look = look & (a != task.DONE)
        if blocked_look.any():
            horizon = sim.horizon[:, 0].cpu().numpy()
            blocked_look = ((a == task.LOOK_UP) & (horizon < 15.0)) | (
                (a == task.LOOK_DOWN) & (horizon > 15.0)
            )
        go = live & (a != task.DONE) & ~blocked_look
        nav = np.where(go, self._nav_of[a], -1)
        ok = sim.step_nav(torch.from_numpy(nav))[:, 0].cpu().numpy()

        self._steps[live] += 1
        done = live & (a == task.DONE)
        success = done & self._visible
        rewards = np.where(success, task.SUCCESS_REWARD, task.STEP_PENALTY)
        rewards[resetting] = 0.0
        terminated = done
        truncated = live & ~done & (self._steps >= self._limits)
        self._success = np.where(live, success, self._success)
        self._last_ok = np.where(go, ok, live & ~blocked_look)
        ended = terminated | truncated

        final_obs = final_info = None
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            for i in np.nonzero(resetting)[0]:
                self._apply(i, self._next_episode(i, {}))
            obs = self._observe()
            infos = self._infos(ended)
            self._needs_reset = ended
        else:
            if ended.any():
                final_info = self._infos(ended)
                final_obs = np.full(n, None, dtype=object)
                for i in np.nonzero(terminated)[0]:  # Done: the state did not change
                    final_obs[i] = {k: v[i] for k, v in self._obs.items()}
                    self._apply(i, self._next_episode(i, {}))
            obs = self._observe()
            if truncated.any():
                for i in np.nonzero(truncated)[0]:
                    final_obs[i] = {k: v[i].copy() for k, v in obs.items()}
                    self._apply(i, self._next_episode(i, {}))
                obs = self._observe()
            infos = self._infos(np.zeros(n, dtype=bool))
            if final_obs is not None:
                infos["final_obs"] = final_obs
                infos["_final_obs"] = ended.copy()
                infos["final_info"] = final_info
                infos["_final_info"] = ended.copy()
        return obs, rewards.astype(np.float64), terminated, truncated, infos

    def _observe(self) -> dict[str, np.ndarray]:
        out = self.sim.observe()
        vis = out.visible[:, 0].cpu().numpy()
        m = self._mask
        w = min(vis.shape[1], m.shape[1])
        self._visible = (vis[:, :w] & m[:, :w]).any(1)
        obs: dict[str, np.ndarray] = {"rgb": out.rgb[:, 0].cpu().numpy()}
        if self.depth:
            d = out.depth[:, 0].cpu().numpy()
            obs["depth"] = np.clip(d, 0.0, MAX_DEPTH).astype(np.float32)[..., None]
        obs["target"] = self._target.copy()
        obs["target_embedding"] = np.asarray(self._embeddings[self._target], dtype=np.float32)
        self._obs = obs
        return obs

    def _infos(self, ended: np.ndarray) -> dict[str, Any]:
        l_opt = self._l_opt
        steps = self._steps
        spl = np.where(
            ended & self._success & (l_opt > 0),
            l_opt / np.maximum(np.maximum(steps, l_opt), 1),
            0.0,
        )
        info: dict[str, Any] = {
            "scene": self._scene_names.copy(),
            "target": self._target_names.copy(),
            "success": self._success.copy(),
            "spl": spl.astype(np.float64),
            "l_opt": l_opt.copy(),
            "path_length": steps.copy(),
            "last_action_success": self._last_ok.copy(),
            "backend_restart": np.zeros(self.num_envs, dtype=bool),
        }
        for k in _INFO_KEYS:
            info["_" + k] = self._all.copy()
        return info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return tuple(np.array(f) for f in self._obs["rgb"])

    def close_extras(self, **kwargs: Any) -> None:
        self.sim = None
        self._obs = None

    @property
    def episodes(self) -> list[task.Episode | None]:
        """The current episode of every sub-environment."""
        return list(self._episodes)

    @property
    def target_visible(self) -> np.ndarray:
        """(N,) bool: the target is visible now, per sub-environment."""
        return self._visible.copy()


def make_objectnav_vec(
    num_envs: int = 1,
    backend: str = "sim",
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    **kwargs: Any,
) -> VectorEnv:
    """``vector_entry_point`` of ``thorgym/ObjectNav-v0``: the batched env on the built-in
    simulator, an ``AsyncVectorEnv`` of :class:`ObjectNavEnv` for ``backend="ai2thor"``."""
    if backend == "sim":
        kwargs.pop("controller_kwargs", None)  # ai2thor-only arguments, as ObjectNavEnv ignores
        kwargs.pop("timeout", None)
        return ObjectNavVectorEnv(num_envs, autoreset_mode=autoreset_mode, **kwargs)
    if backend == "ai2thor":
        from .objectnav import ObjectNavEnv

        kwargs.pop("compile", None)
        fn = functools.partial(ObjectNavEnv, backend="ai2thor", **kwargs)
        return gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=_autoreset_mode(autoreset_mode))
    raise ValueError(f"unknown backend {backend!r}: use 'sim' or 'ai2thor'")
