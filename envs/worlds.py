"""Navigation worlds, and :func:`build_worlds`: the worlds a task's ``WorldsSpec`` asks for.

The navigation worlds are the batched backend interface a one-agent task drives.

A task (``thorgym.tasks``) is bound to one worlds object and sees a backend only through it:

- ``num_worlds``; ``load(i, scene)``; ``teleport(i, x, z, rotation, horizon) -> (ok, message)``;
- ``move(nav) -> (N,) bool``: one ``thorgym.sim.NAV_ACTIONS`` index per world (−1: nothing);
- ``poses() -> (N, 4)`` [x, z, rotation, horizon]; ``sensors(names) -> dict`` of (N, …) arrays;
- ``target_visible(types) -> (N,) bool``: an instance of ``types[i]`` is visible in world i;
- ``pose_graph(scene)``; ``layout(i)``; ``close()``.

Implementations:

- :class:`SimWorlds`: N worlds of one :class:`thorgym.sim.BatchedSimulator` (one render per step).
- :class:`ControllerWorlds`: one world behind the controller contract (``envs.backends``: the
  built-in simulator's single-world backend or the genuine ai2thor client); it can ``restart()``.
- ``thorgym.envs.cached.PoseTableWorlds``: static scenes as lookup tables (pose graph, visibility
  and frozen-backbone features per pose), no rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from thorgym.sim.scenes import parse_scene
from thorgym.tasks import objectnav as nav
from thorgym.tasks.base import WorldsSpec

from .multi_agent_worlds import MultiAgentControllerWorlds, MultiAgentSimWorlds

FRAME_SENSORS = ("rgb", "depth")  # the frames the navigation worlds render

__all__ = ["ControllerWorlds", "SimWorlds", "build_worlds"]


class SimWorlds:
    """N navigation worlds on one :class:`thorgym.sim.BatchedSimulator` (ObjectNav's settings by
    default: 45° turns, 0.25 m grid, AI2-THOR's visibility rule at ``visibility_distance``).

    Args:
        num_worlds: N; scene: the scene every world starts in (episodes load their own).
        width, height: frame size; depth: also render depth frames.
        device: torch device of the simulator; compile: torch.compile its ray caster.
        grid_size, visibility_distance, field_of_view, rotate_step_degrees: the simulator's
            settings (``pose_graph`` assumes ObjectNav's 45° headings).
    """

    def __init__(
        self,
        num_worlds: int,
        scene: str,
        *,
        width: int,
        height: int,
        depth: bool = False,
        device: str = "cpu",
        compile: bool = False,
        grid_size: float = nav.GRID_SIZE,
        visibility_distance: float = nav.VISIBILITY_DISTANCE,
        field_of_view: float = nav.FIELD_OF_VIEW,
        rotate_step_degrees: float = nav.ROTATE_DEGREES,
    ) -> None:
        from .backends import objectnav_simulator

        self.sim = objectnav_simulator(
            [scene] * num_worlds, width=width, height=height, depth=depth, device=device,
            grid_size=grid_size, visibility_distance=visibility_distance, field_of_view=field_of_view,
            compile=compile, rotate_step_degrees=rotate_step_degrees,
        )  # fmt: skip
        self.num_worlds = num_worlds
        self.width, self.height, self.depth = width, height, depth
        self.grid_size = grid_size
        self.visibility_distance = visibility_distance
        self.field_of_view = field_of_view
        self._types: dict[str, int] = {}
        self._type_ids = np.full((num_worlds, 1), -1, dtype=np.int64)  # (N, O) type id per object
        self._indexed: list[tuple[int, int]] = [(-1, -1)] * num_worlds  # (id(world), objects_version)
        for i in range(num_worlds):
            self._index_types(i)

    def _index_types(self, i: int) -> None:
        world = self.sim.worlds[i]
        self._indexed[i] = (id(world), world.objects_version)
        objs = world.objects
        if self._type_ids.shape[1] < len(objs):
            grown = np.full((self.num_worlds, len(objs)), -1, dtype=np.int64)
            grown[:, : self._type_ids.shape[1]] = self._type_ids
            self._type_ids = grown
        self._type_ids[i] = -1
        for k, o in enumerate(objs):
            self._type_ids[i, k] = self._types.setdefault(o.object_type, len(self._types))

    def load(self, i: int, scene: str) -> None:
        scene = parse_scene(scene)[0]
        if self.sim.worlds[i].spec.name != scene:
            self.sim.reset_world(i, scene)
            self._index_types(i)

    def teleport(self, i: int, x: float, z: float, rotation: float, horizon: float) -> tuple[bool, str]:
        ok = bool(self.sim.teleport([i], [x], [z], [float(rotation) % 360.0], [horizon])[0])
        why = f"({x:g}, {z:g}) is not a free agent position, or horizon {horizon:g} is out of range"
        return ok, "" if ok else why

    def move(self, nav_actions: np.ndarray) -> np.ndarray:
        import torch

        ok = self.sim.step_nav(torch.as_tensor(np.asarray(nav_actions, dtype=np.int64)))
        return ok[:, 0].cpu().numpy()

    def poses(self) -> np.ndarray:
        return self.sim.agent_poses().cpu().numpy().astype(np.float64)

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        if "features" in names:
            raise ValueError("the simulator renders frames; 'features' come from thorgym.envs.cached")
        out = self.sim.observe()
        frames = {"rgb": out.rgb[:, 0].cpu().numpy()}
        if out.depth is not None:
            frames["depth"] = out.depth[:, 0].cpu().numpy()
        return frames

    def target_visible(self, types: Sequence[str | None]) -> np.ndarray:
        for i, w in enumerate(self.sim.worlds):  # objects added or removed (spawn duplicates, removal)
            if self._indexed[i] != (id(w), w.objects_version):
                self._index_types(i)
        vis = self.sim.visible()[:, 0].cpu().numpy()
        want = np.array([self._types.get(t, -2) if t is not None else -2 for t in types])
        w = min(vis.shape[1], self._type_ids.shape[1])
        return (vis[:, :w] & (self._type_ids[:, :w] == want[:, None])).any(1)

    def pose_graph(self, scene: str) -> nav.PoseGraph:
        return nav.build_pose_graph(
            scene,
            field_of_view=self.field_of_view,
            visibility_distance=self.visibility_distance,
            aspect=self.width / self.height,
            grid_size=self.grid_size,
        )

    def layout(self, i: int) -> dict[str, Any]:
        from .backends import sim_layout

        return sim_layout(self.sim.worlds[i])

    def close(self) -> None:
        self.sim = None


class ControllerWorlds:
    """One navigation world behind the controller contract (see ``thorgym.envs.backends``).

    The backend's events carry the frame, depth and ``visible_types``; a dead AI2-THOR process
    raises ``BackendDied`` from any call, and :meth:`restart` starts a fresh one.
    """

    num_worlds = 1

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.event: Any = None

    def load(self, i: int, scene: str) -> None:
        be = self.backend
        if getattr(be, "scene", None) != parse_scene(scene)[0] or be.last_event is None:
            self.event = be.reset(scene)

    def teleport(self, i: int, x: float, z: float, rotation: float, horizon: float) -> tuple[bool, str]:
        ev = self.backend.step("Teleport", position={"x": x, "z": z}, rotation=rotation, horizon=horizon)
        if ev.success:
            self.event = ev
        return ev.success, str(ev.metadata.get("errorMessage") or "")

    def move(self, nav_actions: np.ndarray) -> np.ndarray:
        from thorgym.sim.batch import NAV_ACTIONS

        a = int(np.asarray(nav_actions).reshape(-1)[0])
        if a < 0:
            return np.ones(1, dtype=bool)
        self.event = self.backend.step(NAV_ACTIONS[a])
        return np.array([self.event.success])

    def poses(self) -> np.ndarray:
        return np.array([self.event.pose], dtype=np.float64)

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        if "features" in names:
            raise ValueError("a controller renders frames; 'features' come from thorgym.envs.cached")
        frames = {"rgb": np.array(self.event.frame, dtype=np.uint8, copy=True)[None]}
        if self.event.depth_frame is not None:
            frames["depth"] = np.asarray(self.event.depth_frame, dtype=np.float32)[None]
        return frames

    def target_visible(self, types: Sequence[str | None]) -> np.ndarray:
        return np.array([types[0] in self.event.visible_types])

    def pose_graph(self, scene: str) -> nav.PoseGraph:
        graph = self.backend.pose_graph(scene)
        if self.event is not None and self.backend.last_event is not self.event:
            # the graph was read through the controller (teleports): go back to where we were
            x, z, rot, hor = self.event.pose
            self.event = self.backend.step("Teleport", position={"x": x, "z": z}, rotation=rot, horizon=hor)
        return graph

    def layout(self, i: int) -> dict[str, Any]:
        return self.backend.layout()

    def restart(self) -> None:
        self.backend.restart()
        self.event = self.backend.last_event

    def close(self) -> None:
        self.backend.stop()
        self.event = None


def build_worlds(
    spec: WorldsSpec,
    num_worlds: int,
    *,
    backend: str = "sim",
    device: str = "cpu",
    compile: bool = False,
    controller_kwargs: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> SimWorlds | ControllerWorlds | MultiAgentSimWorlds | MultiAgentControllerWorlds:
    """The worlds a task's :class:`~thorgym.tasks.base.WorldsSpec` asks for: N worlds of one
    batched simulator (``backend="sim"``; ``compile``: torch.compile its ray caster), or one world
    behind the genuine ai2thor client (``backend="ai2thor"``; ``controller_kwargs`` are the
    ``Controller``'s, ``timeout`` the seconds a one-agent backend waits before restarting it).
    One agent per world: the navigation worlds of this module; more: those of
    :mod:`thorgym.envs.multi_agent_worlds`."""
    unknown = [s for s in spec.sensors if s not in FRAME_SENSORS]
    if unknown:
        raise ValueError(f"the generic worlds render {FRAME_SENSORS}, not {unknown}")
    if not isinstance(num_worlds, int) or num_worlds < 1:
        raise ValueError(f"num_worlds must be a positive integer, got {num_worlds!r}")
    if spec.agents < 1:
        raise ValueError(f"a world needs at least one agent, the task asks for {spec.agents}")
    if backend not in ("sim", "ai2thor"):
        raise ValueError(f"unknown backend {backend!r}: use 'sim' (built-in) or 'ai2thor'")
    if backend == "ai2thor" and num_worlds != 1:
        raise ValueError("backend='ai2thor' drives one world per process; use an AsyncVectorEnv of them")
    depth = "depth" in spec.sensors
    if spec.agents > 1:
        return _multi_agent_worlds(spec, num_worlds, backend, device, controller_kwargs)
    settings = {
        "grid_size": spec.grid_size,
        "visibility_distance": spec.visibility_distance,
        "field_of_view": spec.field_of_view,
        "rotate_step_degrees": spec.rotate_step_degrees,
    }
    if backend == "sim":
        return SimWorlds(
            num_worlds, spec.scene, width=spec.width, height=spec.height, depth=depth, device=device,
            compile=compile, **settings,
        )  # fmt: skip
    from .backends import make_backend

    return ControllerWorlds(make_backend(
        backend, width=spec.width, height=spec.height, depth=depth, device=device,
        controller_kwargs=controller_kwargs, timeout=timeout, **settings,
    ))  # fmt: skip


def _multi_agent_worlds(
    spec: WorldsSpec, num_worlds: int, backend: str, device: str, controller_kwargs: Mapping[str, Any] | None
) -> MultiAgentSimWorlds | MultiAgentControllerWorlds:
    if backend == "sim":
        return MultiAgentSimWorlds(num_worlds, spec, device=device)
    from ai2thor.controller import Controller

    kw = dict(controller_kwargs or {})
    kw.update(
        agentCount=spec.agents,
        width=spec.width,
        height=spec.height,
        gridSize=spec.grid_size,
        rotateStepDegrees=spec.rotate_step_degrees,
        fieldOfView=spec.field_of_view,
        visibilityDistance=spec.visibility_distance,
        renderDepthImage="depth" in spec.sensors,
        makeAgentsVisible=spec.agents_visible,
        scene=kw.get("scene", spec.scene),
    )
    return MultiAgentControllerWorlds(Controller(**kw), spec.agents, kw["scene"])
