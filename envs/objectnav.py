"""``thorgym/ObjectNav-v0``: SAVN-style object navigation as a Gymnasium environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle
from thorgym.sim.scenes import parse_scene
from thorgym.tasks import objectnav as task

from .backends import BackendDied, NavEvent, make_backend

MAX_DEPTH = 10.0  # depth observations are clipped to [0, MAX_DEPTH] metres
EMBEDDING_BOUND = 6.0  # |GloVe 6B 50-d components| < 5.5

__all__ = ["ObjectNavEnv", "MAX_DEPTH", "make_observation_space", "target_embeddings"]


def target_embeddings() -> np.ndarray:
    """(len(TARGET_TYPES), 50) float32 GloVe embeddings of the target types (read-only)."""
    from thorgym.datasets.objectnav_embeddings import embed_types

    return embed_types(task.TARGET_TYPES)


def make_observation_space(width: int, height: int, depth: bool) -> spaces.Dict:
    """The observation space of one ObjectNav environment."""
    d: dict[str, spaces.Space] = {
        "rgb": spaces.Box(0, 255, (height, width, 3), np.uint8),
    }
    if depth:
        d["depth"] = spaces.Box(0.0, MAX_DEPTH, (height, width, 1), np.float32)
    d["target"] = spaces.Discrete(len(task.TARGET_TYPES))
    d["target_embedding"] = spaces.Box(-EMBEDDING_BOUND, EMBEDDING_BOUND, (50,), np.float32)
    return spaces.Dict(d)


def load_episode_list(episodes: Any) -> list[task.Episode] | None:
    """Fixed episodes from a list of dicts / Episodes, or a shipped set's name ("val", "test")."""
    if episodes is None:
        return None
    if isinstance(episodes, str):
        from thorgym.datasets.objectnav import load_episodes

        episodes = load_episodes(episodes)
    out = [task.Episode.from_dict(e) for e in episodes]
    if not out:
        raise ValueError("episodes must contain at least one episode")
    return out


class ObjectNavEnv(gym.Env, EzPickle):
    """Object navigation in AI2-THOR scenes, SAVN's setting (Wortsman et al., CVPR 2019).

    ## Description
    The agent starts at a random reachable pose of a room (heading a multiple of 45°, camera
    level) from which no instance of the target object type is visible, and must find one: end
    the episode with ``Done`` while an instance of the target type is visible (within 1.5 m).
    Targets per room type: kitchen Toaster, Microwave, Fridge, CoffeeMaker, GarbageCan, Box,
    Bowl; living room Pillow, Laptop, Television, GarbageCan, Box, Bowl; bedroom HousePlant,
    Lamp, Book, AlarmClock; bathroom Sink, ToiletPaper, SoapBottle, LightSwitch. Scenes:
    train FloorPlan 1–20 of each room type, val 21–25, test 26–30.

    ## Action Space
    ``Discrete(6)``: 0 MoveAhead (0.25 m; diagonally 0.25 m on both axes at odd multiples of
    45°), 1 RotateLeft (45°), 2 RotateRight (45°), 3 LookUp, 4 LookDown (horizon 0° or 30°:
    LookUp at 0° and LookDown at 30° fail and change nothing), 5 Done.

    ## Observation Space
    ``Dict``: ``rgb`` ``Box(0, 255, (height, width, 3), uint8)`` egocentric frame; ``depth``
    ``Box(0, 10, (height, width, 1), float32)`` metres (only with ``depth=True``); ``target``
    ``Discrete(18)``, the index of the target type in :data:`thorgym.tasks.objectnav.
    TARGET_TYPES`; ``target_embedding`` ``Box(-6, 6, (50,), float32)``, the GloVe 6B 50-d vector
    of the target type (mean over its words, e.g. "coffee" and "maker").

    ## Rewards
    +5 for ``Done`` while the target is visible (success), −0.01 for every other step
    (including an unsuccessful ``Done``).

    ## Episode End
    Terminated: the agent chose ``Done`` (success or not). Truncated: the step limit was
    reached (100 steps, 200 in living rooms, or ``max_steps``), or the ai2thor backend process
    died or timed out and was restarted (``info["backend_restart"]``).

    ## Info
    ``scene``, ``target``, ``success`` (bool), ``spl`` (success × L_opt / max(path_length,
    L_opt), set when the episode ends, 0.0 before), ``l_opt`` (shortest path in actions to a pose
    seeing the target plus 1 for Done; −1 when unknown), ``path_length`` (actions taken,
    Done included), ``last_action_success``, ``backend_restart``.

    ## Arguments
    - ``backend``: "sim" (built-in simulator, default) or "ai2thor" (``pip install
      'thorgym[ai2thor]'``; ``controller_kwargs={"local_executable_path": <thorgym-thor>}``
      runs the genuine client on the built-in simulator).
    - ``split``: "train" (default), "val" or "test"; ``room_types``: subset of "kitchen",
      "living_room", "bedroom", "bathroom"; ``scenes``: explicit scene names (overrides both).
    - ``targets``: restrict the target types (default: all of the room type).
    - ``width``, ``height``: frame size (default 128×128; SAVN used 300×300 frames resized to
      224); ``depth``: add the depth observation.
    - ``max_steps``: episode step limit, an int or a mapping room type → int (default 100, 200
      in living rooms).
    - ``device``: torch device of the built-in simulator ("cpu", "cuda", "auto").
    - ``episodes``: fixed evaluation episodes instead of sampling — a list of dicts
      (``scene``, ``target``, ``position{x, z}``, ``rotation``, ``horizon``, ``l_opt``) or the
      name of a shipped set ("val", "test"); each reset takes the next one, in order (a
      seeded reset starts again from the first).
    - ``render_mode``: None or "rgb_array" (the egocentric frame).
    - ``controller_kwargs``, ``timeout``: ai2thor backend only: ``Controller`` arguments, and
      seconds to wait for the AI2-THOR process before restarting it.

    ``reset(options=...)`` accepts ``{"episode": dict}`` (play this episode),
    ``{"episode_index": i}`` (the i-th fixed episode) or ``{"scene": name}`` (sample in it).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        backend: str = "sim",
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
        controller_kwargs: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        EzPickle.__init__(
            self, backend=backend, split=split, room_types=room_types, scenes=scenes,
            targets=targets, width=width, height=height, depth=depth, max_steps=max_steps,
            device=device, episodes=episodes, render_mode=render_mode,
            controller_kwargs=controller_kwargs, timeout=timeout,
        )  # fmt: skip
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.backend_name = backend
        self.width, self.height, self.depth = int(width), int(height), bool(depth)
        self.max_steps = max_steps
        self.scenes = task.resolve_scenes(split, room_types, scenes)
        self.fixed_episodes = load_episode_list(episodes)
        self._backend = make_backend(
            backend, width=self.width, height=self.height, depth=self.depth, device=device,
            controller_kwargs=controller_kwargs, timeout=timeout,
        )  # fmt: skip
        self.sampler = task.SceneSampler(self.scenes, self._backend.pose_graph, targets)
        self.observation_space = make_observation_space(self.width, self.height, self.depth)
        self.action_space = spaces.Discrete(len(task.ACTIONS))
        self._embeddings = target_embeddings()
        self._next_fixed = 0
        self.episode: task.Episode | None = None
        self._event: NavEvent | None = None
        self._steps = 0
        self._limit = 0
        self._success = False
        self._restart = False
        self._last_action: int | None = None
        self.path: list[tuple[float, float, float, float]] = []

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._next_fixed = 0  # a seeded reset restarts the fixed episode sequence
        options = dict(options or {})
        self._restart = False
        next_fixed = self._next_fixed
        try:
            self._begin(self._choose(options))
        except BackendDied:  # the AI2-THOR process died: restart it and try once more
            restart = getattr(self._backend, "restart", None)
            if restart is None:
                raise
            restart()
            self._next_fixed = next_fixed
            self._begin(self._choose(options))
            self._restart = True
        return self._obs(), self._info()

    def _choose(self, options: Mapping[str, Any]) -> task.Episode:
        """The next episode: given in options, the next fixed one, or sampled."""
        if "episode" in options:
            return task.Episode.from_dict(options["episode"])
        if self.fixed_episodes is not None:
            i = int(options.get("episode_index", self._next_fixed))
            self._next_fixed = i + 1
            return self.fixed_episodes[i % len(self.fixed_episodes)]
        return self.sampler.sample(self.np_random, scene=options.get("scene"))

    def _begin(self, ep: task.Episode) -> None:
        be = self._backend
        if getattr(be, "scene", None) != parse_scene(ep.scene)[0] or be.last_event is None:
            be.reset(ep.scene)
        ev = be.step(
            "Teleport",
            position={"x": ep.x, "z": ep.z},
            rotation=ep.rotation,
            horizon=ep.horizon,
        )
        if not ev.success:
            raise ValueError(
                f"episode start pose ({ep.x}, {ep.z}) is not valid in {ep.scene}: "
                f"{ev.metadata.get('errorMessage')}"
            )
        if ep.l_opt is None:
            graph = be.pose_graph(ep.scene)
            ep = task.Episode(
                ep.scene, ep.target, ep.x, ep.z, ep.rotation, ep.horizon,
                graph.l_opt(graph.pose(ep.x, ep.z, ep.rotation, ep.horizon), ep.target), ep.id,
            )  # fmt: skip
            if be.last_event is not ev:  # the pose graph was read through the controller
                ev = be.step(
                    "Teleport", position={"x": ep.x, "z": ep.z}, rotation=ep.rotation,
                    horizon=ep.horizon,
                )  # fmt: skip
        self.episode = ep
        self._event = ev
        self._steps = 0
        self._limit = task.max_steps_for(ep.scene, self.max_steps)
        self._success = False
        self._last_action = None
        self.path = [ev.pose]

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.episode is None or self._event is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < len(task.ACTIONS):
            raise ValueError(f"action must be in [0, {len(task.ACTIONS)}), got {action!r}")
        visible_before = self.episode.target in self._event.visible_types
        self._restart = False
        self._steps += 1
        self._last_action = a
        name = task.ACTIONS[a]
        try:
            if a == task.DONE:
                ev = self._event.with_action(name, True)
            elif not task.look_allowed(a, self._event.pose[3]):
                msg = f"{name} failed: the camera horizon stays in {{0, 30}}"
                ev = self._event.with_action(name, False, msg)
            else:
                ev = self._backend.step(name)
        except BackendDied as e:
            return self._restart_backend(e)
        self._event = ev
        self.path.append(ev.pose)
        out = task.step_outcome(a, visible_before, self._steps, self._limit)
        self._success = out.success
        info = self._info(ended=out.terminated or out.truncated)
        return self._obs(), out.reward, out.terminated, out.truncated, info

    def _restart_backend(
        self, error: BackendDied
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """The backend died: restart it, truncate the episode, report it in info."""
        restart = getattr(self._backend, "restart", None)
        if restart is None:
            raise error
        restart()
        ep = self.episode
        ev = self._backend.step(
            "Teleport", position={"x": ep.x, "z": ep.z}, rotation=ep.rotation, horizon=ep.horizon
        )
        self._event = ev
        self._restart = True
        self._success = False
        return self._obs(), 0.0, False, True, self._info(ended=True)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._event is None:
            return None
        return np.array(self._event.frame, copy=True)

    def close(self) -> None:
        be = getattr(self, "_backend", None)
        if be is not None:
            be.stop()
        self._event = None

    # -- helpers ---------------------------------------------------------------------------------
    def _obs(self) -> dict[str, Any]:
        ev = self._event
        tid = task.TARGET_INDEX[self.episode.target]
        obs: dict[str, Any] = {"rgb": np.array(ev.frame, dtype=np.uint8, copy=True)}
        if self.depth:
            d = ev.depth_frame
            obs["depth"] = np.clip(d, 0.0, MAX_DEPTH).astype(np.float32)[..., None]
        obs["target"] = np.int64(tid)
        obs["target_embedding"] = np.array(self._embeddings[tid], dtype=np.float32)
        return obs

    def _info(self, ended: bool = False) -> dict[str, Any]:
        ep = self.episode
        l_opt = ep.l_opt
        return {
            "scene": ep.scene,
            "target": ep.target,
            "success": bool(self._success),
            "spl": task.spl(self._success, l_opt, self._steps) if ended else 0.0,
            "l_opt": -1 if l_opt is None else int(l_opt),
            "path_length": int(self._steps),
            "last_action_success": bool(self._event.success),
            "backend_restart": bool(self._restart),
        }

    @property
    def backend(self) -> Any:
        """The backend (controller contract) this environment drives."""
        return self._backend

    @property
    def target_visible(self) -> bool:
        """Whether an instance of the target type is visible now."""
        return self._event is not None and self.episode.target in self._event.visible_types

    def layout(self) -> dict[str, Any]:
        """Top-down layout of the current scene (bounds, walls, objects), for maps/videos."""
        return self._backend.layout()

    @property
    def last_action(self) -> str | None:
        return None if self._last_action is None else task.ACTIONS[self._last_action]
