"""Mutable state of one world (a scene instance): objects, receptacles and their boxes.

Navigation state (agent poses) lives in tensors in :mod:`thorgym.sim.batch`; this module owns
everything that changes through interaction (open/close, pick up/put, random spawns) and turns
it into the axis-aligned boxes the renderer and collision checks use.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import numpy as np

from .layout import (
    _SMALL_OBJECTS,
    INTERIOR_RECEPTACLES,
    RECESSED_IN,
    WALL_HEIGHT,
    WALL_MOUNTED,
    SceneObject,
    SceneSpec,
    _SurfacePlanner,
)
from .objects import OBJECT_TYPES, STRUCTURE_COLORS, TYPE_COLORS

# Instance codes for what is not an object (objects are 0..O-1).
FLOOR, CEILING, WALL = -1, -2, -3
AGENT_BASE = -10  # agent a has code AGENT_BASE - a
SHELL = 0.02  # wall thickness of hollow receptacles

INTERACTIONS = ("OpenObject", "CloseObject", "PickupObject", "PutObject")
_OPEN_DOOR_FACES = {0: (2, +1), 1: (0, +1), 2: (2, -1), 3: (0, -1)}  # facing -> (axis, sign)


@dataclass
class Boxes:
    """The boxes of one world, as numpy arrays of equal length B."""

    lo: np.ndarray  # (B, 3) float32
    hi: np.ndarray  # (B, 3)
    inst: np.ndarray  # (B,) int32 object index or structure code
    color: np.ndarray  # (B, 3) float32 in [0, 1]
    pattern: np.ndarray  # (B,) int8
    active: np.ndarray  # (B,) bool
    blocks: np.ndarray  # (B,) bool: blocks agent movement

    def __len__(self) -> int:
        return len(self.inst)


def _hollow(lo: np.ndarray, hi: np.ndarray, open_axis: int, open_sign: int) -> list[tuple]:
    """Five thin slabs forming a box open on one face."""
    out = []
    for ax in range(3):
        for sign in (-1, 1):
            if ax == open_axis and sign == open_sign:
                continue
            a, b = lo.copy(), hi.copy()
            if sign < 0:
                b[ax] = lo[ax] + SHELL
            else:
                a[ax] = hi[ax] - SHELL
            out.append((a, b))
    return out


def _slab_pieces(lo: np.ndarray, hi: np.ndarray, holes: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple]:
    """A box minus vertical shafts through it: holes are (x, z) rectangles (lo (2,), hi (2,))."""
    pieces = [(np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64))]
    for hlo, hhi in holes:
        out = []
        for a, b in pieces:
            if not (hlo[0] < b[0] and a[0] < hhi[0] and hlo[1] < b[2] and a[2] < hhi[1]):
                out.append((a, b))
                continue
            # Up to four pieces: the strips beside the hole along x, then along z within it.
            x0, x1 = max(a[0], hlo[0]), min(b[0], hhi[0])
            for xa, xb in ((a[0], x0), (x1, b[0])):
                if xb - xa > 1e-6:
                    out.append((np.array([xa, a[1], a[2]]), np.array([xb, b[1], b[2]])))
            for za, zb in ((a[2], max(a[2], hlo[1])), (min(b[2], hhi[1]), b[2])):
                if zb - za > 1e-6:
                    out.append((np.array([x0, a[1], za]), np.array([x1, b[1], zb])))
        pieces = out
    return pieces


class World:
    """One scene instance: objects with their current state, and per-agent inventories."""

    def __init__(self, spec: SceneSpec, agent_count: int = 1) -> None:
        self.spec = spec
        self.agent_count = agent_count
        self.objects: list[SceneObject] = [copy.copy(o) for o in spec.objects]
        for o in self.objects:
            o.center = o.center.copy()
            o.size = o.size.copy()
        self.is_open = {o.object_id: False for o in self.objects}
        # AI2-THOR's openness in [0, 1] of what is open (absent: closed); the door swings that far.
        self.openness: dict[str, float] = {}
        # Metadata-only states (thorgym.sim.states): switched on, and the liquid in an object.
        self.toggled: dict[str, bool] = {}
        self.liquid: dict[str, str] = {}
        self.picked_by: dict[str, int] = {}  # objectId -> agent holding it
        # Objects a push turned (thorgym.sim.physics): objectId -> quaternion (w, x, y, z) from
        # their upright pose, and their own extents (``size`` is then the axis-aligned box).
        self.orientation: dict[str, np.ndarray] = {}
        self.body_size: dict[str, np.ndarray] = {}
        self.version = 0  # bumps whenever boxes change
        self.objects_version = 0  # bumps whenever objects are added or removed (indices shift)
        self._reindex()
        self._boxes: Boxes | None = None

    # -- lookups ---------------------------------------------------------------------------
    def _reindex(self) -> None:
        self.index = {o.object_id: i for i, o in enumerate(self.objects)}

    def object(self, object_id: str) -> SceneObject:
        return self.objects[self.index[object_id]]

    def held_by(self, agent: int) -> str | None:
        return next((oid for oid, a in self.picked_by.items() if a == agent), None)

    def contents(self, object_id: str) -> list[str]:
        return [o.object_id for o in self.objects if o.parent == object_id]

    def _touch(self) -> None:
        self.version += 1
        self._boxes = None

    def touch(self) -> None:
        """Mark the boxes stale after a change made from outside (physics moved objects)."""
        self._touch()

    # -- boxes -----------------------------------------------------------------------------
    def boxes(self) -> Boxes:
        if self._boxes is None:
            self._boxes = self._build_boxes()
        return self._boxes

    def _recessed_footprints(self, surface: SceneObject) -> list[tuple[np.ndarray, np.ndarray]]:
        """(x, z) footprints (lo, hi) of what is set into `surface` (a kitchen sink in its counter)."""
        if surface.object_type not in RECESSED_IN.values():
            return []
        return [
            (o.lo[[0, 2]], o.hi[[0, 2]])
            for o in self.objects
            if o.parent == surface.object_id
            and RECESSED_IN.get(o.object_type) == surface.object_type
            and o.lo[1] < surface.hi[1] - 1e-6
        ]

    def _build_boxes(self) -> Boxes:
        x0, z0, x1, z1 = self.spec.bounds
        rows: list[tuple] = []  # lo, hi, inst, color, pattern, active, blocks

        def add(lo, hi, inst, color, pattern=0, active=True, blocks=False):
            rows.append((lo, hi, inst, color, pattern, active, blocks))

        add(
            (x0 - 0.3, -0.05, z0 - 0.3),
            (x1 + 0.3, 0.0, z1 + 0.3),
            FLOOR,
            STRUCTURE_COLORS["Floor"],
            2,
        )
        add(
            (x0 - 0.3, WALL_HEIGHT, z0 - 0.3),
            (x1 + 0.3, WALL_HEIGHT + 0.05, z1 + 0.3),
            CEILING,
            STRUCTURE_COLORS["Ceiling"],
        )
        for lo, hi in self.spec.walls:
            add(lo, hi, WALL, STRUCTURE_COLORS["Wall"], 1, True, True)
        for i, o in enumerate(self.objects):
            t = OBJECT_TYPES[o.object_type]
            color = TYPE_COLORS[o.object_type]
            held = o.object_id in self.picked_by
            # Furniture blocks the agent, also when raised off the floor (a wall-hung sink).
            blocks = o.parent is None and o.object_type not in WALL_MOUNTED
            lo, hi = o.lo, o.hi
            holes = self._recessed_footprints(o)
            if holes:
                for a, b in _slab_pieces(lo, hi, holes):
                    add(a, b, i, color, t.pattern, not held, blocks)
                continue
            mode = INTERIOR_RECEPTACLES.get(o.object_type)
            if mode == "top":
                for a, b in _hollow(lo, hi, 1, +1):
                    add(a, b, i, color, t.pattern, not held, blocks)
                continue
            if mode == "front" or (t.openable and t.receptacle and o.object_type != "Box"):
                is_open = self.is_open[o.object_id]
                axis, sign = _OPEN_DOOR_FACES[o.facing]
                add(lo, hi, i, color, t.pattern, not is_open and not held, blocks)
                shells = _hollow(lo, hi, axis, sign)
                for a, b in shells:
                    add(a, b, i, color, t.pattern, is_open and not held, blocks)
                dlo, dhi = self.door_box(i)
                add(dlo, dhi, i, color, t.pattern, is_open and not held, False)
                continue
            add(lo, hi, i, color, t.pattern, not held, blocks)

        n = len(rows)
        return Boxes(
            lo=np.array([r[0] for r in rows], dtype=np.float32).reshape(n, 3),
            hi=np.array([r[1] for r in rows], dtype=np.float32).reshape(n, 3),
            inst=np.array([r[2] for r in rows], dtype=np.int32),
            color=np.array([r[3] for r in rows], dtype=np.float32).reshape(n, 3),
            pattern=np.array([r[4] for r in rows], dtype=np.int8),
            active=np.array([r[5] for r in rows], dtype=bool),
            blocks=np.array([r[6] for r in rows], dtype=bool),
        )

    def has_door(self, i: int) -> bool:
        """Whether object `i` opens with a door on its front (what :meth:`door_box` draws)."""
        o = self.objects[i]
        t = OBJECT_TYPES[o.object_type]
        mode = INTERIOR_RECEPTACLES.get(o.object_type)
        return mode != "top" and (mode == "front" or (t.openable and t.receptacle and o.object_type != "Box"))

    def door_box(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of the open door of object `i`: hinged at one front edge, it reaches out from
        the front by ``openness`` times the front's width (a full swing at openness 1)."""
        o = self.objects[i]
        lo, hi = o.lo, o.hi
        axis, sign = _OPEN_DOOR_FACES[o.facing]
        dlo, dhi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
        side = 0 if axis == 2 else 2
        reach = (hi[side] - lo[side]) * self.openness.get(o.object_id, 1.0)
        if sign > 0:
            dlo[axis], dhi[axis] = hi[axis], hi[axis] + reach
        else:
            dlo[axis], dhi[axis] = lo[axis] - reach, lo[axis]
        dhi[side] = lo[side] + SHELL
        return dlo, dhi

    def extent(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of object `i` as AI2-THOR's axisAlignedBoundingBox reports it: its body, and
        its door too while it is open (so the box grows with the openness)."""
        o = self.objects[i]
        lo, hi = o.lo, o.hi
        if self.is_open.get(o.object_id) and self.has_door(i):
            dlo, dhi = self.door_box(i)
            lo, hi = np.minimum(lo, dlo), np.maximum(hi, dhi)
        return lo, hi

    # -- interactions (callers check visibility and arguments) -----------------------------
    def interact(self, action: str, object_id: str, agent: int = 0, openness: float = 1.0) -> str | None:
        """OpenObject / CloseObject / PickupObject / PutObject on an object (PutObject: the
        receptacle for what `agent` holds). Returns an error message or None."""
        if action == "OpenObject":
            return self.open(object_id, openness > 0, openness)
        if action == "CloseObject":
            return self.open(object_id, False)
        if action == "PickupObject":
            return self.pickup(object_id, agent)
        if action == "PutObject":
            return self.put(object_id, agent)
        raise ValueError(f"interact: unknown action {action!r}; one of {INTERACTIONS}")

    def open(self, object_id: str, open_: bool, openness: float = 1.0) -> str | None:
        """Open (to `openness` in (0, 1], AI2-THOR's fraction of a full swing) or close; returns
        an error message or None. Re-opening an open object to another openness moves its door
        there, as AI2-THOR does; asking for the state it is already in fails."""
        o = self.object(object_id)
        if not OBJECT_TYPES[o.object_type].openable:
            return f"{object_id} is not openable"
        target = float(openness) if open_ else 0.0
        if self.is_open[object_id] == open_ and self.openness.get(object_id, 0.0) == target:
            return f"{object_id} is already {'open' if open_ else 'closed'}"
        if object_id in self.picked_by:
            return f"{object_id} is being held"
        self.is_open[object_id] = open_
        if open_:
            self.openness[object_id] = target
        else:
            self.openness.pop(object_id, None)
        self._touch()
        return None

    def pickup(self, object_id: str, agent: int) -> str | None:
        o = self.object(object_id)
        if not OBJECT_TYPES[o.object_type].pickupable:
            return f"{object_id} is not pickupable"
        if object_id in self.picked_by:
            return f"{object_id} is already held"
        held = self.held_by(agent)
        if held is not None:
            return f"Agent {agent} is already holding {held}; put it down first"
        if self.contents(object_id):
            return f"{object_id} has objects on or in it; remove them first"
        self.picked_by[object_id] = agent
        o.parent, o.inside = None, False
        self._touch()
        return None

    def put(self, receptacle_id: str, agent: int) -> str | None:
        held = self.held_by(agent)
        if held is None:
            return f"Agent {agent} is not holding any object"
        rec = self.object(receptacle_id)
        rt = OBJECT_TYPES[rec.object_type]
        if not rt.receptacle:
            return f"{receptacle_id} is not a receptacle"
        if (
            rt.openable
            and INTERIOR_RECEPTACLES.get(rec.object_type) == "front"
            and not self.is_open[receptacle_id]
        ):
            return f"{receptacle_id} is closed; open it first"
        obj = self.object(held)
        del self.picked_by[held]
        rng = np.random.default_rng(zlib.crc32(f"{held}|{receptacle_id}|{self.version}".encode()))
        others = [o for o in self.objects if o.object_id != held and o.object_id not in self.picked_by]
        spot = _SurfacePlanner(others, rng).spot(obj.object_type, rec)
        if spot is None:
            self.picked_by[held] = agent
            return f"No free space on or in {receptacle_id} for {held}"
        obj.center, obj.size, obj.inside = spot[0], spot[1], spot[2]
        obj.parent = receptacle_id
        self._touch()
        return None

    def drop(self, agent: int, center, parent: str | None) -> str | None:
        """Let go of what `agent` holds, its box centre at `center` resting on `parent` (a
        receptacle's top, or None: the floor). Where is the caller's choice
        (:func:`thorgym.sim.agent_actions.drop_spot` finds a free one). Returns an error or None."""
        held = self.held_by(agent)
        if held is None:
            return f"Agent {agent} is not holding any object"
        obj = self.object(held)
        del self.picked_by[held]
        obj.center = np.asarray(center, dtype=np.float64).reshape(3).copy()
        obj.parent, obj.inside = parent, False
        self._touch()
        return None

    def random_spawn(
        self,
        seed: int,
        excluded_receptacles: list[str] | None = None,
        excluded_object_ids: list[str] | None = None,
        num_duplicates_of_type: dict[str, int] | None = None,
    ) -> None:
        """Re-place every pickupable object (not held, not excluded) reproducibly from a seed.

        ``num_duplicates_of_type`` ({objectType: count}) follows AI2-THOR's InitialRandomSpawn
        ``numDuplicatesOfType``: ``count`` is the number of instances of that pickupable type the
        scene should have. With fewer instances present, copies of them are added (objectId
        ``<source objectId>_copy_<j>``, as AI2-THOR names them) and placed like the others; a
        copy that finds no free spot is dropped. With more present, only the first ``count``
        are re-placed and the others stay where they are (AI2-THOR neither removes them nor
        moves them). A type with no instance in the scene, or one that is not pickupable, gets
        nothing. Excluded objects stay in place but still count. Without duplicates the result
        is the same as before this argument existed; with them, the originals land where they
        would without it and the copies are placed after them.
        """
        dup = _check_duplicates(num_duplicates_of_type)
        rng = np.random.default_rng(seed)
        allowed = {t: recs for t, _, _, recs in _SMALL_OBJECTS[self.spec.room_type]}
        excluded_rec = set(excluded_receptacles or [])
        excluded_obj = set(excluded_object_ids or [])
        # Instances beyond a requested count stay where they are.
        kept_in_place: set[str] = set()
        sources: dict[str, list[SceneObject]] = {}
        for otype, count in dup.items():
            of_type = [o for o in self.objects if o.object_type == otype]
            if not OBJECT_TYPES[otype].pickupable or not of_type:
                continue
            kept_in_place.update(o.object_id for o in of_type[count:])
            if count > len(of_type):
                sources[otype] = of_type
        movers = [
            o
            for o in self.objects
            if OBJECT_TYPES[o.object_type].pickupable
            and o.object_id not in self.picked_by
            and o.object_id not in excluded_obj
            and o.object_id not in kept_in_place
        ]
        mover_ids = {o.object_id for o in movers}
        staying = [o for o in self.objects if o.object_id not in mover_ids]
        planner = _SurfacePlanner(staying, rng)

        def place(o: SceneObject) -> bool:
            recs = allowed.get(o.object_type) or [
                t for t, ot in OBJECT_TYPES.items() if ot.receptacle and not ot.pickupable
            ]
            cands = [r for r in planner.candidates(o.object_type, recs) if r.object_type not in excluded_rec]
            for k in rng.permutation(len(cands)):
                spot = planner.spot(o.object_type, cands[k])
                if spot is not None:
                    o.center, o.size, o.inside = spot
                    o.parent = cands[k].object_id
                    planner.objects.append(o)
                    return True
            return False

        for o in movers:
            if not place(o):  # keep it where it was
                planner.objects.append(o)
        added = 0
        for otype, of_type in sources.items():
            for _ in range(dup[otype] - len(of_type)):
                src = of_type[int(rng.integers(len(of_type)))]
                j = 0
                while f"{src.object_id}_copy_{j}" in self.index:
                    j += 1
                copy_ = SceneObject(
                    otype, f"{src.object_id}_copy_{j}", src.center.copy(), src.size.copy(), src.facing
                )
                if place(copy_):  # AI2-THOR destroys a copy it cannot place
                    copy_.facing = self.object(copy_.parent).facing  # size was turned to it
                    self.objects.append(copy_)
                    self.is_open[copy_.object_id] = False
                    self.index[copy_.object_id] = len(self.objects) - 1
                    added += 1
        if added:
            self.objects_version += 1
        self._touch()

    def remove(self, object_id: str) -> str | None:
        """AI2-THOR's RemoveFromScene: the object leaves the world (also from an agent's hand).

        What rested on or in it drops onto what it stood on (its own receptacle, at its base
        height); the contents of removed furniture go with it. Returns an error message (unknown
        objectId) or None. Object indices after the removed one shift down by one.
        """
        if object_id not in self.index:
            return f"objectId: {object_id} is not the objectId on any object in the scene!"
        gone = self.object(object_id)
        drop: set[str] = {object_id}
        for o in self.objects:
            if o.parent != object_id:
                continue
            if gone.parent is None:
                drop.add(o.object_id)
                drop.update(self._descendants(o.object_id))
            else:
                dy = o.lo[1] - gone.lo[1]
                o.center = o.center.copy()
                o.center[1] -= dy
                o.parent, o.inside = gone.parent, gone.inside
        self.objects = [o for o in self.objects if o.object_id not in drop]
        for oid in drop:
            self.is_open.pop(oid, None)
            self.openness.pop(oid, None)
            self.toggled.pop(oid, None)
            self.liquid.pop(oid, None)
            self.picked_by.pop(oid, None)
        self._reindex()
        self.objects_version += 1
        self._touch()
        return None

    def move_object(self, object_id: str, center, facing: int | None = None) -> str | None:
        """Put an object's box centre at `center` (x, y, z), optionally turned to `facing`.

        AI2-THOR's TeleportObject without its physics: the object leaves its receptacle (parent
        None, so furniture or not it now blocks agents like furniture does) and what rests on or
        in it moves along, turned with it about its vertical axis. A quarter turn (odd change of
        facing) swaps the box's x and z extents, since boxes stay axis-aligned. Collisions are
        the caller's concern (:meth:`BatchedSimulator.teleport_object` checks them). Returns an
        error message (unknown objectId, object held by an agent, bad facing) or None.
        """
        if object_id not in self.index:
            return f"objectId: {object_id} is not the objectId on any object in the scene!"
        if object_id in self.picked_by:
            return f"{object_id} is held by Agent {self.picked_by[object_id]}; put it down first"
        o = self.object(object_id)
        if facing is None:
            facing = o.facing
        if isinstance(facing, bool) or not isinstance(facing, int | np.integer) or not 0 <= facing <= 3:
            return f"facing must be 0, 1, 2 or 3 (rotation.y = 90 * facing), got {facing!r}"
        turns = (int(facing) - o.facing) % 4
        old = o.center.copy()
        new = np.asarray(center, dtype=np.float64).reshape(3)
        for d in [o, *(self.object(k) for k in sorted(self._descendants(object_id)))]:
            rel = d.center - old
            for _ in range(turns):  # a quarter turn of yaw maps +z to +x: (x, z) -> (z, -x)
                rel = np.array([rel[2], rel[1], -rel[0]])
            d.center = new + rel
            if turns % 2:
                d.size = d.size[[2, 1, 0]].copy()
            d.facing = (d.facing + turns) % 4
        o.parent, o.inside = None, False
        self._touch()
        return None

    def _descendants(self, object_id: str) -> set[str]:
        out: set[str] = set()
        todo = [object_id]
        while todo:
            cur = todo.pop()
            for o in self.objects:
                if o.parent == cur and o.object_id not in out:
                    out.add(o.object_id)
                    todo.append(o.object_id)
        return out


def _check_duplicates(dup: dict[str, int] | None) -> dict[str, int]:
    """Validate {objectType: count} (ValueError naming the bad entry)."""
    if dup is None:
        return {}
    if not isinstance(dup, dict):
        raise ValueError(f"num_duplicates_of_type must be a dict {{objectType: count}}, got {dup!r}")
    for t, n in dup.items():
        if t not in OBJECT_TYPES:
            raise ValueError(f"numDuplicatesOfType: unknown objectType {t!r}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"numDuplicatesOfType: count for {t!r} must be an integer >= 0, got {n!r}")
    return {t: int(n) for t, n in dup.items()}
