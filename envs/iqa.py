"""``thorgym/IQA-v0``: interactive question answering (IQUAD V1), under its former names.

The task builds itself (:meth:`thorgym.tasks.iqa.IQATask.env_setup`: rules, Gymnasium
documentation, worlds as a ``WorldsSpec``, the ``semantic_map`` observation) and its table line is
a ``task_line``: ``gymnasium.make`` / ``make_vec`` go through the generic factories of
:mod:`thorgym.envs.task_env` onto the generic worlds of :mod:`thorgym.envs.worlds`. This module
only keeps the names older code uses, thin over the same set-up: :class:`IQAEnv`,
:class:`IQAVectorEnv`, :func:`make_iqa_vec`, :class:`IQASimWorlds`, :class:`IQAControllerWorlds`,
:func:`load_questions`, :func:`make_iqa_task`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import EzPickle

from thorgym.tasks import iqa
from thorgym.tasks.base import EpisodeFile
from thorgym.tasks.iqa import MAP_CELLS
from thorgym.tasks.iqa_vocab import MAP_CLASSES

from .task_env import TaskEnv, TaskVectorEnv, build, make_vector_env
from .task_env import autoreset_mode as _autoreset_mode
from .worlds import ControllerWorlds, SimWorlds

__all__ = [
    "IQAControllerWorlds", "IQAEnv", "IQASimWorlds", "IQAVectorEnv", "load_questions", "make_iqa_task",
    "make_iqa_vec",
]  # fmt: skip


# -- worlds (the generic ones with IQA's settings) -----------------------------------------------
class IQASimWorlds(SimWorlds):
    """N IQA worlds on one :class:`thorgym.sim.BatchedSimulator`: the generic
    :class:`~thorgym.envs.worlds.SimWorlds` with IQA's settings (90° turns, 0.25 m grid, field of
    view 60°, depth and the ``classes`` sensor)."""

    def __init__(self, num_worlds: int, *, width: int, height: int, device: str = "cpu") -> None:
        super().__init__(
            num_worlds, "FloorPlan1", width=width, height=height, depth=True, device=device,
            grid_size=iqa.GRID_SIZE, visibility_distance=iqa.VISIBILITY_DISTANCE,
            field_of_view=iqa.FIELD_OF_VIEW, rotate_step_degrees=iqa.ROTATE_DEGREES, classes=MAP_CLASSES,
        )  # fmt: skip


class IQAControllerWorlds(ControllerWorlds):
    """One IQA world behind an ``ai2thor.controller.Controller`` already started (the generic
    :class:`~thorgym.envs.worlds.ControllerWorlds`; set-up by ``InitialRandomSpawn`` and
    ``RemoveFromScene``, Open/Close at ``x=y=0.5``)."""

    def __init__(self, controller: Any) -> None:
        from .backends import AI2ThorBackend

        init = controller.initialization_parameters
        be = AI2ThorBackend(
            width=int(init.get("width", iqa.FRAME_SIZE)), height=int(init.get("height", iqa.FRAME_SIZE)),
            depth=True, field_of_view=float(init.get("fieldOfView", iqa.FIELD_OF_VIEW)),
            grid_size=float(init.get("gridSize", iqa.GRID_SIZE)),
            rotate_step_degrees=float(init.get("rotateStepDegrees", iqa.ROTATE_DEGREES)),
            instance_segmentation=True, controller=controller,
        )  # fmt: skip
        super().__init__(be, classes=MAP_CLASSES)


# -- the semantic-map observation (now the task's "semantic_map" sensor) ---------------------------
class MapObservation:
    """HIMN's top-down map (:mod:`thorgym.tasks.iqa_map`) as a batched observation, for code that
    adds it to observations itself; the environments' ``semantic_map=True`` is the task's own
    ``semantic_map`` sensor (:class:`thorgym.tasks.iqa.IQATask`)."""

    def __init__(self, num_envs: int) -> None:
        from thorgym.tasks.iqa_map import NUM_CHANNELS, SemanticMap

        self.map = SemanticMap(num_envs, MAP_CELLS)
        self.channels = NUM_CHANNELS

    def space(self) -> Any:
        from gymnasium import spaces

        return spaces.Box(0, 1, (self.channels, MAP_CELLS, MAP_CELLS), np.uint8)

    def update(self, obs: dict[str, np.ndarray], new: np.ndarray) -> dict[str, np.ndarray]:
        """Batched obs (N, …): reset the maps of ``new`` episodes, then add every env's view."""
        import torch

        poses = torch.as_tensor(obs["pose"], dtype=torch.float32)
        ids = np.nonzero(new)[0]
        if len(ids):
            self.map.reset_around(torch.as_tensor(ids), poses[ids, :2])
        depth = torch.as_tensor(obs["depth"][..., 0])
        self.map.update(depth, torch.as_tensor(obs["classes"]).long(), poses, iqa.FIELD_OF_VIEW)
        return {**obs, "semantic_map": self.map.map.numpy().astype(np.uint8)}


def spaces_with(space: Any, map_space: Any) -> Any:
    from gymnasium import spaces

    return spaces.Dict({**space.spaces, "semantic_map": map_space})


# -- questions and the task ----------------------------------------------------------------------
def load_questions(split: str | None, questions: Any) -> list[iqa.Question]:
    """Questions from an explicit list/CSV path, else a shipped split ("seen", "unseen"), else
    the train CSV at ``train_csv`` (generate one with ``thorgym data iqa``)."""
    qs = iqa.load_questions(split, questions)
    if isinstance(qs, EpisodeFile):
        from thorgym.datasets.iqa import shipped_questions

        return shipped_questions(split)
    return qs


def make_iqa_task(
    questions: Sequence[iqa.Question],
    *,
    width: int,
    height: int,
    depth: bool,
    classes: bool,
    max_steps: int,
    track_paths: bool = False,
) -> iqa.IQATask:
    from thorgym.datasets.iqa import question_tokens

    sensors = ["rgb"] + (["depth"] if depth else []) + (["classes"] if classes else [])
    return iqa.IQATask(questions, embed=question_tokens, sensors=sensors, frame_shape=(height, width),
                       max_steps=max_steps, track_paths=track_paths)  # fmt: skip


# -- environments --------------------------------------------------------------------------------
class IQAEnv(TaskEnv, EzPickle):
    __doc__ = iqa.IQATask.__doc__  # the Gymnasium documentation lives with the task

    def __init__(
        self,
        split: str = "seen",
        questions: Any = None,
        backend: str = "sim",
        width: int = iqa.FRAME_SIZE,
        height: int = iqa.FRAME_SIZE,
        depth: bool = False,
        classes: bool = False,
        max_steps: int = iqa.MAX_STEPS,
        device: str = "cpu",
        sample: bool = False,
        render_mode: str | None = None,
        controller_kwargs: Mapping[str, Any] | None = None,
        semantic_map: bool = False,
    ) -> None:
        EzPickle.__init__(self, split=split, questions=questions, backend=backend, width=width, height=height,
                          depth=depth, classes=classes, max_steps=max_steps, device=device, sample=sample,
                          render_mode=render_mode, controller_kwargs=controller_kwargs,
                          semantic_map=semantic_map)  # fmt: skip
        parts = build(
            iqa.IQATask, 1, backend, device, False, controller_kwargs, split=split, questions=questions,
            width=width, height=height, depth=depth, classes=classes, max_steps=max_steps, sample=sample,
            semantic_map=semantic_map,
        )  # fmt: skip
        super().__init__(*parts, render_mode)


class IQAVectorEnv(TaskVectorEnv):
    """N IQA environments on one batched simulator (see :class:`IQAEnv`); sub-environment i plays
    test questions i, i+N, … in order, or samples train questions."""

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "seen",
        questions: Any = None,
        width: int = iqa.FRAME_SIZE,
        height: int = iqa.FRAME_SIZE,
        depth: bool = False,
        classes: bool = False,
        max_steps: int = iqa.MAX_STEPS,
        device: str = "cpu",
        sample: bool = False,
        render_mode: str | None = None,
        autoreset_mode: str = "NextStep",
        backend: str = "sim",
        semantic_map: bool = False,
    ) -> None:
        if backend != "sim":
            raise ValueError("IQAVectorEnv runs on the built-in simulator; use make_iqa_vec for 'ai2thor'")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        parts = build(
            iqa.IQATask, num_envs, "sim", device, split=split, questions=questions, width=width,
            height=height, depth=depth, classes=classes, max_steps=max_steps, sample=sample,
            semantic_map=semantic_map,
        )  # fmt: skip
        super().__init__(*parts, render_mode, _autoreset_mode(autoreset_mode))

    @property
    def sim(self) -> Any:
        return self.worlds.sim


def make_iqa_vec(num_envs: int = 1, backend: str = "sim", **kwargs: Any) -> Any:
    """The batched IQA env on the built-in simulator (:class:`IQAVectorEnv`), an
    ``AsyncVectorEnv`` of :class:`IQAEnv` for ``backend="ai2thor"`` (what
    ``gymnasium.make_vec("thorgym/IQA-v0")`` builds through the generic factory)."""
    if backend == "sim":
        kwargs.pop("controller_kwargs", None)
        return IQAVectorEnv(num_envs=num_envs, **kwargs)
    return make_vector_env(num_envs, iqa.IQATask, backend=backend, **kwargs)
