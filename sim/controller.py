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

AI2-THOR's test suite runs on it (tests/ai2thor_suite, through thorgym-thor; docs/thorgym-thor.md
lists what is ported), hence also: metadata with every key of AI2-THOR's schema
(:mod:`.metadata`), ``OpenObject(openness=…)`` with boxes that follow, semantic segmentation and
class colours (:mod:`.segmentation`), render flags on any step, ``RotateLook``,
``SetObjectFilter`` / ``ResetObjectFilter``, ``GetInteractablePoses`` and ``DropHandObject``
(:mod:`.agent_actions`), ``GetCoordinateFromRaycast`` / ``GetObjectInFrame``, third-party
cameras (:mod:`.cameras`), ``MoveHeldObject`` / ``RotateHeldObject`` (:mod:`.hand`), toggled and
filled states (:mod:`.states`), Teleport's flat ``x, y, z`` with AI2-THOR's 0.05 m rule on y.

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

from .agent_actions import drop_spot, interactable_poses
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
from .cameras import ThirdPartyCameras
from .hand import Hand
from .layout import AGENT_Y, CAMERA_HEIGHT
from .metadata import SCHEMA_DEFAULTS, objects_metadata, scene_bounds
from .objects import OBJECT_TYPES
from .scenes import all_scenes, parse_scene
from .segmentation import segment
from .states import fill, toggle
from .world import AGENT_BASE

_NUM = (int, float)
_PUSH_ANGLE = {"PushObject": 0.0, "PullObject": 180.0, "DirectionalPush": 0.0}
# Render flags that AI2-THOR accepts on any step (for that step's event only), with the old names
# the client still sends alongside the new ones.
RENDER_FLAGS = {
    "renderImage": bool,
    "renderDepthImage": bool,
    "renderInstanceSegmentation": bool,
    "renderSemanticSegmentation": bool,
    "renderObjectImage": bool,
    "renderClassImage": bool,
}
_DEPRECATED_RENDER = {
    "renderObjectImage": "renderInstanceSegmentation",
    "renderClassImage": "renderSemanticSegmentation",
}
_COMMON = {"agentId": int, "forceAction": bool, **RENDER_FLAGS}
_POSE = {"position": dict, "x": _NUM, "y": _NUM, "z": _NUM, "rotation": (dict, int, float), "horizon": _NUM}
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
    "RotateLook": {"rotation": (dict, int, float), "horizon": _NUM},
    "Pass": {},
    "Done": {},
    "Teleport": {**_POSE, "standing": bool},
    "TeleportFull": {**_POSE, "standing": bool},
    "GetReachablePositions": {"directionsRelativeAgent": bool},
    "GetInteractablePoses": {
        "objectId": str,
        "positions": list,
        "rotations": list,
        "horizons": list,
        "standings": list,
        "maxDistance": _NUM,
        "maxPoses": int,
    },
    "GetCoordinateFromRaycast": {"x": _NUM, "y": _NUM},
    "GetObjectInFrame": {"x": _NUM, "y": _NUM, "checkVisible": bool},
    "SetObjectFilter": {"objectIds": list},
    # position / rotation are checked by the action: a malformed one fails it, as in AI2-THOR
    "AddThirdPartyCamera": {
        "position": object,
        "rotation": object,
        "fieldOfView": _NUM,
        "orthographic": bool,
        "orthographicSize": _NUM,
    },
    "UpdateThirdPartyCamera": {
        "thirdPartyCameraId": int,
        "position": object,
        "rotation": object,
        "fieldOfView": _NUM,
        "orthographic": bool,
        "orthographicSize": _NUM,
    },
    "ResetObjectFilter": {},
    "OpenObject": {"objectId": str, "x": _NUM, "y": _NUM, "openness": _NUM, "moveMagnitude": _NUM},
    "CloseObject": {"objectId": str, "x": _NUM, "y": _NUM},
    "PickupObject": {"objectId": str, "x": _NUM, "y": _NUM},
    "PutObject": {"objectId": str, "x": _NUM, "y": _NUM},
    "DropHandObject": {},
    "ToggleObjectOn": {"objectId": str},
    "ToggleObjectOff": {"objectId": str},
    "FillObjectWithLiquid": {"objectId": str, "fillLiquid": str},
    "EmptyLiquidFromObject": {"objectId": str},
    "MoveHeldObject": {"ahead": _NUM, "right": _NUM, "up": _NUM, "forceVisible": bool},
    "RotateHeldObject": {"pitch": _NUM, "yaw": _NUM, "roll": _NUM, "rotation": dict},
    "DropHeldObject": {},
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

_STATE_ACTIONS = ("ToggleObjectOn", "ToggleObjectOff", "FillObjectWithLiquid", "EmptyLiquidFromObject")

#: How far Teleport's position.y may be from the agent's height (AI2-THOR's limit).
TELEPORT_Y_TOLERANCE = 0.05

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
    "renderSemanticSegmentation": bool,
    "renderObjectImage": bool,
    "renderClassImage": bool,
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
            if where == "Controller":
                raise ValueError(f"{where}: argument {k!r} has the wrong type {type(v).__name__} ({v!r})")
            # AI2-THOR's text, then ours
            raise ValueError(
                f"action: {where} has an invalid argument: {k} (wrong type {type(v).__name__}: {v!r})"
            )


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


class Event:
    """One agent's view after a step: frames and AI2-THOR metadata.

    ``color_to_object_id`` / ``object_id_to_color`` cover every instance and every object
    class of the scene (AI2-THOR's ``colors``), whenever a segmentation frame was rendered.
    """

    def __init__(
        self,
        metadata: dict[str, Any],
        frame: np.ndarray | None,
        depth_frame: np.ndarray | None,
        instance_segmentation_frame: np.ndarray | None,
        instance_masks: dict[str, np.ndarray],
        color_to_object_id: dict[tuple[int, int, int], str],
        semantic_segmentation_frame: np.ndarray | None = None,
        class_masks: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.metadata = metadata
        self.frame = frame
        self.depth_frame = depth_frame
        self.instance_segmentation_frame = instance_segmentation_frame
        self.semantic_segmentation_frame = semantic_segmentation_frame
        self.instance_masks = instance_masks
        self.class_masks = class_masks or {}
        self.color_to_object_id = color_to_object_id
        self.object_id_to_color = {v: k for k, v in color_to_object_id.items()}
        self.events: list[Event] = [self]
        # one frame per third-party camera (AddThirdPartyCamera)
        self.third_party_camera_frames: list[np.ndarray] = []
        self.third_party_depth_frames: list[np.ndarray] = []
        self.third_party_instance_segmentation_frames: list[np.ndarray] = []
        self.third_party_semantic_segmentation_frames: list[np.ndarray] = []

    @property
    def class_segmentation_frame(self) -> np.ndarray | None:
        """AI2-THOR's old name of :attr:`semantic_segmentation_frame`."""
        return self.semantic_segmentation_frame

    @property
    def cv2img(self) -> np.ndarray | None:
        return None if self.frame is None else self.frame[..., ::-1]

    def __bool__(self) -> bool:
        """As AI2-THOR's Event: true when the action succeeded."""
        return bool(self.metadata.get("lastActionSuccess"))

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"<Event {m.get('sceneName')} lastAction={m.get('lastAction')} "
            f"success={m.get('lastActionSuccess')}>"
        )


class Controller:
    """The AI2-THOR controller API on the built-in simulator (one world, one or more agents).

    Keyword arguments (AI2-THOR's names): scene, width, height, gridSize, rotateStepDegrees,
    visibilityDistance, fieldOfView, renderDepthImage, renderInstanceSegmentation,
    renderSemanticSegmentation (old names renderObjectImage / renderClassImage too), agentCount,
    makeAgentsVisible (default True: each agent's body is drawn in the others' views; False
    hides agents from every view, they still block movement); plus ``device`` ("cpu" default,
    or "cuda"). ``agentMode`` accepts only "default".

    As AI2-THOR's client, ``reset(**init)`` keeps the settings of earlier resets that it does
    not name (they live in :attr:`initialization_parameters`, which may be assigned to start
    over from other settings); the render flags may also be given on any single step.
    """

    def __init__(self, **init: Any) -> None:
        self._sim: BatchedSimulator | None = None
        self.last_event: Event | None = None
        self._object_filter: set[str] | None = None
        self._render_flags: dict[str, bool] = {}
        self._cameras = ThirdPartyCameras()
        self._init = self._defaults()
        self.reset(**init)

    @staticmethod
    def _defaults() -> dict[str, Any]:
        return {
            "scene": "FloorPlan1",
            "width": 300,
            "height": 300,
            "gridSize": 0.25,
            "rotateStepDegrees": 90.0,
            "visibilityDistance": 1.5,
            "fieldOfView": 90.0,
            "renderDepthImage": False,
            "renderInstanceSegmentation": False,
            "renderSemanticSegmentation": False,
            "agentCount": 1,
            "device": "cpu",
            "makeAgentsVisible": True,
        }

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
        for old, new in _DEPRECATED_RENDER.items():
            if old in init:
                init.setdefault(new, init.pop(old))
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
        self._object_filter = None
        self._cameras.clear()
        self._hands = [Hand() for _ in range(cfg["agentCount"])]
        self._render_flags = {}  # per-step flags of a step that raised do not reach this event
        return self._finish("Initialize", 0, True, "", None)

    def stop(self) -> None:
        self._sim = None

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def initialization_parameters(self) -> dict[str, Any]:
        """The settings the next ``reset()`` starts from (a copy)."""
        return dict(self._init)

    @initialization_parameters.setter
    def initialization_parameters(self, params: dict[str, Any]) -> None:
        """Replace the settings the next ``reset()`` starts from: the defaults, updated with
        `params` (as AI2-THOR's tests restore a controller's original settings)."""
        params = dict(params)
        _check_kwargs("Controller", params, _INIT_ARGS)
        for key in ("agentMode", "snapToGrid"):
            params.pop(key, None)
        for old, new in _DEPRECATED_RENDER.items():
            if old in params:
                params.setdefault(new, params.pop(old))
        self._init = {**self._defaults(), **params}

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
        flags = {k: kwargs.pop(k) for k in list(kwargs) if k in RENDER_FLAGS}
        for old, new in _DEPRECATED_RENDER.items():
            if old in flags:
                flags.setdefault(new, flags.pop(old))
        self._render_flags = flags
        if action in NAV_INDEX:
            return self._nav(action, agent, kwargs)
        ok, err, ret = True, "", None
        if action in ("Teleport", "TeleportFull"):
            ok, err = self._teleport(action, agent, kwargs, force)
        elif action == "RotateLook":
            ok, err = self._rotate_look(agent, kwargs)
        elif action == "GetReachablePositions":
            heading = float(sim.yaw[0, agent]) if kwargs.get("directionsRelativeAgent") else 0.0
            ret = [_vec(x, AGENT_Y, z) for x, z in sim.reachable_positions(0, agent, heading)]
        elif action == "GetInteractablePoses":
            ok, err, ret = self._interactable_poses(agent, kwargs)
        elif action in ("GetCoordinateFromRaycast", "GetObjectInFrame"):
            ok, err, ret = self._raycast(action, agent, kwargs, force)
        elif action == "SetObjectFilter":
            ids = kwargs.get("objectIds")
            if ids is None or not all(isinstance(i, str) for i in ids):
                raise ValueError(
                    f"SetObjectFilter: objectIds must be a list of objectId strings, got {ids!r}"
                )
            self._object_filter = set(ids)
        elif action == "AddThirdPartyCamera":
            ok, err = self._cameras.add(kwargs)
        elif action == "UpdateThirdPartyCamera":
            ok, err = self._cameras.update(kwargs)
        elif action == "ResetObjectFilter":
            self._object_filter = None
        elif action in ("DropHandObject", "DropHeldObject"):
            ok, err = self._drop(agent)
        elif action in _STATE_ACTIONS:
            ok, err = self._state_action(action, agent, kwargs, force)
        elif action in ("MoveHeldObject", "RotateHeldObject"):
            ok, err = self._move_hand(action, agent, kwargs)
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
        if code == HORIZON_LIMIT:  # AI2-THOR's texts
            if action == "LookDown":
                return f"can't look down beyond {HORIZON_MAX:g} degrees below the forward horizon"
            return f"can't look up beyond {-HORIZON_MIN:g} degrees above the forward horizon"
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
        """Teleport / TeleportFull. The position comes as ``position={x, y, z}`` or flat
        ``x, y, z`` (AI2-THOR takes both); y, if given, may differ from the agent's height by
        at most 0.05 m, as in AI2-THOR. ``forceAction=True`` puts the agent there even where it
        would collide."""
        sim = self.simulator
        flat = {k: kw[k] for k in ("x", "y", "z") if k in kw}
        if flat and "position" in kw:
            raise ValueError(f"{action}: give either position or x, y, z, not both")
        pos = flat or kw.get("position")
        if action == "TeleportFull":
            missing = [k for k in ("rotation", "horizon", "standing") if k not in kw]
            if pos is None:
                missing.insert(0, "position")
            if missing:
                raise ValueError(f"TeleportFull: missing required argument(s) {missing}")
        if pos is not None and not all(
            isinstance(pos.get(k), _NUM) and not isinstance(pos.get(k), bool) for k in ("x", "z")
        ):
            raise ValueError(
                f"{action}: position must have numeric 'x' and 'z' (and optionally 'y'), got {pos!r}"
            )
        rot = kw.get("rotation")
        if isinstance(rot, dict):
            if not isinstance(rot.get("y"), _NUM):
                raise ValueError(f"{action}: rotation must be a number or a dict with 'y', got {rot!r}")
            rot = rot["y"]
        y = None if pos is None else pos.get("y")
        for name, v in (("rotation", rot), ("horizon", kw.get("horizon")),
                        ("position x", None if pos is None else pos.get("x")),
                        ("position y", y),
                        ("position z", None if pos is None else pos.get("z"))):  # fmt: skip
            if isinstance(v, _NUM) and not math.isfinite(v):
                raise ValueError(f"{action}: {name} must be a finite number, got {v}")
        horizon = kw.get("horizon")
        if horizon is not None and not HORIZON_MIN <= horizon <= HORIZON_MAX:
            return False, (
                f"Each horizon must be in [{HORIZON_MIN:g}:{HORIZON_MAX:g}]. You gave {horizon:g}."
            )
        if kw.get("standing") is False:
            return False, f"{action}: crouching (standing=False) is not supported by thorgym.sim"
        if y is not None and abs(float(y) - AGENT_Y) > TELEPORT_Y_TOLERANCE:
            return False, (
                f"{action}: the agent's y position cannot change by more than {TELEPORT_Y_TOLERANCE:g} m "
                f"(it is {AGENT_Y:g}, you gave {float(y):g}); agents stay on the floor"
            )
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

    def _rotate_look(self, agent: int, kw: dict[str, Any]) -> tuple[bool, str]:
        """AI2-THOR's RotateLook: set the yaw (``rotation``, a number or {y}) and the horizon."""
        rot = kw.get("rotation")
        if isinstance(rot, dict):
            rot = rot.get("y")
        horizon = kw.get("horizon")
        for name, v in (("rotation", rot), ("horizon", horizon)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, _NUM) or not math.isfinite(v)):
                raise ValueError(f"RotateLook: {name} must be a finite number, got {v!r}")
        args: dict[str, Any] = {}
        if rot is not None:
            args["rotation"] = rot
        if horizon is not None:
            args["horizon"] = horizon
        return self._teleport("RotateLook", agent, args)

    def _interactable_poses(self, agent: int, kw: dict[str, Any]) -> tuple[bool, str, Any]:
        if "objectId" not in kw:
            raise ValueError("GetInteractablePoses: missing required argument 'objectId'")
        oid = kw["objectId"]
        if oid not in self.simulator.worlds[0].index:
            return False, f"objectId: {oid} is not the objectId on any object in the scene!", None
        poses = interactable_poses(
            self.simulator,
            oid,
            agent,
            positions=kw.get("positions"),
            rotations=kw.get("rotations"),
            horizons=kw.get("horizons"),
            standings=kw.get("standings"),
            max_distance=kw.get("maxDistance"),
            max_poses=kw.get("maxPoses"),
        )
        return True, "", poses

    def _raycast(self, action: str, agent: int, kw: dict[str, Any], force: bool) -> tuple[bool, str, Any]:
        """GetCoordinateFromRaycast (the world point under screen point x, y: anything, walls
        and floor too) and GetObjectInFrame (the objectId there; beyond visibilityDistance only
        with forceAction, or checkVisible=False), with AI2-THOR's failure texts."""
        missing = [k for k in ("x", "y") if k not in kw]
        if missing:
            raise ValueError(f"{action}: missing required argument(s) {missing}")
        x, y = float(kw["x"]), float(kw["y"])
        hit = self.simulator.object_at(x, y, agent=agent, worlds=[0])
        reason = int(hit.reason[0])
        if reason == POINT_OUTSIDE:
            return False, "x/y must be in [0:1]", None
        if action == "GetCoordinateFromRaycast":
            p = hit.point[0].tolist()
            if not all(math.isfinite(v) for v in p):
                return False, f"No surface found at (x: {x:g}, y: {y:g})", None
            return True, "", _vec(*p)
        code = int(hit.code[0])
        if code < 0:
            return False, f"No SimObject found at (x: {x:g}, y: {y:g})", None
        if reason == POINT_TOO_FAR and not force and kw.get("checkVisible", True):
            return False, f"Object at (x: {x:g}, y: {y:g}) is beyond visibilityDistance", None
        return True, "", self.simulator.worlds[0].objects[code].object_id

    def _state_action(self, action: str, agent: int, kw: dict[str, Any], force: bool) -> tuple[bool, str]:
        """Toggle on/off, fill/empty (metadata-only states, thorgym.sim.states): by objectId,
        visible to the agent unless forced, as AI2-THOR's object interactions."""
        if "objectId" not in kw:
            raise ValueError(f"{action}: missing required argument 'objectId'")
        if action == "FillObjectWithLiquid" and "fillLiquid" not in kw:
            raise ValueError("FillObjectWithLiquid: missing required argument 'fillLiquid'")
        sim = self.simulator
        world = sim.worlds[0]
        oid = kw["objectId"]
        if oid not in world.index:
            return False, f"Object ID appears to be invalid: {oid!r} is not in {world.spec.name}"
        if not force and not bool(sim.visible()[0, agent, world.index[oid]]):
            return False, f"{oid} is not visible to Agent {agent} (within {sim.visibility_distance} m)"
        otype = world.object(oid).object_type
        if action in ("ToggleObjectOn", "ToggleObjectOff"):
            err = toggle(world.toggled, oid, otype, action == "ToggleObjectOn")
        else:
            err = fill(world.liquid, oid, otype, kw.get("fillLiquid"))
        return err is None, err or ""

    def _move_hand(self, action: str, agent: int, kw: dict[str, Any]) -> tuple[bool, str]:
        """MoveHeldObject(ahead, right, up) / RotateHeldObject(pitch, yaw, roll | rotation)."""
        sim = self.simulator
        if sim.worlds[0].held_by(agent) is None:
            return False, f"{action}: Agent {agent} is not holding an object"
        hand = self._hands[agent]
        if action == "RotateHeldObject":
            rot = kw.get("rotation")
            if rot is not None:
                if set(kw) & {"pitch", "yaw", "roll"}:
                    raise ValueError("RotateHeldObject: give rotation or pitch / yaw / roll, not both")
                if set(rot) != {"x", "y", "z"} or not all(isinstance(rot[k], _NUM) for k in rot):
                    raise ValueError(f"RotateHeldObject: rotation must be {{x, y, z}} numbers, got {rot!r}")
                hand.set_rotation(rot["x"], rot["y"], rot["z"])
            else:
                hand.rotate(kw.get("pitch", 0.0), kw.get("yaw", 0.0), kw.get("roll", 0.0))
            return True, ""
        cam = sim.pos[0, agent].tolist()
        cam[1] += CAMERA_HEIGHT
        err = hand.move(
            (kw.get("right", 0.0), kw.get("up", 0.0), kw.get("ahead", 0.0)),
            cam,
            float(sim.yaw[0, agent]),
            float(sim.horizon[0, agent]),
            sim.field_of_view,
            sim.width / sim.height,
            sim.visibility_distance,
        )
        return err is None, err or ""

    def _held_at(self) -> dict[str, list[float]]:
        """objectId -> world position of the hand holding it."""
        sim = self.simulator
        out = {}
        for oid, a in sim.worlds[0].picked_by.items():
            cam = sim.pos[0, a].tolist()
            cam[1] += CAMERA_HEIGHT
            out[oid] = self._hands[a].world_position(cam, float(sim.yaw[0, a]))
        return out

    def _drop(self, agent: int) -> tuple[bool, str]:
        world = self.simulator.worlds[0]
        held = world.held_by(agent)
        if held is None:
            return False, "nothing in hand to drop!"
        sim = self.simulator
        cam = sim.pos[0, agent].tolist()
        cam[1] += CAMERA_HEIGHT
        spot = drop_spot(sim, agent, self._hands[agent].world_position(cam, float(sim.yaw[0, agent])))
        if spot is None:
            return False, f"{held} cannot be dropped here: there is no free space below the hand"
        err = world.drop(agent, spot[0], spot[1])
        return err is None, err or ""

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
        from .physics import (
            MAX_MAGNITUDE,
            MAX_PUSH_SPEED,
            can_be_pushed,
            enclosed,
            max_push_magnitude,
            push_direction,
            push_speed,
        )

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
                f"{max_push_magnitude(world, idx):g} N for this object"
            )
        sim.push_objects([0], [idx], push_direction(float(sim.yaw[0, agent]), angle), magnitude)
        return True, ""

    @staticmethod
    def _target_by_id(action: str, kw: dict[str, Any]) -> bool:
        """Check how an action names its target: True by ``objectId``, False by screen point
        ``x, y``; giving both or neither raises ValueError."""
        has_id = "objectId" in kw
        has_xy = [k for k in ("x", "y") if k in kw]
        if has_id and has_xy:
            raise ValueError(f"{action}: give either objectId or x and y, not both")
        if not has_id and len(has_xy) < 2:
            missing = "'objectId'" if not has_xy else f"'{'y' if has_xy == ['x'] else 'x'}'"
            raise ValueError(f"{action}: missing required argument {missing} (objectId, or x and y)")
        return has_id

    def _object_by_id(self, agent: int, force: bool, oid: str) -> tuple[int | None, str]:
        """The index of ``oid`` if it exists and the agent sees it (or `force`), else an error."""
        sim = self.simulator
        world = sim.worlds[0]
        if oid not in world.index:
            return None, f"Object ID appears to be invalid: {oid!r} is not in {world.spec.name}"
        idx = world.index[oid]
        if not force and not bool(sim.visible()[0, agent, idx]):
            return None, f"{oid} is not visible to Agent {agent} (within {sim.visibility_distance} m)"
        return idx, ""

    def _target(self, action: str, agent: int, force: bool, kw: dict[str, Any]) -> tuple[int | None, str]:
        """The object an action names by ``objectId`` (visible unless forced) or by screen point
        ``x, y`` (AI2-THOR's messages): (index, "") or (None, error message)."""
        if self._target_by_id(action, kw):
            return self._object_by_id(agent, force, kw["objectId"])
        sim = self.simulator
        x, y = float(kw["x"]), float(kw["y"])
        hit = sim.object_at(x, y, agent=agent, worlds=[0])
        reason, code = int(hit.reason[0]), int(hit.code[0])
        if reason == POINT_OUTSIDE:
            return None, "x/y must be in [0:1]"
        if reason == POINT_NOTHING:
            return None, f"No SimObject found at (x: {x:g}, y: {y:g})"
        if reason == POINT_TOO_FAR and not force:
            oid = sim.worlds[0].objects[code].object_id
            return None, (
                f"Target sim object: ({oid}) at screen coordinate: ({x:g}, {y:g}) is beyond your "
                f"visibilityDistance: {sim.visibility_distance:g}!\nHint: Ignore this check by passing in "
                "forceAction=True or update visibility distance, call "
                "controller.reset(visibilityDistance=<new visibility distance>)."
            )
        return code, ""

    def _interact(self, action: str, agent: int, force: bool, kw: dict[str, Any]) -> tuple[bool, str]:
        """By objectId (visible to the agent unless forced) or by screen point x, y (AI2-THOR)."""
        sim = self.simulator
        has_id = self._target_by_id(action, kw)
        if "openness" in kw and "moveMagnitude" in kw:
            raise ValueError("OpenObject: give openness or its old name moveMagnitude, not both")
        # AI2-THOR: moveMagnitude is openness' old name, and moveMagnitude=0 means fully open.
        openness = kw.get("openness", kw.get("moveMagnitude", 1.0) or 1.0)
        if action == "OpenObject" and not (math.isfinite(openness) and 0.0 <= openness <= 1.0):
            return False, f"openness must be in [0:1], got {openness:g}"
        if action == "OpenObject" and openness == 0.0:
            action = "CloseObject"  # AI2-THOR closes the object at openness 0
        if not has_id:
            ok, errs, _ = sim.interact_at(
                action, float(kw["x"]), float(kw["y"]), [0], agent=agent, openness=openness, force=force
            )
            return bool(ok[0]), errs[0]
        idx, err = self._object_by_id(agent, force, kw["objectId"])
        if idx is None:
            return False, err
        ok, errs = sim.interact(action, [0], [idx], agent=agent, openness=openness)
        return bool(ok[0]), errs[0]

    # -- events ------------------------------------------------------------------------------
    def _finish(self, action: str, agent: int, ok: bool, err: str, ret: Any) -> Event:
        sim = self.simulator
        flags, self._render_flags = self._render_flags, {}
        out, visible = sim.render(rgb=None if flags.get("renderImage", True) else False)
        want = {
            "rgb": flags.get("renderImage", True),
            "depth": flags.get("renderDepthImage", sim.render_depth),
            "instance": flags.get("renderInstanceSegmentation", sim.render_instance_segmentation),
            "semantic": flags.get("renderSemanticSegmentation", self._init["renderSemanticSegmentation"]),
        }
        events = [self._event(a, out, visible, action, ok, err, ret, want) for a in range(sim.agent_count)]
        if self._cameras.cameras:
            frames = self._cameras.render(sim, want)
            for e in events:
                e.third_party_camera_frames = frames.rgb
                e.third_party_depth_frames = frames.depth
                e.third_party_instance_segmentation_frames = frames.instance
                e.third_party_semantic_segmentation_frames = frames.semantic
        ev = events[agent]
        ev.events = events
        self.last_event = ev
        return ev

    def _event(
        self, a: int, out, visible, action: str, ok: bool, err: str, ret: Any, want: dict[str, bool]
    ) -> Event:
        sim = self.simulator
        world = sim.worlds[0]
        frame = out.rgb[a].cpu().numpy() if want["rgb"] and out.rgb is not None else None
        depth = out.depth[a].cpu().numpy().copy() if want["depth"] else None
        shown = sim.agent_count if sim.agents_visible else 0  # hidden agents get no colour
        seg = segment(world, out.inst[a].cpu().numpy(), shown, want["instance"], want["semantic"])
        pos = sim.pos[0, a].tolist()
        yaw = float(sim.yaw[0, a])
        cam = [pos[0], pos[1] + CAMERA_HEIGHT, pos[2]]
        vis = visible[0, a].cpu().numpy()
        meta = {
            **SCHEMA_DEFAULTS,
            "sceneName": self._scene_name,
            "lastAction": action,
            "lastActionSuccess": ok,
            "errorMessage": err,
            "actionReturn": ret,
            "agentId": a,
            "agent": {
                "name": f"agent{a}" if sim.agent_count > 1 else "agent",
                "position": _vec(round(pos[0], 6), AGENT_Y, round(pos[2], 6)),
                "rotation": _vec(0.0, yaw, 0.0),
                "cameraHorizon": float(sim.horizon[0, a]),
                "isStanding": True,
                "inHighFrictionArea": False,
            },
            "objects": objects_metadata(world, vis.tolist(), cam, self._object_filter, self._held_at()),
            "inventoryObjects": [
                {"objectId": oid, "objectType": world.object(oid).object_type}
                for oid, holder in world.picked_by.items()
                if holder == a
            ],
            "heldObjectPose": self._hands[a].pose(cam, yaw),
            "fov": sim.field_of_view,
            "cameraPosition": _vec(*cam),
            "screenWidth": sim.width,
            "screenHeight": sim.height,
            "sceneBounds": scene_bounds(world),
            "thirdPartyCameras": self._cameras.metadata(),
            "currentTime": 0.0,
        }
        if seg.colors:
            meta["colors"] = [{"name": n, "color": list(c)} for n, c in seg.colors]
        c2o = {c: n for n, c in seg.colors}
        return Event(meta, frame, depth, seg.instance, seg.masks, c2o, seg.semantic, seg.class_masks)
