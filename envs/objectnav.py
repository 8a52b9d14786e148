"""``thorgym/ObjectNav-v0`` and ``-v1``: SAVN-style object navigation as Gymnasium environments.

The rules and the Gymnasium documentation live in :class:`thorgym.tasks.objectnav.ObjectNavTask`,
which builds itself from an environment's arguments (``env_setup``); :class:`ObjectNavEnv` is that
set-up on the worlds of :func:`thorgym.envs.worlds.build_worlds` in the generic
:class:`~thorgym.envs.task_env.TaskEnv` — what ``thorgym.envs.task_env.make_env`` (the table
lines of ``thorgym/ObjectNav-v0`` / ``-v1``) builds — plus the attributes older code reads
(``scenes``, ``version``, …).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import EzPickle

from thorgym.tasks import objectnav as task
from thorgym.tasks.objectnav import EMBEDDING_BOUND, MAX_DEPTH

from .task_env import TaskEnv, build

__all__ = [
    "EMBEDDING_BOUND",
    "MAX_DEPTH",
    "ObjectNavEnv",
    "load_episode_list",
    "make_objectnav_task",
    "target_embeddings",
]


def target_embeddings() -> np.ndarray:
    """(len(TARGET_TYPES), 50) float32 GloVe embeddings of the target types (read-only; the
    task's shipped table, :func:`thorgym.tasks.objectnav.target_embeddings`)."""
    return task.target_embeddings()


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
    __doc__ = task.ObjectNavTask.__doc__  # the Gymnasium documentation lives with the task

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
        parts = build(
            task.ObjectNavTask, 1, backend, device, False, controller_kwargs, timeout, split=split,
            room_types=room_types, scenes=scenes, targets=targets, width=width, height=height, depth=depth,
            max_steps=max_steps, episodes=episodes, version=version,
        )  # fmt: skip
        self.scenes = parts[0].scenes
        super().__init__(*parts, render_mode)
