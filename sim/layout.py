"""Procedural, deterministic scene generation: a floor plan, furniture and small objects per scene.

Every scene is generated from its name alone (a CRC32 seed), so FloorPlan7 is the same room on
every machine. Floor plans are rectangles, L-shapes (one corner removed) and rooms split by a
partition wall that leaves a narrow passage; kitchens may also get an island table.
Furniture stands against walls facing the room at real-world heights (counters on cabinets, a
kitchen sink set into its counter, a wall-hung bathroom sink); small objects sit on top surfaces or inside
receptacles (Fridge, Cabinet, Microwave, GarbageCan, Sink, Bathtub).
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .objects import OBJECT_TYPES
from .scenes import parse_scene

GRID = 0.25
AGENT_RADIUS = 0.2
WALL_HEIGHT = 2.6
WALL_THICKNESS = 0.1
AGENT_Y = 0.9009995
CAMERA_HEIGHT = 0.675  # camera above the agent's position, as iTHOR's standing agent

# Receptacles whose contents sit inside them; value = the open face when the receptacle is open:
# "front" (the face toward the room, reached by opening) or "top" (always open, e.g. a basin).
INTERIOR_RECEPTACLES = {
    "Fridge": "front",
    "Cabinet": "front",
    "Microwave": "front",
    "GarbageCan": "top",
    "Sink": "top",
    "Bathtub": "top",
}


# Heights of fixtures (metres). Counters are a slab on a run of cabinets (kitchens and bathroom
# vanities); a kitchen sink is set into its counter, resting on the cabinets below the slab, with
# its rim above the counter; a bathroom sink is a wall-hung basin. Contents of a sink may rise
# above its rim (a pot in a sink), those of other open-top receptacles stay below theirs.
COUNTER_THICKNESS = 0.06
COUNTER_TOP = {"kitchen": 0.9, "bathroom": 0.85}
WALL_HUNG_BOTTOM = {"Sink": 0.75}
RECESSED_IN = {"Sink": "CounterTop"}  # object type -> the surface it is set into
_ABOVE_RIM = {"Sink": 0.25}
WALL_MOUNTED = ("LightSwitch", "Mirror")  # on walls: neither furniture nor obstacles


def object_id(object_type: str, center: np.ndarray) -> str:
    x, y, z = (float(v) for v in center)
    return f"{object_type}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"


@dataclass
class SceneObject:
    """One object of a generated scene, in its initial state."""

    object_type: str
    object_id: str
    center: np.ndarray  # (3,) metres
    size: np.ndarray  # (3,) axis-aligned extents
    facing: int  # front direction: 0 +z, 1 +x, 2 -z, 3 -x (rotation.y = 90 * facing)
    parent: str | None = None  # receptacle objectId
    inside: bool = False  # inside (not on top of) its parent

    @property
    def lo(self) -> np.ndarray:
        return self.center - self.size / 2

    @property
    def hi(self) -> np.ndarray:
        return self.center + self.size / 2


@dataclass
class SceneSpec:
    name: str
    room_type: str
    index: int
    bounds: tuple[float, float, float, float]  # xmin, zmin, xmax, zmax of the floor
    walls: list[tuple[np.ndarray, np.ndarray]]  # wall boxes (lo, hi)
    objects: list[SceneObject]
    start: tuple[float, float, float]  # agent x, z, yaw
    shape: str = "rect"
    cut: tuple[float, float] | None = None  # removed north-east corner (x > cx and z > cz)
    reachable: list[tuple[float, float]] = field(default_factory=list)

    def object(self, object_id: str) -> SceneObject:
        for o in self.objects:
            if o.object_id == object_id:
                return o
        raise KeyError(object_id)


# ---------------------------------------------------------------------------------------------
# Room types as data: room size (in grid cells), wall furniture, islands and small objects.

_ROOM_CELLS = {
    "kitchen": ((18, 24), (16, 22)),
    "living_room": ((20, 26), (18, 24)),
    "bedroom": ((16, 22), (16, 20)),
    "bathroom": ((12, 15), (11, 14)),
}

# (type, required) in placement order; counters are handled separately for kitchens.
_WALL_FURNITURE = {
    "kitchen": [("Fridge", True), ("GarbageCan", True), ("ShelvingUnit", False)],
    "living_room": [
        ("TVStand", True),
        ("Sofa", True),
        ("ArmChair", False),
        ("SideTable", True),
        ("FloorLamp", False),
        ("GarbageCan", True),
        ("ShelvingUnit", False),
    ],
    "bedroom": [
        ("Bed", True),
        ("SideTable", True),
        ("Dresser", True),
        ("Desk", False),
        ("GarbageCan", False),
        ("ShelvingUnit", False),
    ],
    "bathroom": [
        ("Bathtub", True),
        ("Toilet", True),
        ("Sink", True),
        ("CounterTop", False),
        ("GarbageCan", False),
    ],
}
_ISLANDS = {"kitchen": ["TableTop"], "living_room": ["CoffeeTable"], "bedroom": [], "bathroom": []}

# Fixed on-top placements: (object, receptacle type, required).
_ON_FURNITURE = {
    "kitchen": [
        ("Sink", "CounterTop", True),
        ("StoveBurner", "CounterTop", True),
        ("StoveBurner", "CounterTop", True),
        ("Microwave", "CounterTop", True),
        ("Toaster", "CounterTop", True),
        ("CoffeeMaker", "CounterTop", True),
    ],
    "living_room": [("Television", "TVStand", True), ("HousePlant", "SideTable", False)],
    "bedroom": [("Lamp", "SideTable", True), ("HousePlant", "Dresser", True)],
    "bathroom": [],
}

_KITCHEN_SURFACES = ["CounterTop", "TableTop"]
_KITCHEN_STORAGE = ["Fridge", "Cabinet", "Microwave"]
_KITCHEN_FOOD = _KITCHEN_SURFACES + ["Fridge", "Sink", "GarbageCan"]
_KITCHEN_WARE = _KITCHEN_SURFACES + ["Cabinet", "Sink", "Fridge"]

# (type, min count, max count, allowed receptacles)
_SMALL_OBJECTS = {
    "kitchen": [
        ("Bowl", 1, 2, _KITCHEN_WARE + ["Microwave"]),
        ("Box", 1, 1, ["TableTop", "CounterTop"]),
        ("Spoon", 1, 2, _KITCHEN_WARE),
        ("Fork", 1, 2, _KITCHEN_WARE),
        ("Knife", 1, 2, _KITCHEN_WARE),
        ("Plate", 1, 2, _KITCHEN_WARE),
        ("Mug", 1, 2, _KITCHEN_WARE + ["Microwave"]),
        ("Cup", 0, 1, _KITCHEN_WARE),
        ("Container", 1, 2, _KITCHEN_SURFACES + _KITCHEN_STORAGE),
        ("Potato", 1, 2, _KITCHEN_FOOD + ["Microwave"]),
        ("Egg", 1, 2, _KITCHEN_FOOD),
        ("Tomato", 1, 2, _KITCHEN_FOOD),
        ("Lettuce", 1, 1, _KITCHEN_FOOD),
        ("Apple", 1, 2, _KITCHEN_FOOD + ["Microwave"]),
        ("Bread", 1, 1, _KITCHEN_FOOD),
        ("Pot", 1, 1, ["StoveBurner", "CounterTop", "Cabinet"]),
        ("Pan", 1, 1, ["StoveBurner", "CounterTop", "Cabinet"]),
        ("Kettle", 0, 1, ["StoveBurner", "CounterTop"]),
        ("SaltShaker", 0, 1, _KITCHEN_SURFACES + ["Cabinet"]),
        ("DishSponge", 0, 1, ["Sink", "CounterTop"]),
        ("SoapBottle", 0, 1, ["CounterTop"]),
    ],
    "living_room": [
        ("Pillow", 1, 2, ["Sofa", "ArmChair"]),
        ("Laptop", 1, 1, ["CoffeeTable", "SideTable", "Sofa", "TVStand"]),
        ("Box", 1, 1, ["CoffeeTable", "TVStand", "ShelvingUnit", "SideTable"]),
        ("Bowl", 1, 1, ["CoffeeTable", "SideTable", "TVStand", "ShelvingUnit"]),
        ("RemoteControl", 1, 1, ["CoffeeTable", "Sofa", "ArmChair", "TVStand"]),
        ("Newspaper", 0, 1, ["CoffeeTable", "Sofa", "SideTable"]),
        ("Statue", 0, 1, ["ShelvingUnit", "SideTable", "TVStand"]),
        ("Vase", 0, 1, ["ShelvingUnit", "SideTable", "CoffeeTable"]),
        ("KeyChain", 0, 1, ["CoffeeTable", "SideTable", "ShelvingUnit"]),
        ("Book", 0, 1, ["CoffeeTable", "ShelvingUnit", "SideTable"]),
        ("CellPhone", 0, 1, ["Sofa", "CoffeeTable", "SideTable"]),
    ],
    "bedroom": [
        ("Book", 1, 2, ["Bed", "Desk", "Dresser", "SideTable", "ShelvingUnit"]),
        ("AlarmClock", 1, 1, ["SideTable", "Dresser", "Desk"]),
        ("Pillow", 1, 2, ["Bed"]),
        ("CellPhone", 0, 1, ["Bed", "Desk", "SideTable", "Dresser"]),
        ("CD", 0, 1, ["Desk", "Dresser", "ShelvingUnit"]),
        ("Pencil", 0, 1, ["Desk", "Dresser"]),
        ("Laptop", 0, 1, ["Bed", "Desk"]),
        ("KeyChain", 0, 1, ["Dresser", "SideTable", "Desk"]),
        ("Box", 0, 1, ["Dresser", "Desk", "ShelvingUnit"]),
        ("Mug", 0, 1, ["Desk", "SideTable"]),
    ],
    "bathroom": [
        ("ToiletPaper", 1, 2, ["Toilet", "CounterTop", "Bathtub"]),
        ("SoapBottle", 1, 2, ["Sink", "CounterTop", "Bathtub", "Toilet"]),
        ("Towel", 0, 1, ["Bathtub", "CounterTop"]),
        ("Candle", 0, 1, ["CounterTop", "Toilet", "Bathtub"]),
        ("SprayBottle", 0, 1, ["CounterTop", "Toilet"]),
        ("Cloth", 0, 1, ["CounterTop", "Bathtub", "Sink"]),
        ("DishSponge", 0, 1, ["Bathtub", "Sink"]),
    ],
}



def spawn_receptacles(room: str, object_type: str) -> tuple[str, ...]:
    """Receptacle types a small object may be spawned on/in in a room type (empty if none)."""
    for t, _, _, recs in _SMALL_OBJECTS.get(room, []):
        if t == object_type:
            return tuple(recs)
    return ()


_DIRS = {0: (0.0, 1.0), 1: (1.0, 0.0), 2: (0.0, -1.0), 3: (-1.0, 0.0)}


@dataclass
class _Segment:
    """A straight wall, seen from inside the room: `normal` is the facing of what stands at it."""

    a: float  # start along the wall's axis
    b: float  # end
    c: float  # coordinate of the wall line on the other axis
    facing: int  # inward normal as a facing index

    @property
    def along_x(self) -> bool:
        return self.facing in (0, 2)

    @property
    def length(self) -> float:
        return self.b - self.a


class _Rects:
    """Axis-aligned rectangles on the floor (xmin, zmin, xmax, zmax)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, float, float]] = []

    def overlaps(self, r: tuple[float, float, float, float], margin: float = 0.0) -> bool:
        for q in self.items:
            if (
                r[0] < q[2] + margin
                and q[0] < r[2] + margin
                and r[1] < q[3] + margin
                and q[1] < r[3] + margin
            ):
                return True
        return False


def scene_seed(name: str, attempt: int = 0) -> int:
    return zlib.crc32(f"{name}#{attempt}".encode())


def generate_scene(name: str) -> SceneSpec:
    """Generate the scene of a name deterministically (the `_physics` suffix is accepted)."""
    canonical, room, index = parse_scene(name)
    for attempt in range(64):
        spec = _try_generate(canonical, room, index, np.random.default_rng(scene_seed(canonical, attempt)))
        if spec is not None:
            return spec
    raise RuntimeError(f"could not lay out {canonical}; this is a bug in thorgym.sim.layout")


def _try_generate(name: str, room: str, index: int, rng: np.random.Generator) -> SceneSpec | None:
    """One layout attempt; None when a required piece does not fit (the caller reseeds).

    The steps draw from `rng` in this fixed order, so a scene is a function of its name.
    """
    b = _Builder(room, index, rng)
    b.floor_plan()
    b.build_walls()
    b.add_partition()
    if room == "kitchen" and not b.kitchen_counters():
        return None
    if not (b.wall_furniture() and b.islands() and b.wall_mounts() and b.surface_objects()):
        return None
    return b.finish(name)


class _Floor:
    """Inside test of the floor (a rectangle, maybe without its north-east corner)."""

    def __init__(self, bounds: tuple[float, float, float, float], cut: tuple[float, float] | None):
        self.x0, self.z0, self.x1, self.z1 = bounds
        self.cut = cut

    def __call__(self, x: float, z: float) -> bool:
        if not (self.x0 <= x <= self.x1 and self.z0 <= z <= self.z1):
            return False
        return not (self.cut is not None and x > self.cut[0] and z > self.cut[1])

    def vec(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        ok = (self.x0 <= X) & (X <= self.x1) & (self.z0 <= Z) & (Z <= self.z1)
        if self.cut is not None:
            ok &= ~((X > self.cut[0]) & (Z > self.cut[1]))
        return ok

    def holds(self, rect: tuple[float, float, float, float]) -> bool:
        """All four corners of a floor rectangle are inside."""
        return all(
            self(px, pz)
            for px, pz in (
                (rect[0], rect[1]),
                (rect[2], rect[3]),
                (rect[0], rect[3]),
                (rect[2], rect[1]),
            )
        )


class _Builder:
    """The state of one layout attempt: floor plan, walls, occupied floor and objects so far."""

    def __init__(self, room: str, index: int, rng: np.random.Generator) -> None:
        self.room, self.index, self.rng = room, index, rng
        (wmin, wmax), (dmin, dmax) = _ROOM_CELLS[room]
        self.w_cells = int(rng.integers(wmin, wmax + 1))
        self.d_cells = int(rng.integers(dmin, dmax + 1))
        self.x0 = -GRID * (self.w_cells // 2)
        self.z0 = -GRID * (self.d_cells // 2)
        self.x1, self.z1 = self.x0 + GRID * self.w_cells, self.z0 + GRID * self.d_cells
        # Spread the floor-plan shapes over the scene indices so every room type has each kind.
        shape = ("rect", "L", "partition", "L+partition")[index % 4]
        if room == "bathroom" and "partition" in shape:
            shape = shape.replace("partition", "").strip("+") or "rect"
        self.shape = shape
        self.segments: list[_Segment] = []
        self.walls: list[tuple[np.ndarray, np.ndarray]] = []
        self.cut: tuple[float, float] | None = None
        self.inside = _Floor((self.x0, self.z0, self.x1, self.z1), None)
        self.floor_rects = _Rects()
        self.keep_free = _Rects()  # clearance in front of furniture, kept free of other furniture
        self.objects: list[SceneObject] = []

    # -- floor plan and walls ----------------------------------------------------------------
    def floor_plan(self) -> None:
        """The wall segments of the room outline (an L-shape removes the north-east corner)."""
        x0, z0, x1, z1 = self.x0, self.z0, self.x1, self.z1
        if "L" in self.shape:
            rng = self.rng
            cw = GRID * int(rng.integers(int(self.w_cells * 0.3), int(self.w_cells * 0.45) + 1))
            cd = GRID * int(rng.integers(int(self.d_cells * 0.3), int(self.d_cells * 0.45) + 1))
            self.cut = (x1 - cw, z1 - cd)
            cx, cz = self.cut
            self.segments += [
                _Segment(x0, x1, z0, 0),
                _Segment(z0, z1, x0, 1),
                _Segment(x0, cx, z1, 2),
                _Segment(z0, cz, x1, 3),
                _Segment(cx, x1, cz, 2),
                _Segment(cz, z1, cx, 3),
            ]
        else:
            self.segments += [
                _Segment(x0, x1, z0, 0),
                _Segment(z0, z1, x0, 1),
                _Segment(x0, x1, z1, 2),
                _Segment(z0, z1, x1, 3),
            ]
        self.inside = _Floor((x0, z0, x1, z1), self.cut)

    def build_walls(self) -> None:
        t = WALL_THICKNESS
        for s in self.segments:
            if s.along_x:
                zlo = s.c - t if s.facing == 0 else s.c
                self.walls.append((np.array([s.a - t, 0.0, zlo]), np.array([s.b + t, WALL_HEIGHT, zlo + t])))
            else:
                xlo = s.c - t if s.facing == 1 else s.c
                self.walls.append((np.array([xlo, 0.0, s.a - t]), np.array([xlo + t, WALL_HEIGHT, s.b + t])))

    def add_partition(self) -> None:
        """A wall from the south side towards the north, leaving a passage of 0.75–1.0 m."""
        if "partition" not in self.shape:
            return
        rng, t, cut = self.rng, WALL_THICKNESS, self.cut
        xs = self.x0 + GRID * int(rng.integers(int(self.w_cells * 0.4), int(self.w_cells * 0.6) + 1))
        top = (cut[1] if cut is not None and xs > cut[0] else self.z1) - GRID * int(rng.integers(3, 5))
        lo = np.array([xs - t / 2, 0.0, self.z0 - t])
        hi = np.array([xs + t / 2, WALL_HEIGHT, top])
        self.walls.append((lo, hi))
        self.floor_rects.items.append((lo[0], lo[2], hi[0], hi[2]))

    # -- primitives ----------------------------------------------------------------------------
    def add(self, otype: str, center, size, facing: int, parent: str | None = None, inside_=False):
        """Add an object (None when one with the same objectId exists)."""
        c = np.round(np.asarray(center, dtype=np.float64), 4)
        obj = SceneObject(
            otype,
            object_id(otype, c),
            c,
            np.asarray(size, dtype=np.float64),
            facing,
            parent,
            inside_,
        )
        if any(o.object_id == obj.object_id for o in self.objects):
            return None
        self.objects.append(obj)
        return obj

    def reachable(self) -> tuple[list[tuple[float, float]], int]:
        return _reachable(self.x0, self.z0, self.x1, self.z1, self.inside, self.floor_rects)

    def grid_ok(self) -> bool:
        reach, n = self.reachable()
        return n == 1 and len(reach) >= 12

    def place_at_wall(self, w: float, d: float, seg: _Segment, pos: float | None = None):
        """Reserve a w × d floor rectangle against a wall segment (None when it does not fit)."""
        if seg.length < w + 0.1:
            return None
        s = pos if pos is not None else float(self.rng.uniform(seg.a + 0.02, seg.b - w - 0.02))
        s = round(s / 0.05) * 0.05
        s = min(max(s, seg.a + 0.01), seg.b - w - 0.01)
        nx, nz = _DIRS[seg.facing]
        if seg.along_x:
            zs = sorted([seg.c, seg.c + nz * d])
            rect = (s, zs[0], s + w, zs[1])
            clear = (
                s,
                min(zs[0], seg.c + nz * (d + 0.55)),
                s + w,
                max(zs[1], seg.c + nz * (d + 0.55)),
            )
        else:
            xs_ = sorted([seg.c, seg.c + nx * d])
            rect = (xs_[0], s, xs_[1], s + w)
            clear = (
                min(xs_[0], seg.c + nx * (d + 0.55)),
                s,
                max(xs_[1], seg.c + nx * (d + 0.55)),
                s + w,
            )
        if self.floor_rects.overlaps(rect, 0.02) or self.keep_free.overlaps(rect, 0.0):
            return None
        if not self.inside.holds(rect):
            return None
        self.floor_rects.items.append(rect)
        if not self.grid_ok():
            self.floor_rects.items.pop()
            return None
        self.keep_free.items.append(clear)
        return rect

    def wall_item(self, otype: str, tries: int = 40) -> SceneObject | None:
        size = np.array(OBJECT_TYPES[otype].size, dtype=np.float64)
        w, h, d = size
        for _ in range(tries):
            seg = self.segments[int(self.rng.integers(len(self.segments)))]
            rect = self.place_at_wall(w, d, seg)
            if rect is None:
                continue
            if otype == "CounterTop":
                return self.counter_run(rect, seg, COUNTER_TOP[self.room])
            sx, sz = (w, d) if seg.along_x else (d, w)
            y = WALL_HUNG_BOTTOM.get(otype, 0.0) + h / 2
            center = ((rect[0] + rect[2]) / 2, y, (rect[1] + rect[3]) / 2)
            return self.add(otype, center, (sx, h, sz), seg.facing)
        return None

    def wall_mount(self, otype: str, y: float, near: str | None = None) -> bool:
        """A wall-mounted thing (not an obstacle) at height y, on a wall facing like `near`."""
        size = np.array(OBJECT_TYPES[otype].size)
        cands = list(self.segments)
        if near is not None:
            anchor = next((o for o in self.objects if o.object_type == near), None)
            if anchor is not None:
                cands = [s for s in self.segments if s.facing == anchor.facing] or cands
        for _ in range(30):
            seg = cands[int(self.rng.integers(len(cands)))]
            if seg.length < size[0] + 0.3:
                continue
            s = float(self.rng.uniform(seg.a + 0.1, seg.b - size[0] - 0.1))
            nx, nz = _DIRS[seg.facing]
            if seg.along_x:
                c = (s + size[0] / 2, y, seg.c + nz * size[2] / 2)
                sz = (size[0], size[1], size[2])
            else:
                c = (seg.c + nx * size[2] / 2, y, s + size[0] / 2)
                sz = (size[2], size[1], size[0])
            if self.add(otype, c, sz, seg.facing) is not None:
                return True
        return False

    # -- furnishing steps (each False: the attempt fails) ----------------------------------
    def kitchen_counters(self) -> bool:
        """Counter runs with cabinets below, placed first on the longest walls (>= 3 m in all)."""
        total = 0.0
        for seg in sorted(self.segments, key=lambda s: -s.length)[:3]:
            if total >= 3.5:
                break
            n_cab = int(min((seg.length - 0.2) // 0.5, self.rng.integers(4, 8)))
            if n_cab < 3:
                continue
            length, depth = 0.5 * n_cab, 0.62
            rect = None
            for _ in range(20):
                rect = self.place_at_wall(length, depth, seg)
                if rect is not None:
                    break
            if rect is None:
                continue
            if self.counter_run(rect, seg, COUNTER_TOP["kitchen"]) is None:
                continue
            total += length
        return total >= 3.0

    def counter_run(self, rect, seg: _Segment, top: float) -> SceneObject | None:
        """A CounterTop slab with its top at `top` on a row of 0.5 m cabinets filling `rect`."""
        counter = self.add(
            "CounterTop",
            ((rect[0] + rect[2]) / 2, top - COUNTER_THICKNESS / 2, (rect[1] + rect[3]) / 2),
            (rect[2] - rect[0], COUNTER_THICKNESS, rect[3] - rect[1]),
            seg.facing,
        )
        if counter is None:
            return None
        length = (rect[2] - rect[0]) if seg.along_x else (rect[3] - rect[1])
        depth = (rect[3] - rect[1]) if seg.along_x else (rect[2] - rect[0])
        h = round(top - COUNTER_THICKNESS, 4)
        for k in range(int(round(length / 0.5))):
            if seg.along_x:
                c = (rect[0] + 0.25 + 0.5 * k, h / 2, (rect[1] + rect[3]) / 2)
                size = (0.5, h, depth)
            else:
                c = ((rect[0] + rect[2]) / 2, h / 2, rect[1] + 0.25 + 0.5 * k)
                size = (depth, h, 0.5)
            self.add("Cabinet", c, size, seg.facing)
        return counter

    def wall_furniture(self) -> bool:
        for otype, required in _WALL_FURNITURE[self.room]:
            if self.wall_item(otype) is None and required:
                return False
        return True

    def islands(self) -> bool:
        """Free-standing tables away from the walls."""
        rng = self.rng
        for otype in _ISLANDS[self.room]:
            size = np.array(OBJECT_TYPES[otype].size)
            placed = False
            for _ in range(60):
                cx = float(rng.uniform(self.x0 + 1.0, self.x1 - 1.0))
                cz = float(rng.uniform(self.z0 + 1.0, self.z1 - 1.0))
                cx, cz = round(cx / 0.05) * 0.05, round(cz / 0.05) * 0.05
                rect = (cx - size[0] / 2, cz - size[2] / 2, cx + size[0] / 2, cz + size[2] / 2)
                if not self.inside.holds(rect):
                    continue
                if self.floor_rects.overlaps(rect, 0.6) or self.keep_free.overlaps(rect):
                    continue
                self.floor_rects.items.append(rect)
                if not self.grid_ok():
                    self.floor_rects.items.pop()
                    continue
                self.add(otype, (cx, size[1] / 2, cz), size, int(rng.integers(4)))
                placed = True
                break
            if not placed:
                return False
        return True

    def wall_mounts(self) -> bool:
        if not self.wall_mount("LightSwitch", 1.3):
            return False
        if self.room == "bathroom":
            self.wall_mount("Mirror", 1.55, near="Sink")
        return True

    def surface_objects(self) -> bool:
        """Fixed on-furniture items, then the room's small objects on or in receptacles."""
        surfaces = _SurfacePlanner(self.objects, self.rng)
        for otype, rtype, required in _ON_FURNITURE[self.room]:
            back = otype in ("Television",)
            if surfaces.place(otype, [rtype], self.add, against_back=back) is None and required:
                return False
        for otype, cmin, cmax, recs in _SMALL_OBJECTS[self.room]:
            for _ in range(int(self.rng.integers(cmin, cmax + 1))):
                if surfaces.place(otype, recs, self.add) is None and cmin > 0:
                    return False
        return True

    def finish(self, name: str) -> SceneSpec | None:
        """The scene with a random start on the reachable grid (None when too little is free)."""
        reach, _ = self.reachable()
        if len(reach) < 12:
            return None
        sx, sz = reach[int(self.rng.integers(len(reach)))]
        start = (sx, sz, 90.0 * int(self.rng.integers(4)))
        return SceneSpec(
            name,
            self.room,
            self.index,
            (self.x0, self.z0, self.x1, self.z1),
            self.walls,
            self.objects,
            start,
            shape=self.shape,
            cut=self.cut,
            reachable=reach,
        )


class _SurfacePlanner:
    """Places small objects on top of, or inside, receptacles without overlaps."""

    def __init__(self, objects: list[SceneObject], rng: np.random.Generator) -> None:
        self.objects = objects
        self.rng = rng
        # Boxes of the obstacles in `objects`, kept in step with the list as it grows (objects are
        # appended once placed and not moved afterwards): `fits` tests them all at once.
        self._seen: list[SceneObject] = []
        self._lo = np.zeros((0, 3))
        self._hi = np.zeros((0, 3))
        self._ids = np.zeros(0, dtype=object)
        self._obstacle = np.zeros(0, dtype=bool)

    def _boxes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n, k = len(self.objects), len(self._seen)
        replaced = k and (self.objects[0] is not self._seen[0] or self.objects[k - 1] is not self._seen[-1])
        if n < k or replaced:
            self._seen, k = [], 0  # the list was replaced or shrank: start again
            self._lo, self._hi = np.zeros((0, 3)), np.zeros((0, 3))
            self._ids, self._obstacle = np.zeros(0, dtype=object), np.zeros(0, dtype=bool)
        if n > k:
            new = self.objects[k:]
            self._lo = np.concatenate([self._lo, np.array([o.lo for o in new]).reshape(-1, 3)])
            self._hi = np.concatenate([self._hi, np.array([o.hi for o in new]).reshape(-1, 3)])
            self._ids = np.concatenate([self._ids, np.array([o.object_id for o in new], dtype=object)])
            # receptacles standing on the floor are the support, not obstacles
            obstacle = [not (o.parent is None and OBJECT_TYPES[o.object_type].receptacle) for o in new]
            self._obstacle = np.concatenate([self._obstacle, np.array(obstacle, dtype=bool)])
            self._seen = list(self.objects)
        return self._lo, self._hi, self._ids, self._obstacle

    def regions(self, rec: SceneObject) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Placement regions (lo, hi) of a receptacle; flag True when inside it."""
        lo, hi = rec.lo, rec.hi
        margin = 0.04
        mode = INTERIOR_RECEPTACLES.get(rec.object_type)
        if mode is None:
            top = hi[1]
            return [
                (
                    np.array([lo[0] + margin, top, lo[2] + margin]),
                    np.array([hi[0] - margin, top + 1.0, hi[2] - margin]),
                    False,
                )
            ]
        base = lo[1] + 0.03
        top = hi[1] - 0.03 + _ABOVE_RIM.get(rec.object_type, 0.0)
        if rec.object_type == "Fridge":
            levels = [base, lo[1] + 0.62, lo[1] + 1.18]
            return [
                (
                    np.array([lo[0] + margin, y, lo[2] + margin]),
                    np.array([hi[0] - margin, y + 0.5, hi[2] - margin]),
                    True,
                )
                for y in levels
            ]
        return [
            (
                np.array([lo[0] + margin, base, lo[2] + margin]),
                np.array([hi[0] - margin, top, hi[2] - margin]),
                True,
            )
        ]

    def candidates(self, otype: str, rtypes: list[str], exclude: set[str] | None = None):
        recs = [
            o for o in self.objects if o.object_type in rtypes and not OBJECT_TYPES[o.object_type].pickupable
        ]
        if exclude:
            recs = [o for o in recs if o.object_id not in exclude]
        return recs

    def fits(self, lo: np.ndarray, hi: np.ndarray, ignore: str | None = None) -> bool:
        olo, ohi, ids, obstacle = self._boxes()
        hit = obstacle & (lo < ohi - 1e-6).all(1) & (olo < hi - 1e-6).all(1)
        if ignore is not None:
            hit &= ids != ignore
        return not bool(hit.any())

    def spot(self, otype: str, rec: SceneObject, against_back: bool = False):
        size = np.array(OBJECT_TYPES[otype].size, dtype=np.float64)
        if rec.facing in (1, 3):
            size = size[[2, 1, 0]]
        regions = self.regions(rec)
        order = self.rng.permutation(len(regions))
        for ri in order:
            rlo, rhi, inside = regions[ri]
            if np.any((rhi - rlo)[[0, 2]] < size[[0, 2]]) or rhi[1] - rlo[1] < size[1]:
                continue
            for _ in range(12):
                c = np.empty(3)
                for ax in (0, 2):
                    span = rhi[ax] - rlo[ax] - size[ax]
                    c[ax] = rlo[ax] + size[ax] / 2 + (self.rng.uniform(0, span) if span > 0 else span / 2)
                if against_back:
                    fx, fz = _DIRS[rec.facing]
                    if fx:
                        c[0] = (rlo[0] + size[0] / 2) if fx > 0 else (rhi[0] - size[0] / 2)
                    else:
                        c[2] = (rlo[2] + size[2] / 2) if fz > 0 else (rhi[2] - size[2] / 2)
                c[1] = rlo[1] + size[1] / 2
                if RECESSED_IN.get(otype) == rec.object_type:
                    c[1] -= rec.size[1]  # set into the surface, resting on what is below it
                lo, hi = c - size / 2, c + size / 2
                if self.fits(lo, hi, ignore=rec.object_id):
                    return c, size, inside
        return None

    def place(self, otype: str, rtypes: list[str], add, against_back: bool = False):
        recs = self.candidates(otype, rtypes)
        if not recs:
            return None
        for k in self.rng.permutation(len(recs)):
            rec = recs[k]
            s = self.spot(otype, rec, against_back)
            if s is None:
                continue
            c, size, inside = s
            return add(otype, c, size, rec.facing, rec.object_id, inside)
        return None


def _free_grid(x0, z0, x1, z1, inside, rects: _Rects):
    """Boolean grid (nx-1, nz-1): interior grid points where the agent is collision-free."""
    nx = int(round((x1 - x0) / GRID))
    nz = int(round((z1 - z0) / GRID))
    xs = np.round(x0 + GRID * np.arange(1, nx), 4)
    zs = np.round(z0 + GRID * np.arange(1, nz), 4)
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    r = AGENT_RADIUS
    ok = np.ones(X.shape, dtype=bool)
    for ox, oz in ((r, 0), (-r, 0), (0, r), (0, -r), (0, 0)):
        ok &= inside.vec(X + ox, Z + oz)
    if rects.items:
        q = np.asarray(rects.items)[:, None, None, :]
        dx = np.maximum(np.maximum(q[..., 0] - X, 0.0), X - q[..., 2])
        dz = np.maximum(np.maximum(q[..., 1] - Z, 0.0), Z - q[..., 3])
        ok &= ~np.any(dx * dx + dz * dz < r * r, axis=0)
    return xs, zs, ok


def _components(ok: np.ndarray) -> np.ndarray:
    """Label 4-connected components of a boolean grid (0 = not free)."""
    labels = np.zeros(ok.shape, dtype=np.int32)
    n = 0
    for i, j in zip(*np.nonzero(ok), strict=True):
        if labels[i, j]:
            continue
        n += 1
        labels[i, j] = n
        dq = deque([(i, j)])
        while dq:
            a, b = dq.popleft()
            for c, d in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
                if 0 <= c < ok.shape[0] and 0 <= d < ok.shape[1] and ok[c, d] and not labels[c, d]:
                    labels[c, d] = n
                    dq.append((c, d))
    return labels


def _reachable(x0, z0, x1, z1, inside, rects):
    """(largest connected set of free grid points, number of components)."""
    xs, zs, ok = _free_grid(x0, z0, x1, z1, inside, rects)
    labels = _components(ok)
    n = int(labels.max())
    if n == 0:
        return [], 0
    counts = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(counts)) + 1
    ii, jj = np.nonzero(labels == best)
    return sorted((float(xs[i]), float(zs[j])) for i, j in zip(ii, jj, strict=True)), n
