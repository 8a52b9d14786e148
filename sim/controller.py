"""``thorgym.sim.Controller``: mirror of ``ai2thor.controller.Controller`` on the built-in sim.

    with Controller(scene="FloorPlan1", width=300, height=300, renderDepthImage=True) as c:
        event = c.step("MoveAhead")
        event.metadata["lastActionSuccess"], event.frame.shape

A failed action leaves the world unchanged and reports ``lastActionSuccess=False`` with an
``errorMessage`` (as AI2-THOR does, also for an objectId that does not exist); an unknown action,
an unknown keyword or a badly typed argument raises ``ValueError`` naming it.

Interactions (OpenObject, CloseObject, PickupObject, PutObject) name their target by ``objectId``
or, as AI2-THOR allows, by a screen point ``x, y`` in [0, 1] of the agent's view (origin top-left,
y down; PutObject: the receptacle under the point). Giving both, or neither, raises ValueError.
By point, failures come back with AI2-THOR's messages: ``x/y must be in [0:1]``, ``No SimObject
found at (x: …, y: …)`` (floor, wall, ceiling, an agent, nothing), ``Target sim object: (…) at
screen coordinate: (…) is beyond your visibilityDistance: …`` (unless forceAction), then the
action's own (not openable, not pickupable, already open, …). ``InitialRandomSpawn`` takes
``numDuplicatesOfType=[{"objectType": T, "count": n}]`` (n = instances wanted, as in AI2-THOR)
and ``RemoveFromScene(objectId=…)`` removes an object. ``TeleportObject(objectId=…, position={x, y,
z}, rotation={x: 0, y: 90*k, z: 0})`` moves any object (furniture too) so its box centre is at
``position``; it fails, naming what is in the way, when the box would overlap a wall, another
object, an agent or leave the room (``forceAction=True`` skips that check). Objects stay upright
and axis-aligned, so rotation y must be a multiple of 90.

Visibility rule (``objects[i]["visible"]``, AI2-THOR's): an object is visible to an agent when at
least one pixel of a 64-row raster of the agent's view (same camera and field of view) shows it
and that pixel's surface point lies within ``visibilityDistance`` metres of the agent's central
vertical axis (horizontal distance, whatever the height). Objects inside a closed Fridge, Cabinet
or Microwave are hidden by its walls until it is opened.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .batch import (
    BLOCKED_AGENT,
    BLOCKED_OBJECT,
    BLOCKED_WALL,
    HORIZON_LIMIT,
    HORIZON_MAX,
    HORIZON_MIN,
    MAX_RESOLUTION,
    NAV_INDEX,
    POINT_NOTHING,
    POINT_OUTSIDE,
    POINT_TOO_FAR,
    BatchedSimulator,
)
from .layout import AGENT_Y, CAMERA_HEIGHT
from .objects import OBJECT_TYPES
from .scenes import all_scenes, parse_scene
from .world import AGENT_BASE

_NUM = (int, float)
_PUSH_ANGLE = {"PushObject": 0.0, "PullObject": 180.0, "DirectionalPush": 0.0}
_COMMON = {"agentId": int, "forceAction": bool}
# Each action's accepted keyword arguments and their types.
ACTION_ARGS: dict[str, dict[str, type | tuple]] = {
    "MoveAhead": {"moveMagnitude": _NUM},
    "MoveBack": {"moveMagnitude": _NUM},
    "MoveLeft": {"moveMagnitude": _NUM},
    "MoveRight": {"moveMagnitude": _NUM},
    "RotateLeft": {"degrees": _NUM},
    "RotateRight": {"degrees": _NUM},
    "LookUp": {"degrees": _NUM},
    "LookDown": {"degrees": _NUM},
    "Pass": {},
    "Done": {},
    "Teleport": {
        "position": dict,
        "rotation": (dict, int, float),
        "horizon": _NUM,
        "standing": bool,
    },
    "TeleportFull": {
        "position": dict,
        "rotation": (dict, int, float),
        "horizon": _NUM,
        "standing": bool,
    },
    "GetReachablePositions": {},
    "OpenObject": {"objectId": str, "x": _NUM, "y": _NUM, "openness": _NUM},
    "CloseObject": {"objectId": str, "x": _NUM, "y": _NUM},
    "PickupObject": {"objectId": str, "x": _NUM, "y": _NUM},
    "PutObject": {"objectId": str, "x": _NUM, "y": _NUM},
    "InitialRandomSpawn": {
        "randomSeed": int,
        "forceVisible": bool,
        "numPlacementAttempts": int,
        "placeStationary": bool,
        "excludedReceptacles": list,
        "excludedObjectIds": list,
        "numDuplicatesOfType": list,
    },
    "RemoveFromScene": {"objectId": str},
    "TeleportObject": {"objectId": str, "position": dict, "rotation": (dict, int, float)},
    # forces (MuJoCo physics): moveMagnitude in newtons, pushAngle degrees clockwise from forward
    "PushObject": {"objectId": str, "x": _NUM, "y": _NUM, "moveMagnitude": _NUM},
    "PullObject": {"objectId": str, "x": _NUM, "y": _NUM, "moveMagnitude": _NUM},
    "DirectionalPush": {"objectId": str, "x": _NUM, "y": _NUM, "moveMagnitude": _NUM, "pushAngle": _NUM},
    "ChangeResolution": {"x": int, "y": int},
    "GetScenesInBuild": {},
}

_INIT_ARGS: dict[str, type | tuple] = {
    "scene": str,
    "width": int,
    "height": int,
    "gridSize": _NUM,
    "rotateStepDegrees": _NUM,
    "visibilityDistance": _NUM,
    "fieldOfView": _NUM,
    "renderDepthImage": bool,
    "renderInstanceSegmentation": bool,
    "agentCount": int,
    "agentMode": str,
    "snapToGrid": bool,
    "device": str,
    "makeAgentsVisible": bool,
}


def _check_kwargs(where: str, given: dict[str, Any], allowed: dict[str, Any]) -> None:
    for k, v in given.items():
        if k not in allowed:
            raise ValueError(f"{where}: unknown argument {k!r}; accepted: {sorted(allowed)}")
        t = allowed[k]
        if isinstance(v, bool) and t in (_NUM, int) and k != "forceAction":
            raise ValueError(f"{where}: argument {k!r} must be a number, got {v!r}")
        if not isinstance(v, t):
            raise ValueError(f"{where}: argument {k!r} has the wrong type {type(v).__name__} ({v!r})")


def _duplicates(entries: Any) -> dict[str, int] | None:
    """numDuplicatesOfType ([{"objectType": T, "count": n}, …]) as {T: n}; ValueError if malformed."""
    if entries is None:
        return None
    out: dict[str, int] = {}
    for k, e in enumerate(entries):
        where = f"InitialRandomSpawn: numDuplicatesOfType[{k}]"
        if not isinstance(e, dict) or set(e) != {"objectType", "count"}:
            raise ValueError(f"{where} must be a dict with exactly 'objectType' and 'count', got {e!r}")
        t, n = e["objectType"], e["count"]
        if not isinstance(t, str) or t not in OBJECT_TYPES:
            raise ValueError(f"{where}: unknown objectType {t!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{where}: count must be a non-negative integer, got {n!r}")
        if t in out:
            raise ValueError(f"{where}: objectType {t!r} is listed twice")
        out[t] = n
    return out


def _vec(x: float, y: float, z: float) -> dict[str, float]:
    return {"x": float(x), "y": float(y), "z": float(z)}


def _object_rotation(world, o) -> dict[str, float]:
    """An object's rotation in degrees: its facing, and the turn a push gave it (physics)."""
    quat = world.orientation.get(o.object_id)
    if quat is None:
        return _vec(0.0, 90.0 * o.facing, 0.0)
    from .physics import euler_degrees

    x, y, z = euler_degrees(quat)
    return _vec(x, (y + 90.0 * o.facing) % 360.0, z)


def _instance_color(code: int) -> tuple[int, int, int]:
    """A stable colour per instance code (objects and structure)."""
    h = (code * 2654435761) & 0xFFFFFF
    return ((h >> 16) & 255, (h >> 8) & 255, h & 255)


class Event:
    """One agent's view after a step: frames and AI2-THOR metadata."""

    def __init__(
        self,
        metadata: dict[str, Any],
        frame: np.ndarray | None,
        depth_frame: np.ndarray | None,
        instance_segmentation_frame: np.ndarray | None,
        instance_masks: dict[str, np.ndarray],
        color_to_object_id: dict[tuple[int, int, int], str],
    ) -> None:
        self.metadata = metadata
        self.frame = frame
        self.depth_frame = depth_frame
        self.instance_segmentation_frame = instance_segmentation_frame
        self.instance_masks = instance_masks
        self.color_to_object_id = color_to_object_id
        self.object_id_to_color = {v: k for k, v in color_to_object_id.items()}
        self.events: list[Event] = [self]

    @property
    def cv2img(self) -> np.ndarray | None:
        return None if self.frame is None else self.frame[..., ::-1]

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"<Event {m.get('sceneName')} lastAction={m.get('lastAction')} "
            f"success={m.get('lastActionSuccess')}>"
        )


class Controller:
    """The AI2-THOR controller API on the built-in simulator (one world, one or more agents).

    Keyword arguments (AI2-THOR's names): scene, width, height, gridSize, rotateStepDegrees,
    visibilityDistance, fieldOfView, renderDepthImage, renderInstanceSegmentation, agentCount,
    makeAgentsVisible (default True: each agent's body is drawn in the others' views; False
    hides agents from every view, they still block movement); plus ``device`` ("cpu" default,
    or "cuda"). ``agentMode`` accepts only "default".
    """

    def __init__(self, **init: Any) -> None:
        self._sim: BatchedSimulator | None = None
        self.last_event: Event | None = None
        self._init = {
            "scene": "FloorPlan1",
            "width": 300,
            "height": 300,
            "gridSize": 0.25,
            "rotateStepDegrees": 90.0,
            "visibilityDistance": 1.5,
            "fieldOfView": 90.0,
            "renderDepthImage": False,
            "renderInstanceSegmentation": False,
            "agentCount": 1,
            "device": "cpu",
            "makeAgentsVisible": True,
        }
        self.reset(**init)

    # -- life cycle --------------------------------------------------------------------------
    def reset(self, scene: str | None = None, **init: Any) -> Event:
        """Load a scene (default: the current one) in its initial state; init keys may change."""
        if scene is not None:
            init["scene"] = scene
        _check_kwargs("Controller", init, _INIT_ARGS)
        if init.get("agentMode", "default") != "default":
            raise ValueError(f"Controller: agentMode {init['agentMode']!r} is not supported; use 'default'")
        init.pop("agentMode", None)
        init.pop("snapToGrid", None)
        cfg = {**self._init, **init}
        parse_scene(cfg["scene"])
        self._sim = BatchedSimulator(
            [cfg["scene"]],
            width=cfg["width"],
            height=cfg["height"],
            agent_count=cfg["agentCount"],
            grid_size=cfg["gridSize"],
            rotate_step_degrees=cfg["rotateStepDegrees"],
            visibility_distance=cfg["visibilityDistance"],
            field_of_view=cfg["fieldOfView"],
            render_depth=cfg["renderDepthImage"],
            render_instance_segmentation=cfg["renderInstanceSegmentation"],
            device=cfg["device"],
            agents_visible=cfg["makeAgentsVisible"],
        )
        self._init = cfg
        self._scene_name = cfg["scene"]
        return self._finish("Initialize", 0, True, "", None)

    def stop(self) -> None:
        self._sim = None

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def initialization_parameters(self) -> dict[str, Any]:
        return dict(self._init)

    @property
    def simulator(self) -> BatchedSimulator:
        if self._sim is None:
            raise RuntimeError("the controller was stopped; create a new Controller or call reset()")
        return self._sim

    # -- actions -----------------------------------------------------------------------------
    def step(self, action: str | dict[str, Any] | None = None, **kwargs: Any) -> Event:
        """Run one action: ``step("MoveAhead")`` or ``step(dict(action="Pass"))``."""
        if isinstance(action, dict):
            kwargs = {**action, **kwargs}
            action = kwargs.pop("action", None)
        if not isinstance(action, str):
            raise ValueError(f"step: action must be an action name string, got {action!r}")
        if action not in ACTION_ARGS:
            raise ValueError(f"step: unknown action {action!r}; valid actions: {sorted(ACTION_ARGS)}")
        _check_kwargs(action, kwargs, {**ACTION_ARGS[action], **_COMMON})
        sim = self.simulator
        agent = kwargs.pop("agentId", 0)
        if not 0 <= agent < sim.agent_count:
            raise ValueError(f"{action}: agentId {agent} out of range for agentCount={sim.agent_count}")
        force = kwargs.pop("forceAction", False)
        if action in NAV_INDEX:
            return self._nav(action, agent, kwargs)
        ok, err, ret = True, "", None
        if action in ("Teleport", "TeleportFull"):
            ok, err = self._teleport(action, agent, kwargs, force)
        elif action == "GetReachablePositions":
            ret = [_vec(x, AGENT_Y, z) for x, z in sim.reachable_positions(0, agent)]
        elif action in ("OpenObject", "CloseObject", "PickupObject", "PutObject"):
            ok, err = self._interact(action, agent, force, kwargs)
        elif action == "InitialRandomSpawn":
            sim.worlds[0].random_spawn(
                kwargs.get("randomSeed", 0),
                kwargs.get("excludedReceptacles"),
                kwargs.get("excludedObjectIds"),
                _duplicates(kwargs.get("numDuplicatesOfType")),
            )
        elif action == "RemoveFromScene":
            if "objectId" not in kwargs:
                raise ValueError("RemoveFromScene: missing required argument 'objectId'")
            err = sim.worlds[0].remove(kwargs["objectId"])
            ok, err = err is None, err or ""
        elif action == "TeleportObject":
            ok, err = self._teleport_object(kwargs, force)
        elif action in _PUSH_ANGLE:
            ok, err = self._push(action, agent, force, kwargs)
        elif action == "ChangeResolution":
            w = kwargs.get("x", sim.width)
            h = kwargs.get("y", sim.height)
            for name, v in (("x", w), ("y", h)):
                if not 32 <= v <= MAX_RESOLUTION:
                    raise ValueError(f"ChangeResolution: {name}={v} must be between 32 and {MAX_RESOLUTION}")
            sim.width, sim.height = w, h
            self._init["width"], self._init["height"] = w, h
        elif action == "GetScenesInBuild":
            ret = all_scenes() + [s + "_physics" for s in all_scenes()]
        return self._finish(action, agent, ok, err, ret)

    def _nav(self, action: str, agent: int, kwargs: dict[str, Any]) -> Event:
        sim = self.simulator
        acts = torch.full((1, sim.agent_count), -1, dtype=torch.long)
        acts[0, agent] = NAV_INDEX[action]
        mag = kwargs.get("moveMagnitude")
        deg = kwargs.get("degrees")
        if mag is not None and not (mag > 0 and math.isfinite(mag)):
            raise ValueError(f"{action}: moveMagnitude must be positive and finite (metres), got {mag}")
        if deg is not None and not math.isfinite(deg):
            raise ValueError(f"{action}: degrees must be a finite number, got {deg}")
        if deg is not None and action.startswith("Look") and not 0 < deg <= 90:
            raise ValueError(f"{action}: degrees must be in (0, 90], got {deg}")
        ok = bool(sim.step_nav(acts, magnitude=mag, degrees=deg)[0, agent])
        err = "" if ok else self._nav_error(action, agent)
        return self._finish(action, agent, ok, err, None)

    def _nav_error(self, action: str, agent: int) -> str:
        sim = self.simulator
        code = int(sim.last_error[0, agent])
        blocker = int(sim.last_blocker[0, agent])
        if code == HORIZON_LIMIT:
            return (
                f"{action} failed: cameraHorizon must stay within [{HORIZON_MIN:g}, "
                f"{HORIZON_MAX:g}] degrees (currently {float(sim.horizon[0, agent]):g})"
            )
        if code == BLOCKED_OBJECT:
            inst = int(sim._boxes.inst[0, blocker])
            oid = sim.worlds[0].objects[inst].object_id
            return f"{oid} is blocking Agent {agent} from moving with {action}"
        if code == BLOCKED_AGENT:
            return f"Agent {AGENT_BASE - blocker} is blocking Agent {agent} from moving with {action}"
        if code == BLOCKED_WALL:
            return f"a wall is blocking Agent {agent} from moving with {action}"
        return f"{action} failed"

    def _teleport(self, action: str, agent: int, kw: dict[str, Any], force: bool = False) -> tuple[bool, str]:
        """Teleport / TeleportFull; as AI2-THOR, ``forceAction=True`` puts the agent there even
        where it would collide."""
        sim = self.simulator
        if action == "TeleportFull":
            missing = [k for k in ("position", "rotation", "horizon", "standing") if k not in kw]
            if missing:
                raise ValueError(f"TeleportFull: missing required argument(s) {missing}")
        pos = kw.get("position")
        if pos is not None and not all(isinstance(pos.get(k), _NUM) for k in ("x", "z")):
            raise ValueError(f"{action}: position must be a dict with numeric 'x' and 'z', got {pos!r}")
        rot = kw.get("rotation")
        if isinstance(rot, dict):
            if not isinstance(rot.get("y"), _NUM):
                raise ValueError(f"{action}: rotation must be a number or a dict with 'y', got {rot!r}")
            rot = rot["y"]
        for name, v in (("rotation", rot), ("horizon", kw.get("horizon")),
                        ("position x", None if pos is None else pos.get("x")),
                        ("position z", None if pos is None else pos.get("z"))):  # fmt: skip
            if isinstance(v, _NUM) and not math.isfinite(v):
                raise ValueError(f"{action}: {name} must be a finite number, got {v}")
        horizon = kw.get("horizon")
        if horizon is not None and not HORIZON_MIN <= horizon <= HORIZON_MAX:
            return False, (f"{action}: horizon {horizon} is outside [{HORIZON_MIN:g}, {HORIZON_MAX:g}]")
        if kw.get("standing") is False:
            return False, f"{action}: crouching (standing=False) is not supported by thorgym.sim"
        cur = sim.agent_poses(agent)[0].tolist()
        x, z = (float(pos["x"]), float(pos["z"])) if pos is not None else (cur[0], cur[1])
        ok = sim.teleport(
            [0],
            [x],
            [z],
            None if rot is None else [float(rot)],
            None if horizon is None else [float(horizon)],
            agent=agent,
            check=pos is not None and not force,  # staying in place needs no collision test
        )
        if not bool(ok[0]):
            return False, f"{action}: position ({x:g}, {z:g}) is not a valid agent position"
        return True, ""

    def _teleport_object(self, kw: dict[str, Any], force: bool) -> tuple[bool, str]:
        """AI2-THOR's TeleportObject: objectId, position {x, y, z} (the box centre here),
        rotation {x: 0, y: k*90, z: 0} or its y alone; forceAction skips the collision check."""
        sim = self.simulator
        world = sim.worlds[0]
        for key in ("objectId", "position"):
            if key not in kw:
                raise ValueError(f"TeleportObject: missing required argument {key!r}")
        pos = kw["position"]
        if set(pos) != {"x", "y", "z"} or not all(
            isinstance(pos[k], _NUM) and not isinstance(pos[k], bool) and math.isfinite(pos[k]) for k in pos
        ):
            raise ValueError(
                f"TeleportObject: position must be a dict with finite numbers 'x', 'y' and 'z', got {pos!r}"
            )
        rot = kw.get("rotation")
        facing = None
        if rot is not None:
            if isinstance(rot, dict):
                bad = set(rot) - {"x", "y", "z"}
                tilted = any(not isinstance(rot.get(k, 0), _NUM) or rot.get(k, 0) != 0 for k in ("x", "z"))
                if bad or "y" not in rot or tilted:
                    raise ValueError(
                        "TeleportObject: rotation must be {'x': 0, 'y': <multiple of 90>, 'z': 0} "
                        f"(objects stay upright and axis-aligned in thorgym.sim), got {rot!r}"
                    )
                rot = rot["y"]
            if isinstance(rot, bool) or not isinstance(rot, _NUM) or not math.isfinite(rot) or rot % 90:
                raise ValueError(
                    f"TeleportObject: rotation y must be a multiple of 90 degrees (boxes stay "
                    f"axis-aligned in thorgym.sim), got {rot!r}"
                )
            facing = int(rot // 90) % 4
        oid = kw["objectId"]
        if oid not in world.index:
            return False, f"objectId: {oid} is not the objectId on any object in the scene!"
        idx = world.index[oid]
        x, y, z = float(pos["x"]), float(pos["y"]), float(pos["z"])
        if oid in world.picked_by:
            return False, world.move_object(oid, (x, y, z), facing) or ""
        if not force:
            blocker = sim.object_blocker(0, idx, x, y, z, facing)
            if blocker is not None:
                why = (
                    "it would leave the room" if blocker == "outside the room" else f"{blocker} is in the way"
                )
                return False, (
                    f"TeleportObject: {oid} cannot be placed at ({x:g}, {y:g}, {z:g}): {why} "
                    "(forceAction=True skips this check)"
                )
        ok = sim.teleport_object([0], [idx], [x], [y], [z], None if facing is None else [facing], check=False)
        return bool(ok[0]), "" if bool(ok[0]) else f"TeleportObject: {oid} could not be moved"

    def _push(self, action: str, agent: int, force: bool, kw: dict[str, Any]) -> tuple[bool, str]:
        """PushObject / PullObject / DirectionalPush (AI2-THOR's ``directionalPush``): a force of
        ``moveMagnitude`` newtons on the target (by objectId or screen point x, y), horizontal,
        ``pushAngle`` degrees clockwise from the agent's forward (Push 0, Pull 180); MuJoCo then
        simulates the world until everything is at rest (:mod:`thorgym.sim.physics`)."""
        from .physics import FORCE_SECONDS, MAX_MAGNITUDE, MAX_PUSH_SPEED, can_be_pushed, enclosed, push_speed

        for key in ("moveMagnitude", *(("pushAngle",) if action == "DirectionalPush" else ())):
            v = kw.get(key)
            if v is None:
                raise ValueError(f"{action}: missing required argument {key!r}")
            if isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{action}: {key} must be a finite number, got {v!r}")
        magnitude = float(kw["moveMagnitude"])
        angle = float(kw.get("pushAngle", _PUSH_ANGLE[action])) % 360.0
        idx, err = self._target(action, agent, force, kw)
        if idx is None:
            return False, err
        sim = self.simulator
        world = sim.worlds[0]
        oid = world.objects[idx].object_id
        if oid in world.picked_by:
            return False, "Please use Throw for an item in the Agent's Hand"
        if not can_be_pushed(world, idx):
            return False, "Target Primary Property type incompatible with push/pull"
        if enclosed(world, idx):
            return False, f"{oid} is inside a closed receptacle; open it first"
        if magnitude < 0 or magnitude > MAX_MAGNITUDE:
            return (
                False,
                f"{action}: moveMagnitude must be between 0 and {MAX_MAGNITUDE:g} newtons, got {magnitude:g}",
            )
        speed = push_speed(world, idx, magnitude)
        if speed > MAX_PUSH_SPEED:
            mass = OBJECT_TYPES[world.objects[idx].object_type].mass
            return False, (
                f"{action}: moveMagnitude {magnitude:g} N would throw {oid} ({mass:g} kg) "
                f"at {speed:.1f} m/s; "
                f"thorgym.sim allows at most {MAX_PUSH_SPEED:g} m/s, so at most "
                f"{MAX_PUSH_SPEED * mass / FORCE_SECONDS:g} N for this object"
            )
        yaw = math.radians(float(sim.yaw[0, agent]))
        fx, fz = math.sin(yaw), math.cos(yaw)
        a = math.radians(angle) * -1.0  # AI2-THOR: negative so positive angles turn clockwise
        direction = [fx * math.cos(a) - fz * math.sin(a), 0.0, fx * math.sin(a) + fz * math.cos(a)]
        sim.push_objects([0], [idx], direction, magnitude)
        return True, ""

    def _target(self, action: str, agent: int, force: bool, kw: dict[str, Any]) -> tuple[int | None, str]:
        """The object an action names by ``objectId`` (visible unless forced) or by screen point
        ``x, y`` (AI2-THOR's messages): (index, "") or (None, error message)."""
        sim = self.simulator
        world = sim.worlds[0]
        has_id = "objectId" in kw
        has_xy = [k for k in ("x", "y") if k in kw]
        if has_id and has_xy:
            raise ValueError(f"{action}: give either objectId or x and y, not both")
        if not has_id and len(has_xy) < 2:
            missing = "'objectId'" if not has_xy else f"'{'y' if has_xy == ['x'] else 'x'}'"
            raise ValueError(f"{action}: missing required argument {missing} (objectId, or x and y)")
        if has_id:
            oid = kw["objectId"]
            if oid not in world.index:
                return None, f"Object ID appears to be invalid: {oid!r} is not in {world.spec.name}"
            idx = world.index[oid]
            if not force and not bool(sim.visible()[0, agent, idx]):
                return None, f"{oid} is not visible to Agent {agent} (within {sim.visibility_distance} m)"
            return idx, ""
        x, y = float(kw["x"]), float(kw["y"])
        hit = sim.object_at(x, y, agent=agent, worlds=[0])
        reason, code = int(hit.reason[0]), int(hit.code[0])
        if reason == POINT_OUTSIDE:
            return None, "x/y must be in [0:1]"
        if reason == POINT_NOTHING:
            return None, f"No SimObject found at (x: {x:g}, y: {y:g})"
        if reason == POINT_TOO_FAR and not force:
            return None, (
                f"Target sim object: ({world.objects[code].object_id}) at screen coordinate: ({x:g}, {y:g}) "
                f"is beyond your visibilityDistance: {sim.visibility_distance:g}!"
            )
        return code, ""

    def _interact(self, action: str, agent: int, force: bool, kw: dict[str, Any]) -> tuple[bool, str]:
        """By objectId (visible to the agent unless forced) or by screen point x, y (AI2-THOR)."""
        sim = self.simulator
        world = sim.worlds[0]
        has_id = "objectId" in kw
        has_xy = [k for k in ("x", "y") if k in kw]
        if has_id and has_xy:
            raise ValueError(f"{action}: give either objectId or x and y, not both")
        if not has_id and len(has_xy) < 2:
            missing = "'objectId'" if not has_xy else f"'{'y' if has_xy == ['x'] else 'x'}'"
            raise ValueError(f"{action}: missing required argument {missing} (objectId, or x and y)")
        openness = kw.get("openness", 1.0)
        if action == "OpenObject" and not 0.0 <= openness <= 1.0:
            raise ValueError(f"OpenObject: openness must be in [0, 1], got {openness}")
        if not has_id:
            ok, errs, _ = sim.interact_at(
                action, float(kw["x"]), float(kw["y"]), [0], agent=agent, openness=openness, force=force
            )
            return bool(ok[0]), errs[0]
        oid = kw["objectId"]
        if oid not in world.index:
            return False, f"Object ID appears to be invalid: {oid!r} is not in {world.spec.name}"
        idx = world.index[oid]
        if not force and not bool(sim.visible()[0, agent, idx]):
            return (
                False,
                f"{oid} is not visible to Agent {agent} (within {sim.visibility_distance} m)",
            )
        ok, errs = sim.interact(action, [0], [idx], agent=agent, openness=openness)
        return bool(ok[0]), errs[0]

    # -- events ------------------------------------------------------------------------------
    def _finish(self, action: str, agent: int, ok: bool, err: str, ret: Any) -> Event:
        sim = self.simulator
        out, visible = sim.render()
        events = [self._event(a, out, visible, action, ok, err, ret) for a in range(sim.agent_count)]
        ev = events[agent]
        ev.events = events
        self.last_event = ev
        return ev

    def _event(self, a: int, out, visible, action: str, ok: bool, err: str, ret: Any) -> Event:
        sim = self.simulator
        world = sim.worlds[0]
        h, w = sim.height, sim.width
        frame = out.rgb[a].cpu().numpy() if out.rgb is not None else None
        depth = out.depth[a].cpu().numpy().copy() if sim.render_depth else None
        seg_frame, masks, c2o = None, {}, {}
        if sim.render_instance_segmentation:
            inst = out.inst[a].cpu().numpy()
            seg_frame = np.zeros((h, w, 3), dtype=np.uint8)
            for code in np.unique(inst):
                m = inst == code
                if code >= 0:
                    name = world.objects[code].object_id
                elif code <= AGENT_BASE:
                    name = f"agent{AGENT_BASE - code}"
                else:
                    name = {-1: "Floor", -2: "Ceiling", -3: "Wall"}.get(int(code), "Background")
                color = _instance_color(int(code) + 1000)
                seg_frame[m] = color
                c2o[color] = name
                if code >= 0:
                    masks[name] = m
        pos = sim.pos[0, a].tolist()
        cam = [pos[0], pos[1] + CAMERA_HEIGHT, pos[2]]
        vis = visible[0, a].cpu().numpy()
        meta = {
            "sceneName": self._scene_name,
            "lastAction": action,
            "lastActionSuccess": ok,
            "errorMessage": err,
            "actionReturn": ret,
            "agentId": a,
            "agent": {
                "name": f"agent{a}" if sim.agent_count > 1 else "agent",
                "position": _vec(round(pos[0], 6), AGENT_Y, round(pos[2], 6)),
                "rotation": _vec(0.0, float(sim.yaw[0, a]), 0.0),
                "cameraHorizon": float(sim.horizon[0, a]),
                "isStanding": True,
                "inHighFrictionArea": False,
            },
            "objects": self._objects_metadata(a, cam, vis),
            "inventoryObjects": [
                {"objectId": oid, "objectType": world.object(oid).object_type}
                for oid, holder in world.picked_by.items()
                if holder == a
            ],
            "fov": sim.field_of_view,
            "cameraPosition": _vec(*cam),
            "screenWidth": w,
            "screenHeight": h,
            "sceneBounds": self._scene_bounds(),
        }
        return Event(meta, frame, depth, seg_frame, masks, c2o)

    def _scene_bounds(self) -> dict[str, Any]:
        x0, z0, x1, z1 = self.simulator.worlds[0].spec.bounds
        return {
            "center": _vec((x0 + x1) / 2, 1.3, (z0 + z1) / 2),
            "size": _vec(x1 - x0, 2.6, z1 - z0),
        }

    def _objects_metadata(self, agent: int, cam: list[float], vis: np.ndarray) -> list[dict[str, Any]]:
        world = self.simulator.worlds[0]
        out = []
        for i, o in enumerate(world.objects):
            t = OBJECT_TYPES[o.object_type]
            lo, hi = o.lo, o.hi
            corners = [_vec(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
            held = o.object_id in world.picked_by
            contents = world.contents(o.object_id) if t.receptacle else None
            out.append(
                {
                    "objectId": o.object_id,
                    "objectType": o.object_type,
                    "name": f"{o.object_type}_{o.object_id.split('|', 1)[1].replace('|', '_')}",
                    "visible": bool(vis[i]) and not held,
                    "distance": math.dist(cam, o.center.tolist()),
                    "position": _vec(*o.center),
                    "rotation": _object_rotation(world, o),
                    "axisAlignedBoundingBox": {
                        "center": _vec(*o.center),
                        "size": _vec(*o.size),
                        "cornerPoints": [[c["x"], c["y"], c["z"]] for c in corners],
                    },
                    "openable": t.openable,
                    "isOpen": world.is_open[o.object_id],
                    "openness": 1.0 if world.is_open[o.object_id] else 0.0,
                    "pickupable": t.pickupable,
                    "isPickedUp": held,
                    "receptacle": t.receptacle,
                    "receptacleObjectIds": contents,
                    "parentReceptacles": [o.parent] if o.parent else None,
                    "moveable": t.moveable,
                    "mass": t.mass,
                }
            )
        return out
