"""FurnLift and FurnMove environments under their names (thin: the generic path builds them).

The tasks build themselves (``FurnLiftTask.env_setup``, ``FurnMoveTask.env_setup``, with their
Gymnasium documentation), their worlds are the generic two-agent ones
(:mod:`thorgym.envs.multi_agent_worlds`; ``FurnitureSimWorlds`` / ``FurnitureControllerWorlds``
are those classes' former names) and ``thorgym.envs.task_env.make_env`` / ``make_parallel_env``
/ ``make_vector_env`` make them from a registration line alone. This module keeps the names:

- ``furnlift_parallel_env`` / ``furnmove_parallel_env`` (PettingZoo), ``FurnLiftEnv`` /
  ``FurnMoveEnv`` (Gymnasium, joint dict action; ids ``thorgym/FurnLift-v0``,
  ``thorgym/FurnMove-v0``) and ``make_furniture_vec`` (``gymnasium.make_vec``, natively batched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gymnasium.utils import EzPickle

from thorgym.tasks import furniture as fur
from thorgym.tasks.base import WorldsSpec

from .multi_agent import MultiAgentTaskEnv, MultiAgentTaskVectorEnv, TaskParallelEnv
from .multi_agent_worlds import MultiAgentControllerWorlds, MultiAgentSimWorlds
from .task_env import build

__all__ = [
    "FurnLiftEnv",
    "FurnMoveEnv",
    "FurnitureControllerWorlds",
    "FurnitureSimWorlds",
    "furnlift_parallel_env",
    "furnmove_parallel_env",
    "make_furniture_vec",
]


class FurnitureSimWorlds(MultiAgentSimWorlds):
    """The generic two-agent worlds with the furniture tasks' settings, under their former name
    and arguments (90° turns, 0.25 m grid; ``visibility_distance`` FurnLift's 1.25 m)."""

    def __init__(
        self,
        num_worlds: int,
        *,
        width: int = fur.FRAME_SIZE,
        height: int = fur.FRAME_SIZE,
        depth: bool = False,
        agents_visible: bool = True,
        visibility_distance: float = fur.VISIBILITY_DISTANCE,
        device: str = "cpu",
        scene: str = "FloorPlan201",
    ) -> None:
        spec = WorldsSpec(
            scene, width, height, ("rgb", "depth") if depth else ("rgb",), grid_size=fur.GRID_SIZE,
            rotate_step_degrees=fur.ROTATE_DEGREES, field_of_view=fur.FIELD_OF_VIEW,
            visibility_distance=visibility_distance, agents=len(fur.AGENTS), agents_visible=agents_visible,
        )  # fmt: skip
        super().__init__(num_worlds, spec, device=device)


FurnitureControllerWorlds = MultiAgentControllerWorlds  # former name (a controller with agentCount=2)


# -- constructors --------------------------------------------------------------------------------
TASKS = {"furnlift": fur.FurnLiftTask, "furnmove": fur.FurnMoveTask}


class _FurnitureEnv(MultiAgentTaskEnv, EzPickle):
    task_name = "furnlift"

    def __init__(
        self,
        split: str = "train",
        backend: str = "sim",
        width: int = fur.FRAME_SIZE,
        height: int = fur.FRAME_SIZE,
        depth: bool = False,
        top_down_map: bool = False,
        agents_visible: bool = True,
        max_steps: int = fur.MAX_STEPS,
        device: str = "cpu",
        sample: bool = False,
        render_mode: str | None = None,
        controller_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        EzPickle.__init__(
            self, split=split, backend=backend, width=width, height=height, depth=depth,
            top_down_map=top_down_map, agents_visible=agents_visible, max_steps=max_steps, device=device,
            sample=sample, render_mode=render_mode, controller_kwargs=controller_kwargs,
        )  # fmt: skip
        settings = FurnitureSettings(
            split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample,
            controller_kwargs,
        )  # fmt: skip
        super().__init__(*settings.parts(self.task_name), render_mode)


class FurnLiftEnv(_FurnitureEnv):
    __doc__ = fur.FurnLiftTask.__doc__  # the Gymnasium documentation lives with the task
    task_name = "furnlift"


class FurnMoveEnv(_FurnitureEnv):
    __doc__ = fur.FurnMoveTask.__doc__
    task_name = "furnmove"


@dataclass(frozen=True)
class FurnitureSettings:
    """What a furniture environment is made of (the constructors' arguments, documented there)."""

    split: str = "train"
    backend: str = "sim"
    width: int = fur.FRAME_SIZE
    height: int = fur.FRAME_SIZE
    depth: bool = False
    top_down_map: bool = False
    agents_visible: bool = True
    max_steps: int = fur.MAX_STEPS
    device: str = "cpu"
    sample: bool = False
    controller_kwargs: Mapping[str, Any] | None = None

    def parts(self, task_name: str, num_worlds: int = 1) -> tuple[Any, Any, Sequence[Any] | None]:
        """(task, worlds, fixed episodes or None): the task class's set-up on the generic worlds."""
        if task_name not in TASKS:
            raise ValueError(f"unknown furniture task {task_name!r}: choose from {tuple(TASKS)}")
        return build(
            TASKS[task_name], num_worlds, self.backend, self.device, controller_kwargs=self.controller_kwargs,
            split=self.split, width=self.width, height=self.height, depth=self.depth,
            top_down_map=self.top_down_map, agents_visible=self.agents_visible, max_steps=self.max_steps,
            sample=self.sample,
        )  # fmt: skip


def furnlift_parallel_env(
    split: str = "train",
    backend: str = "sim",
    width: int = fur.FRAME_SIZE,
    height: int = fur.FRAME_SIZE,
    depth: bool = False,
    top_down_map: bool = False,
    agents_visible: bool = True,
    max_steps: int = fur.MAX_STEPS,
    device: str = "cpu",
    sample: bool = False,
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
) -> TaskParallelEnv:
    """FurnLift as a PettingZoo ``ParallelEnv`` (agents "agent_0", "agent_1"; see FurnLiftEnv)."""
    settings = FurnitureSettings(
        split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample,
        controller_kwargs,
    )  # fmt: skip
    return TaskParallelEnv(*settings.parts("furnlift"), render_mode)


def furnmove_parallel_env(
    split: str = "train",
    backend: str = "sim",
    width: int = fur.FRAME_SIZE,
    height: int = fur.FRAME_SIZE,
    depth: bool = False,
    top_down_map: bool = False,
    agents_visible: bool = True,
    max_steps: int = fur.MAX_STEPS,
    device: str = "cpu",
    sample: bool = False,
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
) -> TaskParallelEnv:
    """FurnMove as a PettingZoo ``ParallelEnv`` (agents "agent_0", "agent_1"; see FurnMoveEnv)."""
    settings = FurnitureSettings(
        split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample,
        controller_kwargs,
    )  # fmt: skip
    return TaskParallelEnv(*settings.parts("furnmove"), render_mode)


def make_furniture_vec(
    num_envs: int = 1,
    task: str = "furnlift",
    split: str = "train",
    backend: str = "sim",
    width: int = fur.FRAME_SIZE,
    height: int = fur.FRAME_SIZE,
    depth: bool = False,
    top_down_map: bool = False,
    agents_visible: bool = True,
    max_steps: int = fur.MAX_STEPS,
    device: str = "cpu",
    sample: bool = False,
    render_mode: str | None = None,
    autoreset_mode: str = "NextStep",
    controller_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """The furniture vector env by task name (``gymnasium.make_vec`` builds the same through
    ``thorgym.envs.task_env.make_vector_env``): natively batched on the built-in simulator; an
    ``AsyncVectorEnv`` of single envs for ``backend="ai2thor"``."""
    if backend == "ai2thor":
        import functools

        import gymnasium as gym

        cls = FurnLiftEnv if task == "furnlift" else FurnMoveEnv
        fn = functools.partial(
            cls, split=split, backend="ai2thor", width=width, height=height, depth=depth,
            top_down_map=top_down_map, agents_visible=agents_visible, max_steps=max_steps, sample=sample,
            render_mode=render_mode, controller_kwargs=controller_kwargs,
        )  # fmt: skip
        mode = gym.vector.AutoresetMode(autoreset_mode)
        return gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=mode)
    settings = FurnitureSettings(
        split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample, None
    )
    return MultiAgentTaskVectorEnv(*settings.parts(task, num_envs), render_mode, autoreset_mode)


def make_furnlift_vec(num_envs: int = 1, **kwargs: Any) -> Any:
    return make_furniture_vec(num_envs, "furnlift", **kwargs)


def make_furnmove_vec(num_envs: int = 1, **kwargs: Any) -> Any:
    return make_furniture_vec(num_envs, "furnmove", **kwargs)
