"""Navigation worlds, and :func:`build_worlds`: the worlds a task's ``WorldsSpec`` asks for.

The navigation worlds are the batched backend interface a one-agent task drives.

A task (``thorgym.tasks``) is bound to one worlds object and sees a backend only through it:

- ``num_worlds``; ``load(i, scene)``; ``teleport(i, x, z, rotation, horizon) -> (ok, message)``;
- ``move(nav) -> (N,) bool``: one ``thorgym.sim.NAV_ACTIONS`` index per world (−1: nothing);
- ``poses() -> (N, 4)`` [x, z, rotation, horizon]; ``sensors(names) -> dict`` of (N, …) arrays;
- ``target_visible(types) -> (N,) bool``: an instance of ``types[i]`` is visible in world i;
- ``pose_graph(scene)``; ``layout(i)``; ``close()``.

and, for tasks that set up and change their scenes (IQA), AI2-THOR's calls batched:

- ``configure(i, scene, random_spawn, remove_types)``: the scene in its initial state, then
  ``InitialRandomSpawn(**random_spawn)`` and ``RemoveFromScene`` of every instance of
  ``remove_types``; ``reachable(i) -> (K, 2)``: ``GetReachablePositions`` on the 0.25 m grid,
  sorted by x then z (both backends list the same positions in the same order);
- ``act(names) -> (ok (N,), objectIds (N,))``: one action name per world (None: nothing) — the
  navigation actions, or ``OpenObject`` / ``CloseObject`` at the image centre (``x=y=0.5``),
  reporting the object opened or closed ("" when none);
- ``objects(i) -> {objectId: ObjectState}`` (``thorgym.tasks.base.ObjectState``);
  ``visible_ids(i) -> set`` of visible objectIds; the ``classes`` sensor: per pixel, the index in
  ``WorldsSpec.classes`` of the type of the object seen there (instance segmentation).

Implementations:

- :class:`SimWorlds`: N worlds of one :class:`thorgym.sim.BatchedSimulator` (one render per step).
- :class:`ControllerWorlds`: one world behind the controller contract (``envs.backends``: the
  built-in simulator's single-world backend or the genuine ai2thor client); it can ``restart()``.
- ``thorgym.envs.cached.PoseTableWorlds``: static scenes as lookup tables (pose graph, visibility
  and frozen-backbone features per pose), no rendering (``WorldsSpec.pose_tables``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from thorgym.sim.scenes import parse_scene
from thorgym.tasks import objectnav as nav
from thorgym.tasks.base import ObjectState, WorldsSpec

from .multi_agent_worlds import MultiAgentControllerWorlds, MultiAgentSimWorlds

FRAME_SENSORS = ("rgb", "depth", "classes")  # the frames the worlds render

INTERACTIONS = ("OpenObject", "CloseObject")  # act(): at the image centre

__all__ = ["ControllerWorlds", "SimWorlds", "build_worlds", "sorted_positions"]


def sorted_positions(points: Any, grid_size: float) -> np.ndarray:
    """(K, 2) positions rounded to the grid, sorted by x then z: both backends list the same
    reachable positions in the same order."""
    p = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2) / grid_size) * grid_size
    p = np.unique(p, axis=0)
    return p[np.lexsort((p[:, 1], p[:, 0]))]


def _random_spawn_args(kw: Mapping[str, Any]) -> dict[str, Any]:
    """``World.random_spawn``'s arguments from AI2-THOR's ``InitialRandomSpawn`` keywords."""
    known = {"randomSeed", "numDuplicatesOfType", "excludedReceptacles", "excludedObjectIds"}
    unknown = set(kw) - known
    if unknown:
        raise ValueError(f"InitialRandomSpawn: unsupported arguments {sorted(unknown)}; use {sorted(known)}")
    dups = kw.get("numDuplicatesOfType")
    return {
        "seed": int(kw.get("randomSeed", 0)),
        "excluded_receptacles": kw.get("excludedReceptacles"),
        "excluded_object_ids": kw.get("excludedObjectIds"),
        "num_duplicates_of_type": None if dups is None else {d["objectType"]: int(d["count"]) for d in dups},
    }


class SimWorlds:
    """N navigation worlds on one :class:`thorgym.sim.BatchedSimulator` (ObjectNav's settings by
    default: 45° turns, 0.25 m grid, AI2-THOR's visibility rule at ``visibility_distance``).

    Args:
        num_worlds: N; scene: the scene every world starts in (episodes load their own).
        width, height: frame size; depth: also render depth frames.
        device: torch device of the simulator; compile: torch.compile its ray caster.
        grid_size, visibility_distance, field_of_view, rotate_step_degrees: the simulator's
            settings (``pose_graph`` assumes ObjectNav's 45° headings).
        classes: the types of the ``classes`` sensor (index 0: any other type); when given,
            instance segmentation is rendered.
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
        classes: Sequence[str] = (),
    ) -> None:
        from .backends import objectnav_simulator

        self.sim = objectnav_simulator(
            [scene] * num_worlds, width=width, height=height, depth=depth, device=device,
            grid_size=grid_size, visibility_distance=visibility_distance, field_of_view=field_of_view,
            compile=compile, rotate_step_degrees=rotate_step_degrees, instance_segmentation=bool(classes),
        )  # fmt: skip
        self.class_index = {t: k for k, t in enumerate(classes)}
        self._classes = np.zeros((num_worlds, 1), dtype=np.uint8)  # (N, O) class per object
        self._reachable: list[np.ndarray] = [np.zeros((0, 2))] * num_worlds
        self._reachable_of: dict[str, np.ndarray] = {}
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
        if self.class_index:
            if self._classes.shape[1] < len(objs):
                grown = np.zeros((self.num_worlds, len(objs)), dtype=np.uint8)
                grown[:, : self._classes.shape[1]] = self._classes
                self._classes = grown
            self._classes[i] = 0
            for k, o in enumerate(objs):
                self._classes[i, k] = self.class_index.get(o.object_type, 0)

    def load(self, i: int, scene: str) -> None:
        scene = parse_scene(scene)[0]
        if self.sim.worlds[i].spec.name != scene:
            self.sim.reset_world(i, scene)
            self._index_types(i)

    # -- scene set-up and interaction (AI2-THOR's calls, batched) ---------------------------------
    def configure(
        self,
        i: int,
        scene: str,
        random_spawn: Mapping[str, Any] | None = None,
        remove_types: Sequence[str] = (),
    ) -> None:
        """World i: ``scene`` in its initial state, ``InitialRandomSpawn(**random_spawn)``, then
        ``RemoveFromScene`` of every instance of ``remove_types``."""
        from thorgym.sim.objects import OBJECT_TYPES

        scene = parse_scene(scene)[0]
        self.sim.reset_world(i, scene)
        world = self.sim.worlds[i]
        if random_spawn is not None:
            world.random_spawn(**_random_spawn_args(random_spawn))
        removed = [o for o in world.objects if o.object_type in set(remove_types)]
        for o in removed:
            err = world.remove(o.object_id)
            if err:
                raise RuntimeError(f"RemoveFromScene({o.object_id}) failed in {scene}: {err}")
        self._index_types(i)
        # what GetReachablePositions answers right after the set-up (as the controller worlds ask);
        # pickupable objects (those spawned or removed) never block the agent, so then the answer
        # is the scene's (cached)
        if any(not OBJECT_TYPES[o.object_type].pickupable for o in removed):
            self._reachable[i] = sorted_positions(self.sim.reachable_positions(i), self.grid_size)
            return
        if scene not in self._reachable_of:
            self._reachable_of[scene] = sorted_positions(self.sim.reachable_positions(i), self.grid_size)
        self._reachable[i] = self._reachable_of[scene]

    def reachable(self, i: int) -> np.ndarray:
        return self._reachable[i]

    def act(self, names: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from thorgym.sim.batch import NAV_INDEX

        n = self.num_worlds
        ok = np.ones(n, dtype=bool)
        target = np.full(n, "", dtype=object)
        nav_a = np.full(n, -1, dtype=np.int64)
        for i, a in enumerate(names):
            if a is not None and a in NAV_INDEX:
                nav_a[i] = NAV_INDEX[a]
            elif a is not None and a not in INTERACTIONS:
                raise ValueError(f"unknown action {a!r}: the navigation actions or {INTERACTIONS}")
        for action in INTERACTIONS:
            ids = [i for i, a in enumerate(names) if a == action]
            if ids:
                done, _, idx = self.sim.interact_at(action, 0.5, 0.5, worlds=ids)
                for j, i in enumerate(ids):
                    ok[i] = bool(done[j])
                    k = int(idx[j])
                    target[i] = self.sim.worlds[i].objects[k].object_id if k >= 0 else ""
        if (nav_a >= 0).any():
            moved = self.sim.step_nav(torch.as_tensor(nav_a))[:, 0].cpu().numpy()
            ok = np.where(nav_a >= 0, moved, ok)
        return ok, target

    def objects(self, i: int) -> dict[str, ObjectState]:
        from thorgym.sim.objects import OBJECT_TYPES

        world = self.sim.worlds[i]
        return {
            o.object_id: ObjectState(
                o.object_id,
                o.object_type,
                o.parent,
                OBJECT_TYPES[o.object_type].openable,
                world.is_open[o.object_id],
            )  # fmt: skip
            for o in world.objects
        }

    def visible_ids(self, i: int) -> set[str]:
        vis = self.sim.visible()[i, 0].cpu().numpy()
        objs = self.sim.worlds[i].objects
        return {objs[k].object_id for k in np.nonzero(vis[: len(objs)])[0]}

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
        if "classes" in names:
            if out.instance is None:
                raise ValueError("the 'classes' sensor needs WorldsSpec.classes")
            inst = out.instance[:, 0].cpu().numpy().astype(np.int64)
            rows = np.arange(self.num_worlds)[:, None, None]
            cls = self._classes[rows, np.clip(inst, 0, self._classes.shape[1] - 1)]
            frames["classes"] = np.where(inst >= 0, cls, 0).astype(np.uint8)
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

    def __init__(self, backend: Any, classes: Sequence[str] = ()) -> None:
        self.backend = backend
        self.event: Any = None
        self.class_index = {t: k for k, t in enumerate(classes)}
        self.field_of_view = float(getattr(backend, "field_of_view", nav.FIELD_OF_VIEW))
        self.grid_size = float(getattr(backend, "grid_size", nav.GRID_SIZE))
        self._reachable: np.ndarray | None = None

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
        if "classes" in names:
            frames["classes"] = self._classes()[None]
        return frames

    def target_visible(self, types: Sequence[str | None]) -> np.ndarray:
        return np.array([types[0] in self.event.visible_types])

    # -- scene set-up and interaction ------------------------------------------------------------
    def configure(
        self,
        i: int,
        scene: str,
        random_spawn: Mapping[str, Any] | None = None,
        remove_types: Sequence[str] = (),
    ) -> None:
        be = self.backend
        self.event = be.reset(scene)
        if random_spawn is not None:
            self.event = be.step("InitialRandomSpawn", **random_spawn)
        objs = self.event.metadata["objects"]
        for oid in [o["objectId"] for o in objs if o["objectType"] in set(remove_types)]:
            self.event = be.step("RemoveFromScene", objectId=oid)
        self.event = be.step("GetReachablePositions")
        points = [(p["x"], p["z"]) for p in self.event.metadata["actionReturn"]]
        self._reachable = sorted_positions(points, self.grid_size)

    def reachable(self, i: int) -> np.ndarray:
        return self._reachable

    def act(self, names: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        a = names[0]
        if a is None:
            return np.ones(1, dtype=bool), np.array([""], dtype=object)
        before = {o["objectId"]: o["isOpen"] for o in self.event.metadata["objects"]}
        if a in INTERACTIONS:
            self.event = self.backend.step(a, x=0.5, y=0.5)
        else:
            self.event = self.backend.step(a)
        ok = bool(self.event.metadata["lastActionSuccess"])
        changed = [
            o["objectId"] for o in self.event.metadata["objects"] if before.get(o["objectId"]) != o["isOpen"]
        ]
        return np.array([ok]), np.array([changed[0] if ok and changed else ""], dtype=object)

    def objects(self, i: int) -> dict[str, ObjectState]:
        out = {}
        for o in self.event.metadata["objects"]:
            parents = o.get("parentReceptacles") or []
            out[o["objectId"]] = ObjectState(o["objectId"], o["objectType"], parents[0] if parents else None,
                                             bool(o["openable"]), bool(o["isOpen"]))  # fmt: skip
        return out

    def visible_ids(self, i: int) -> set[str]:
        return {o["objectId"] for o in self.event.metadata["objects"] if o["visible"]}

    def _classes(self) -> np.ndarray:
        raw = getattr(self.event, "raw", self.event)
        # The colour table covers the whole scene (AI2-THOR's): look up only the colours in the
        # frame, each pixel's colour packed into one integer.
        seg = np.asarray(raw.instance_segmentation_frame).astype(np.int32)
        keys = (seg[..., 0] << 16) | (seg[..., 1] << 8) | seg[..., 2]
        uniq, inv = np.unique(keys, return_inverse=True)
        names = {(r << 16) | (g << 8) | b: str(oid) for (r, g, b), oid in raw.color_to_object_id.items()}
        lut = np.array(
            [self.class_index.get(names.get(int(k), "").split("|", 1)[0], 0) for k in uniq], dtype=np.uint8
        )
        return lut[inv].reshape(keys.shape)

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
    :mod:`thorgym.envs.multi_agent_worlds`; ``spec.pose_tables``: the pose-table worlds of
    :mod:`thorgym.envs.cached` (static scenes as lookup tables, the ``features`` sensor)."""
    if not isinstance(num_worlds, int) or num_worlds < 1:
        raise ValueError(f"num_worlds must be a positive integer, got {num_worlds!r}")
    if spec.pose_tables is not None:  # static scenes as lookup tables: no rendering
        if backend != "sim" or spec.agents != 1:
            raise ValueError(
                "pose-table worlds (cached=True) are the built-in simulator's, one agent per world"
            )
        from .cached import pose_table_worlds

        return pose_table_worlds(spec, num_worlds)[0]
    unknown = [s for s in spec.sensors if s not in FRAME_SENSORS]
    if unknown:
        raise ValueError(f"the generic worlds render {FRAME_SENSORS}, not {unknown}")
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
    if "classes" in spec.sensors and not spec.classes:
        raise ValueError("the 'classes' sensor needs WorldsSpec.classes (the types it tells apart)")
    if backend == "sim":
        return SimWorlds(
            num_worlds, spec.scene, width=spec.width, height=spec.height, depth=depth, device=device,
            compile=compile, classes=spec.classes if "classes" in spec.sensors else (), **settings,
        )  # fmt: skip
    from .backends import make_backend

    be = make_backend(
        backend, width=spec.width, height=spec.height, depth=depth, device=device,
        controller_kwargs=controller_kwargs, timeout=timeout,
        instance_segmentation="classes" in spec.sensors, **settings,
    )  # fmt: skip
    return ControllerWorlds(be, classes=spec.classes if "classes" in spec.sensors else ())


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
