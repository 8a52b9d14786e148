"""``thorgym/ObjectNav-v0`` and ``-v1``: SAVN-style object navigation as Gymnasium environments.

The rules live in :class:`thorgym.tasks.objectnav.ObjectNavTask`; this module only chooses the
backend's worlds and hands both to the generic adapters of :mod:`thorgym.envs.task_env`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import EzPickle

from thorgym.tasks import objectnav as task
from thorgym.tasks.objectnav import EMBEDDING_BOUND, MAX_DEPTH

from .backends import make_backend
from .task_env import TaskEnv
from .worlds import ControllerWorlds, SimWorlds

__all__ = [
    "EMBEDDING_BOUND",
    "MAX_DEPTH",
    "ObjectNavEnv",
    "load_episode_list",
    "make_objectnav_task",
    "target_embeddings",
]


def target_embeddings() -> np.ndarray:
    """(len(TARGET_TYPES), 50) float32 GloVe embeddings of the target types (read-only)."""
    from thorgym.datasets.objectnav_embeddings import embed_types

    return embed_types(task.TARGET_TYPES)


def load_episode_list(episodes: Any, version: str = "v0") -> list[task.Episode] | None:
    """Fixed episodes from a list of dicts / Episodes, or a shipped set's name ("val", "test")."""
    if episodes is None:
        return None
    if isinstance(episodes, str):
        from thorgym.datasets.objectnav import load_episodes

        episodes = load_episodes(episodes, version=version)
    out = [task.Episode.from_dict(e) for e in episodes]
    if not out:
        raise ValueError("episodes must contain at least one episode")
    return out


def make_objectnav_task(
    *,
    version: str,
    split: str,
    room_types: Sequence[str] | str | None,
    scenes: Sequence[str] | str | None,
    targets: Sequence[str] | None,
    width: int,
    height: int,
    depth: bool,
    max_steps: int | Mapping[str, int] | None,
    track_paths: bool = False,
    sensors: Sequence[str] | None = None,
    feature_dim: int = 0,
) -> task.ObjectNavTask:
    """The ObjectNav task of an environment's arguments (validated)."""
    if sensors is None:
        sensors = ("rgb", "depth") if depth else ("rgb",)
    return task.ObjectNavTask(
        task.resolve_scenes(split, room_types, scenes),
        embeddings=target_embeddings(),
        version=version,
        targets=targets,
        max_steps=max_steps,
        sensors=sensors,
        frame_shape=(int(height), int(width)),
        feature_dim=feature_dim,
        track_paths=track_paths,
    )


class ObjectNavEnv(TaskEnv, EzPickle):
    """Object navigation in AI2-THOR scenes, SAVN's setting (Wortsman et al., CVPR 2019).

    ## Description
    The agent starts at a random reachable pose of a room (heading a multiple of 45°, camera
    level) and must find an instance of the target object type: end the episode with ``Done``
    while one is visible (AI2-THOR's rule: in frame, unobstructed, within 1.5 m of the agent's
    central vertical axis). ``thorgym/ObjectNav-v1`` is SAVN's protocol: the start may be any
    reachable pose, even one that already sees the target (L_opt = 1). ``thorgym/ObjectNav-v0``
    (``version="v0"``) keeps thorgym's first protocol: starts never see the target.
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
    - ``version``: "v1" (SAVN's protocol; the ``thorgym/ObjectNav-v1`` id) or "v0".
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
      name of a shipped set of this version ("val", "test"); each reset takes the next one, in
      order (a seeded reset starts again from the first).
    - ``render_mode``: None or "rgb_array" (the egocentric frame).
    - ``controller_kwargs``, ``timeout``: ai2thor backend only: ``Controller`` arguments, and
      seconds to wait for the AI2-THOR process before restarting it.

    ``reset(options=...)`` accepts ``{"episode": dict}`` (play this episode),
    ``{"episode_index": i}`` (the i-th fixed episode) or ``{"scene": name}`` (sample in it).
    """

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
        version: str = "v0",
    ) -> None:
        EzPickle.__init__(
            self, backend=backend, split=split, room_types=room_types, scenes=scenes,
            targets=targets, width=width, height=height, depth=depth, max_steps=max_steps,
            device=device, episodes=episodes, render_mode=render_mode,
            controller_kwargs=controller_kwargs, timeout=timeout, version=version,
        )  # fmt: skip
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.backend_name = backend
        self.max_steps = max_steps
        self.version = version
        self.width, self.height, self.depth = int(width), int(height), bool(depth)
        nav_task = make_objectnav_task(
            version=version, split=split, room_types=room_types, scenes=scenes, targets=targets,
            width=width, height=height, depth=depth, max_steps=max_steps, track_paths=True,
        )  # fmt: skip
        self.scenes = nav_task.scenes
        fixed = load_episode_list(episodes, version)
        if backend == "sim":  # the batched simulator with one world: the vector env's code path
            worlds: Any = SimWorlds(1, self.scenes[0], width=self.width, height=self.height,
                                    depth=self.depth, device=device)  # fmt: skip
        else:
            worlds = ControllerWorlds(make_backend(
                backend, width=self.width, height=self.height, depth=self.depth, device=device,
                controller_kwargs=controller_kwargs, timeout=timeout,
            ))  # fmt: skip
        super().__init__(nav_task, worlds, fixed, render_mode)
