"""Rigid-body physics of one world with MuJoCo: AI2-THOR's force actions on the built-in simulator.

:class:`ScenePhysics` builds a MuJoCo model of a :class:`~thorgym.sim.world.World` as it is now:
every object AI2-THOR lets a push move (pickupable or moveable, not held by an agent) becomes a
free rigid body made of that object's boxes, with the object's mass spread over them by volume;
the floor, walls, furniture and everything else are static boxes. Gravity points along −y (the
simulator's up axis is +y, as AI2-THOR's), so positions need no change of frame.

A push follows AI2-THOR's ``DirectionalPush``: ``Rigidbody.AddForce(direction * moveMagnitude)``
in Unity's default force mode acts for one fixed physics step (``fixedDeltaTime`` 0.02 s), so a
push of ``moveMagnitude`` newtons gives the object an impulse of ``moveMagnitude * 0.02`` N·s
(:data:`FORCE_SECONDS`). Here the force is applied for exactly that long, at the object's centre
(AI2-THOR) or at a given point on it (the forces dataset, which also spins objects). The world
is then simulated until every body is at rest, the pushed object is too fast, or a time cap.

Objects stay boxes. An object that turned keeps its own extents and orientation in
:attr:`World.orientation`; the renderer and metadata show its axis-aligned bounding box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from .objects import OBJECT_TYPES
from .world import World

FORCE_SECONDS = 0.02  # Unity's fixedDeltaTime: how long AddForce(ForceMode.Force) acts
TIMESTEP = 0.002  # MuJoCo step (s)
FRICTION = 0.6  # sliding friction coefficient (Unity's default material: 0.6 dynamic)
REST_SPEED = 0.02  # m/s (and rad/s / 10): below this for REST_SECONDS counts as at rest
REST_SECONDS = 0.1
MAX_SECONDS = 5.0  # simulated time cap after a push
TOO_FAST = 10.0  # m/s: faster than this the pushed object's motion is no longer trusted
MAX_MAGNITUDE = 10_000.0  # newtons; larger pushes fail the action
# Largest speed a push may give (m/s): at 5 m/s a body moves 1 cm per MuJoCo step, half the
# thinnest static shell (2 cm), so discrete collision detection cannot let it pass through.
MAX_PUSH_SPEED = 5.0
SAMPLE_DT = 0.02  # trajectory sampling period (s)
MOVED_EPS = 0.002  # m: smaller displacements after a push are settling noise, not written back


def enclosed(world: World, index: int) -> bool:
    """Whether object `index` is shut inside a closed Fridge, Cabinet or Microwave (or inside
    something that is): such objects take no part in the physics — AI2-THOR's closed receptacle
    holds them in place, and here the closed receptacle is one solid box."""
    o = world.objects[index]
    while o.parent is not None:
        parent = world.object(o.parent)
        t = OBJECT_TYPES[parent.object_type]
        if o.inside and t.openable and not world.is_open[parent.object_id]:
            return True
        o = parent
    return False


def push_speed(world: World, index: int, magnitude: float) -> float:
    """Speed (m/s) a push of `magnitude` newtons gives object `index` (impulse / mass)."""
    return float(magnitude) * FORCE_SECONDS / OBJECT_TYPES[world.objects[index].object_type].mass


def max_push_magnitude(world: World, index: int) -> float:
    """The largest push (newtons) object `index` may take: the one giving :data:`MAX_PUSH_SPEED`."""
    return MAX_PUSH_SPEED * OBJECT_TYPES[world.objects[index].object_type].mass / FORCE_SECONDS


def push_direction(yaw_deg: float, push_angle_deg: float) -> np.ndarray:
    """AI2-THOR's ``directionalPush`` direction (3,): horizontal, `push_angle_deg` clockwise from
    the forward of an agent (or camera) turned `yaw_deg` (yaw 0 looks along +z, 90 along +x)."""
    a = np.radians(yaw_deg + push_angle_deg)
    return np.array([np.sin(a), 0.0, np.cos(a)])


def can_be_pushed(world: World, index: int) -> bool:
    """AI2-THOR's ``canBePushed``: pickupable or moveable (and here: not held by an agent)."""
    o = world.objects[index]
    t = OBJECT_TYPES[o.object_type]
    return (t.pickupable or t.moveable) and o.object_id not in world.picked_by


@dataclass
class PushResult:
    """What a push did. Trajectories are sampled every :data:`SAMPLE_DT` seconds from the push."""

    object_index: int
    times: np.ndarray  # (T,) seconds since the push started
    positions: np.ndarray  # (T, 3) box centre of the pushed object
    quats: np.ndarray  # (T, 4) its orientation (w, x, y, z) relative to its pose before the push
    outcome: str  # "rest", "too_fast" or "timeout"
    final: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # index -> (centre, quat)
    support: dict[int, int | None] = field(default_factory=dict)  # index -> object below (None: floor)


def _stuck_in_static(world: World, boxes, skip: set[int]) -> set[int]:
    """Objects whose box cuts more than 1 cm deep into a wall or a static object's box on every
    axis. A scene generated that way would fling them out at the first physics step; they stay
    put instead (static), as the scene shows them."""
    static = [
        b
        for b in range(len(boxes))
        if boxes.active[b]
        and int(boxes.inst[b]) not in skip
        and int(boxes.inst[b]) != -1  # the floor slab is where things rest
    ]
    if not static:
        return set()
    slo, shi = boxes.lo[static], boxes.hi[static]
    out = set()
    for i in skip:
        o = world.objects[i]
        depth = np.minimum(o.hi[None, :], shi) - np.maximum(o.lo[None, :], slo)
        inst = boxes.inst[static]
        mine = inst == i
        if np.any(
            (depth > 0.01).all(axis=1)
            & ~mine
            & (inst != (world.index.get(o.parent, -99) if o.parent else -99))
        ):
            out.add(i)
    return out


def euler_degrees(quat: np.ndarray) -> tuple[float, float, float]:
    """Unity's Euler angles (x, y, z) in degrees of a quaternion (w, x, y, z): R = Ry·Rx·Rz."""
    r = np.zeros(9)
    mujoco.mju_quat2Mat(r, np.asarray(quat, dtype=np.float64))
    r = r.reshape(3, 3)
    x = math.degrees(math.asin(max(-1.0, min(1.0, -r[1, 2]))))
    y = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    z = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return x % 360.0, y % 360.0, z % 360.0


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


def _rotated_extents(size: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Axis-aligned extents of a box of `size` turned by `quat`."""
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(quat, dtype=np.float64))
    return np.abs(m.reshape(3, 3)) @ np.asarray(size, dtype=np.float64)


class ScenePhysics:
    """A MuJoCo model of one world's objects as they are now (see the module docstring)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.version = world.version
        self.objects_version = world.objects_version
        boxes = world.boxes()
        shut = {i for i in range(len(world.objects)) if enclosed(world, i)}
        movable = [i for i in range(len(world.objects)) if can_be_pushed(world, i) and i not in shut]
        stuck = _stuck_in_static(world, boxes, set(movable) | shut)
        self.pinned = [i for i in movable if i in stuck]
        self.dynamic: list[int] = [i for i in movable if i not in stuck]
        dyn = set(self.dynamic) | shut
        parts: list[str] = []
        static_owner: list[int] = []  # per static geom: object index, or -1 for structure
        for b in range(len(boxes)):
            code = int(boxes.inst[b])
            if not boxes.active[b] or code in dyn:
                continue
            parts.append(self._box_geom(f"s{b}", boxes.lo[b], boxes.hi[b]))
            static_owner.append(code if code >= 0 else -1)
        bodies: list[str] = []
        for i in self.dynamic:
            bodies.append(self._body_xml(i, boxes))
        xml = (
            "<mujoco><compiler angle='radian'/>"
            f"<option timestep='{TIMESTEP}' gravity='0 -9.81 0' integrator='implicitfast'/>"
            f"<default><geom friction='{FRICTION} 0.005 0.0001' condim='3' solref='0.005 1' "
            "solimp='0.95 0.99 0.001'/></default>"
            f"<worldbody>{''.join(parts)}{''.join(bodies)}</worldbody></mujoco>"
        )
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)
        self._body_of = {i: self.model.body(f"o{i}").id for i in self.dynamic}
        self._object_of_body = {v: k for k, v in self._body_of.items()}
        self._static_owner = np.array(static_owner, dtype=np.int64)
        self._settle()

    def _settle(self) -> None:
        """Let the bodies come to rest without a push (soft contacts sink a little; objects in a
        sink or bin drop onto its floor) and start every push from there: what settling moves
        is not a consequence of a push and is not written back."""
        m, data = self.model, self.data
        dyn = np.array(sorted(self._object_of_body), dtype=np.int64)
        still = 0
        for _ in range(round(1.0 / TIMESTEP)):
            mujoco.mj_step(m, data)
            if len(dyn) == 0 or np.abs(data.cvel[dyn]).max() < REST_SPEED:
                still += 1
                if still >= round(REST_SECONDS / TIMESTEP):
                    break
            else:
                still = 0
        data.qvel[:] = 0
        mujoco.mj_forward(m, data)
        self._start = (data.qpos.copy(), data.qvel.copy())
        self.settled = {i: data.xpos[b].copy() for i, b in self._body_of.items()}

    # -- model -------------------------------------------------------------------------------
    @staticmethod
    def _box_geom(
        name: str,
        lo: np.ndarray,
        hi: np.ndarray,
        rel: np.ndarray | None = None,
        mass: float | None = None,
        quat: np.ndarray | None = None,
    ) -> str:
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        half = np.maximum((hi - lo) / 2, 1e-4)
        c = (lo + hi) / 2 if rel is None else (lo + hi) / 2 - rel
        m = f" mass='{mass:.6g}'" if mass is not None else ""
        q = f" quat='{' '.join(f'{v:.9g}' for v in quat)}'" if quat is not None else ""
        return (
            f"<geom name='{name}' type='box' size='{half[0]:.6g} {half[1]:.6g} {half[2]:.6g}' "
            f"pos='{c[0]:.6g} {c[1]:.6g} {c[2]:.6g}'{m}{q}/>"
        )

    def _body_xml(self, i: int, boxes) -> str:
        world = self.world
        o = world.objects[i]
        mass = OBJECT_TYPES[o.object_type].mass
        center = np.asarray(o.center, dtype=np.float64)
        quat = world.orientation.get(o.object_id)
        if quat is not None:  # a turned object: one box of its own extents
            size = world.body_size[o.object_id]
            geoms = [self._box_geom(f"g{i}_0", -size / 2, size / 2, np.zeros(3), mass, quat)]
        else:
            rows = [b for b in range(len(boxes)) if int(boxes.inst[b]) == i and boxes.active[b]]
            vol = np.array([np.prod(np.maximum(boxes.hi[b] - boxes.lo[b], 2e-4)) for b in rows])
            share = vol / vol.sum()
            geoms = [
                self._box_geom(f"g{i}_{k}", boxes.lo[b], boxes.hi[b], center, mass * float(share[k]))
                for k, b in enumerate(rows)
            ]
        return (
            f"<body name='o{i}' pos='{center[0]:.9g} {center[1]:.9g} {center[2]:.9g}'>"
            f"<freejoint/>{''.join(geoms)}</body>"
        )

    def is_current(self) -> bool:
        """Whether the world has not changed since this model was built."""
        return self.world.version == self.version and self.world.objects_version == self.objects_version

    # -- simulation --------------------------------------------------------------------------
    def push(
        self,
        index: int,
        direction: np.ndarray,
        magnitude: float,
        point: np.ndarray | None = None,
        max_seconds: float = MAX_SECONDS,
        stop_too_fast: bool = False,
    ) -> PushResult:
        """Push object `index` with `magnitude` newtons along `direction` (3,), at `point` (3,)
        (world coordinates; None: its centre of mass), from the model's initial state; the world
        itself is not changed (see :meth:`apply`). With `stop_too_fast` the simulation stops
        when the object exceeds :data:`TOO_FAST` (outcome "too_fast"); otherwise it runs to
        rest or the cap. Deterministic: the same call gives the same result. Pushes faster than
        :data:`MAX_PUSH_SPEED` are a ValueError (callers check :func:`push_speed`)."""
        if index in self.pinned:  # stuck in a wall or furniture as generated: it does not move
            c = np.asarray(self.world.objects[index].center, dtype=np.float64)
            return PushResult(index, np.zeros(1), c[None].copy(), np.array([[1.0, 0, 0, 0]]), "rest")
        if index not in self._body_of:
            raise ValueError(
                f"object index {index} cannot be pushed (not pickupable/moveable, held, or shut in)"
            )
        d = np.asarray(direction, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(d))
        if not math.isfinite(norm) or norm == 0:
            raise ValueError(f"push direction must be a finite non-zero vector, got {d.tolist()}")
        d = d / norm
        if not (math.isfinite(magnitude) and 0 <= magnitude <= MAX_MAGNITUDE):
            raise ValueError(f"push magnitude must be in [0, {MAX_MAGNITUDE:g}] newtons, got {magnitude!r}")
        if push_speed(self.world, index, magnitude) > MAX_PUSH_SPEED + 1e-9:
            raise ValueError(
                f"a push of {magnitude:g} N would throw object {index} at "
                f"{push_speed(self.world, index, magnitude):.1f} m/s (at most {MAX_PUSH_SPEED:g} m/s)"
            )
        m, data = self.model, self.data
        mujoco.mj_resetData(m, data)
        data.qpos[:], data.qvel[:] = self._start
        mujoco.mj_forward(m, data)
        body = self._body_of[index]
        p = data.xipos[body].copy() if point is None else np.asarray(point, dtype=np.float64).reshape(3)
        force = d * float(magnitude)
        q0 = data.xquat[body].copy()
        q0_inv = np.zeros(4)
        mujoco.mju_negQuat(q0_inv, q0)
        force_steps = round(FORCE_SECONDS / TIMESTEP)
        sample_every = round(SAMPLE_DT / TIMESTEP)
        rest_needed = round(REST_SECONDS / TIMESTEP)
        times, positions, quats = [0.0], [data.xpos[body].copy()], [np.array([1.0, 0, 0, 0])]
        dyn_bodies = np.array(sorted(self._object_of_body), dtype=np.int64)
        still, outcome = 0, "timeout"
        n_steps = round(max_seconds / TIMESTEP)
        for step in range(1, n_steps + 1):
            data.qfrc_applied[:] = 0
            if step <= force_steps:
                mujoco.mj_applyFT(
                    m,
                    data,
                    force,
                    np.zeros(3),
                    p if point is not None else data.xipos[body],
                    body,
                    data.qfrc_applied,
                )
            mujoco.mj_step(m, data)
            if step % sample_every == 0:
                times.append(step * TIMESTEP)
                positions.append(data.xpos[body].copy())
                quats.append(_quat_mul(data.xquat[body], q0_inv))
            if step <= force_steps:
                continue
            vel = data.cvel[dyn_bodies]  # (B, 6): angular then linear
            speed = float(np.linalg.norm(data.cvel[body][3:]))
            if stop_too_fast and speed > TOO_FAST:
                outcome = "too_fast"
                break
            moving = np.linalg.norm(vel[:, 3:], axis=1).max() > REST_SPEED or (
                np.linalg.norm(vel[:, :3], axis=1).max() > 10 * REST_SPEED
            )
            still = 0 if moving else still + 1
            if still >= rest_needed:
                outcome = "rest"
                break
        if times[-1] < step * TIMESTEP - 1e-9:  # the final state is part of the trajectory
            times.append(step * TIMESTEP)
            positions.append(data.xpos[body].copy())
            quats.append(_quat_mul(data.xquat[body], q0_inv))
        final: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, b in self._body_of.items():
            final[i] = (data.xpos[b].copy(), data.xquat[b].copy())
        return PushResult(
            object_index=index,
            times=np.array(times),
            positions=np.array(positions),
            quats=np.array(quats),
            outcome=outcome,
            final=final,
            support=self._supports(),
        )

    def _supports(self) -> dict[int, int | None]:
        """For each dynamic object: the object it rests on (contact normal mostly vertical, the
        other geom below); None on the floor or on nothing."""
        m, data = self.model, self.data
        out: dict[int, int | None] = {}
        best: dict[int, float] = {}
        for c in data.contact[: data.ncon]:
            g1, g2 = int(c.geom1), int(c.geom2)
            if abs(float(c.frame[1])) < 0.7:  # normal (first row of frame) not vertical
                continue
            for a, b in ((g1, g2), (g2, g1)):
                ba = int(m.geom_bodyid[a])
                if ba not in self._object_of_body:
                    continue
                i = self._object_of_body[ba]
                if data.geom_xpos[b][1] >= data.geom_xpos[a][1]:
                    continue  # the other geom is not below
                bb = int(m.geom_bodyid[b])
                if bb in self._object_of_body:
                    other: int | None = self._object_of_body[bb]
                else:
                    owner = int(self._static_owner[b]) if b < len(self._static_owner) else -1
                    other = owner if owner >= 0 else None
                height = float(data.geom_xpos[b][1])
                if i not in best or height > best[i]:
                    best[i], out[i] = height, other
        return out

    def apply(self, result: PushResult) -> list[int]:
        """Write a push's final poses into the world (objects that moved more than
        :data:`MOVED_EPS` or turned), with their new receptacles. Returns the moved indices."""
        world = self.world
        moved = []
        for i, (pos, quat) in result.final.items():
            o = world.objects[i]
            turned = abs(abs(float(quat[0])) - 1.0) > 1e-3  # the body turned during the push
            if np.linalg.norm(pos - self.settled[i]) <= MOVED_EPS and not turned:
                continue
            moved.append(i)
            old_q = world.orientation.get(o.object_id, np.array([1.0, 0, 0, 0]))
            quat = _quat_mul(quat, old_q)
            own = world.body_size.get(o.object_id, np.asarray(o.size, dtype=np.float64).copy())
            upright = abs(abs(float(quat[0])) - 1.0) < 1e-6
            if upright:
                world.orientation.pop(o.object_id, None)
                world.body_size.pop(o.object_id, None)
                o.size = own
            else:
                world.orientation[o.object_id] = quat
                world.body_size[o.object_id] = own
                o.size = _rotated_extents(own, quat)
            o.center = np.asarray(pos, dtype=np.float64).copy()
            below = result.support.get(i)
            o.parent = world.objects[below].object_id if below is not None else None
            o.inside = False
        if moved:
            world.touch()
        return moved
