"""Natively batched ``thorgym/ObjectNav-v0``/``-v1`` on the built-in simulator, under its former names.

``gymnasium.make_vec("thorgym/ObjectNav-v1", num_envs=N)`` builds, through the generic
``thorgym.envs.task_env.make_vector_env``, one :class:`thorgym.envs.task_env.TaskVectorEnv` over N
worlds of one :class:`thorgym.sim.BatchedSimulator` (one batched render per step; pose tables with
``cached=True``), or an ``AsyncVectorEnv`` for ``backend="ai2thor"``; :class:`ObjectNavVectorEnv`
and :func:`make_objectnav_vec` are the same, by name. Sub-environment i behaves exactly as
``ObjectNavEnv`` reset with seed ``seed + i``: both run the same task code on the same worlds.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, VectorEnv

from thorgym.tasks.objectnav import ObjectNavTask

from .objectnav import ObjectNavEnv
from .task_env import TaskVectorEnv, build
from .task_env import autoreset_mode as _autoreset_mode

__all__ = ["ObjectNavVectorEnv", "make_objectnav_vec"]


class ObjectNavVectorEnv(TaskVectorEnv):
    """N ObjectNav environments on one batched simulator (see :class:`ObjectNavEnv` for the
    task, spaces and arguments; :class:`TaskVectorEnv` for autoreset and ``reset_mask``).

    Args:
        num_envs: number of sub-environments.
        compile: torch.compile the simulator's ray caster.
        episodes: fixed episodes; sub-environment i plays episodes i, i+N, i+2N, … in turn.
        Other arguments as :class:`ObjectNavEnv` (backend "sim" only).
    """

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
        version: str = "v0",
    ) -> None:
        if backend != "sim":
            raise ValueError(
                "ObjectNavVectorEnv runs on the built-in simulator only; for backend='ai2thor' "
                "use gymnasium.make_vec(..., backend='ai2thor') (an AsyncVectorEnv)"
            )
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.width, self.height, self.depth = int(width), int(height), bool(depth)
        parts = build(
            ObjectNavTask, num_envs, "sim", device, compile, split=split, room_types=room_types,
            scenes=scenes, targets=targets, width=width, height=height, depth=depth, max_steps=max_steps,
            episodes=episodes, version=version, track_paths=False,
        )  # fmt: skip
        self.scenes = parts[0].scenes
        super().__init__(*parts, render_mode, autoreset_mode)

    @property
    def sim(self) -> Any:
        """The batched simulator behind the worlds."""
        return self.worlds.sim


def make_objectnav_vec(
    num_envs: int = 1,
    backend: str = "sim",
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    **kwargs: Any,
) -> VectorEnv:
    """The former ``vector_entry_point`` of ``thorgym/ObjectNav-v*`` (now the generic
    ``thorgym.envs.task_env.make_vector_env``, which builds the same): the batched env on the
    built-in simulator (or on cached per-pose features with ``cached=True``), an
    ``AsyncVectorEnv`` of :class:`ObjectNavEnv` for ``backend="ai2thor"``."""
    if backend == "sim":
        kwargs.pop("controller_kwargs", None)  # ai2thor-only arguments, as ObjectNavEnv ignores
        kwargs.pop("timeout", None)
        if kwargs.pop("cached", False):
            from .cached import CachedObjectNavVectorEnv

            return CachedObjectNavVectorEnv(num_envs, autoreset_mode=autoreset_mode, **kwargs)
        return ObjectNavVectorEnv(num_envs, autoreset_mode=autoreset_mode, **kwargs)
    if backend == "ai2thor":
        kwargs.pop("compile", None)
        kwargs.pop("cached", None)
        fn = functools.partial(ObjectNavEnv, backend="ai2thor", **kwargs)
        return gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=_autoreset_mode(autoreset_mode))
    raise ValueError(f"unknown backend {backend!r}: use 'sim' or 'ai2thor'")
