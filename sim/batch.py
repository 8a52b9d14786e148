"""The batched simulator: N worlds (each with one or more agents) stepped and rendered per call.

This is the core both APIs share: :class:`thorgym.sim.Controller` is a BatchedSimulator with one
world that builds AI2-THOR metadata after every step, so the batched form gives the same results
as N single Controllers by construction.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from thorgym.device import resolve_device

from .layout import (
    AGENT_RADIUS,
    AGENT_Y,
    CAMERA_HEIGHT,
    GRID,
    WALL_HEIGHT,
    WALL_MOUNTED,
    SceneSpec,
    generate_scene,
)
from .objects import STRUCTURE_COLORS
from .render import BoxTensors, Cameras, RenderOutput, _nearest_hit, camera_basis, pixel_grid, render
from .scenes import parse_scene
from .world import AGENT_BASE, INTERACTIONS, World

if TYPE_CHECKING:
    from .physics import PushResult, ScenePhysics

NAV_ACTIONS: tuple[str, ...] = (
    "MoveAhead",
    "MoveBack",
    "MoveLeft",
    "MoveRight",
    "RotateLeft",
    "RotateRight",
    "LookUp",
    "LookDown",
    "Pass",
    "Done",
)
NAV_INDEX = {a: i for i, a in enumerate(NAV_ACTIONS)}
_MOVE_OFFSET = {0: 0.0, 1: 180.0, 2: 270.0, 3: 90.0}  # heading offset of each move action
HORIZON_MIN, HORIZON_MAX = -30.0, 60.0
MAX_RESOLUTION = 1024
#: Agents per world. Memory grows with agents × pixels; an unchecked agentCount (e.g. 100000 sent
#: to thorgym-thor) asked for gigabytes before failing.
MAX_AGENTS = 16
VISIBILITY_ROWS = 64  # visibility is decided on a raster of this height (same camera)
_AGENT_BOXES = 2  # body and head
_COLLIDE_R2 = (AGENT_RADIUS - 1e-3) ** 2
_AGENT_MIN_DIST = 0.2  # agents may stand on neighbouring grid points, not on the same one
AGENT_HEIGHT = 1.65  # top of an agent's body (head included) above the floor, for object moves
TOUCH_TOLERANCE = 1e-4  # boxes closer than this to overlapping only touch (flush against a wall)

# error codes of navigation actions
OK, BLOCKED_WALL, BLOCKED_OBJECT, BLOCKED_AGENT, HORIZON_LIMIT = 0, 1, 2, 3, 4


# reasons of object_at (what is under a screen point)
POINT_OK, POINT_NOTHING, POINT_TOO_FAR, POINT_OUTSIDE = 0, 1, 2, 3


@dataclass
class PointHit:
    """What :meth:`BatchedSimulator.object_at` finds under a screen point, per world (K,)."""

    index: torch.Tensor  # (K,) long: object index in its world (-1: no object there, or too far)
    reason: torch.Tensor  # (K,) int8: POINT_OK, POINT_NOTHING, POINT_TOO_FAR or POINT_OUTSIDE
    code: torch.Tensor  # (K,) long: instance code under the point (object index, <0 structure/agent)
    horizontal: torch.Tensor  # (K,) float32: hit's distance from the agent's vertical axis (inf: none)
    point: torch.Tensor | None = None  # (K, 3) float32: the hit surface point (NaN: nothing hit)


@functools.lru_cache(maxsize=256)
def get_scene(name: str) -> SceneSpec:
    """The generated scene of a name (cached; worlds copy what they change)."""
    return generate_scene(parse_scene(name)[0])


@dataclass
class BatchStep:
    """What one batched step returns; every tensor is on the simulator's device, (N, A, …)."""

    rgb: torch.Tensor | None  # (N, A, H, W, 3) uint8
    depth: torch.Tensor | None  # (N, A, H, W) float32 metres
    instance: torch.Tensor | None  # (N, A, H, W) int32 object index (<0: structure/agents)
    visible: torch.Tensor  # (N, A, O) bool, O = max objects per world
    success: torch.Tensor  # (N, A) bool: lastActionSuccess of the agent's action


class BatchedSimulator:
    """Step and render N worlds at once.

    Args:
        scenes: one scene name per world (e.g. ``["FloorPlan1"] * 64``).
        width, height: frame size in pixels (32–300 each).
        agent_count: agents per world; each sees the others.
        grid_size, rotate_step_degrees, visibility_distance, field_of_view: AI2-THOR's meanings.
        render_depth, render_instance_segmentation: which frames to return besides RGB.
        device: "cpu", "cuda", "cuda:1" or "auto".
        compile: fuse the ray–box kernel with torch.compile (faster after a warm-up).
        agents_visible: AI2-THOR's makeAgentsVisible. When False no agent's body is drawn in
            any view (frames, instance frames, visibility, :meth:`object_at`); agents still
            block each other's movement. Changeable later through :attr:`agents_visible`.
    """

    def __init__(
        self,
        scenes: Sequence[str],
        *,
        width: int = 300,
        height: int = 300,
        agent_count: int = 1,
        grid_size: float = GRID,
        rotate_step_degrees: float = 90.0,
        visibility_distance: float = 1.5,
        field_of_view: float = 90.0,
        render_depth: bool = True,
        render_instance_segmentation: bool = True,
        render_rgb: bool = True,
        device: str | torch.device = "cpu",
        compile: bool = False,
        agents_visible: bool = True,
    ) -> None:
        if isinstance(scenes, str):
            scenes = [scenes]
        if len(scenes) == 0:
            raise ValueError("scenes must name at least one scene")
        for name, v in (("width", width), ("height", height)):
            if not isinstance(v, int) or not 32 <= v <= MAX_RESOLUTION:
                raise ValueError(f"{name} must be an integer between 32 and {MAX_RESOLUTION}, got {v!r}")
        if not isinstance(agent_count, int) or not 1 <= agent_count <= MAX_AGENTS:
            raise ValueError(f"agentCount must be an integer between 1 and {MAX_AGENTS}, got {agent_count!r}")
        if not (isinstance(grid_size, int | float) and 0.05 <= grid_size <= 1.0):
            raise ValueError(f"gridSize must be a number in [0.05, 1.0], got {grid_size!r}")
        if not (isinstance(field_of_view, int | float) and 1 <= field_of_view < 180):
            raise ValueError(f"fieldOfView must be in (0, 180) degrees, got {field_of_view!r}")
        if not (isinstance(visibility_distance, int | float) and visibility_distance > 0):
            raise ValueError(f"visibilityDistance must be positive, got {visibility_distance!r}")
        if not (isinstance(rotate_step_degrees, int | float) and 0 < rotate_step_degrees <= 180):
            raise ValueError(f"rotateStepDegrees must be in (0, 180], got {rotate_step_degrees!r}")
        if not isinstance(agents_visible, bool):
            raise ValueError(f"makeAgentsVisible (agents_visible) must be a bool, got {agents_visible!r}")
        self._agents_visible = agents_visible
        self.width, self.height = width, height
        self.agent_count = agent_count
        self.grid_size = float(grid_size)
        self.rotate_step_degrees = float(rotate_step_degrees)
        self.visibility_distance = float(visibility_distance)
        self.field_of_view = float(field_of_view)
        self.render_depth = render_depth
        self.render_instance_segmentation = render_instance_segmentation
        self.render_rgb = render_rgb
        self.device = resolve_device(device)
        self.compile = compile
        self.worlds: list[World] = [World(get_scene(s), agent_count) for s in scenes]
        n, a = len(self.worlds), agent_count
        self.pos = torch.zeros(n, a, 3, device=self.device)
        self.yaw = torch.zeros(n, a, device=self.device)
        self.horizon = torch.zeros(n, a, device=self.device)
        self.last_error = torch.zeros(n, a, dtype=torch.int8, device=self.device)
        self.last_blocker = torch.full((n, a), -1, dtype=torch.long, device=self.device)
        self._versions = [-1] * n
        # Floor extents per world (x0, z0, x1, z1, cut x, cut z): positions outside are walls.
        self._room = torch.zeros(n, 6, device=self.device)
        self._boxes: BoxTensors | None = None
        self._blocks: torch.Tensor | None = None
        self._world_boxes = 0
        self._visible: torch.Tensor | None = None
        # The last render and the visibility it was made with: reused by observe() until the
        # state changes (every change sets _visible to None).
        self._frames: tuple[RenderOutput, torch.Tensor] | None = None
        self._physics: dict[int, ScenePhysics] = {}  # MuJoCo models of worlds, built on a push
        for i in range(n):
            self._place_agents(i)
        self._sync_boxes()

    # -- set-up ----------------------------------------------------------------------------
    @property
    def num_worlds(self) -> int:
        return len(self.worlds)

    @property
    def agents_visible(self) -> bool:
        """AI2-THOR's makeAgentsVisible: whether agents' bodies are drawn in the views."""
        return self._agents_visible

    @agents_visible.setter
    def agents_visible(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"makeAgentsVisible (agents_visible) must be a bool, got {value!r}")
        self._agents_visible = value
        if self._boxes is not None:
            self._boxes.active[:, self._world_boxes :] = value
        self._visible = None  # what each agent sees may change

    def reset_world(self, i: int, scene: str | None = None) -> None:
        """Put world i back to its scene's initial state (optionally another scene)."""
        spec = get_scene(scene) if scene is not None else self.worlds[i].spec
        self.worlds[i] = World(spec, self.agent_count)
        self._versions[i] = -1
        self._place_agents(i)
        self._visible = None

    def _place_agents(self, i: int) -> None:
        spec = self.worlds[i].spec
        cut = spec.cut if spec.cut is not None else (math.inf, math.inf)
        self._room[i] = torch.tensor([*spec.bounds, *cut], dtype=torch.float32)
        x, z, yaw = spec.start
        spots = [(x, z)]
        # Further agents start on the nearest free reachable grid points.
        for p in sorted(spec.reachable, key=lambda q: ((q[0] - x) ** 2 + (q[1] - z) ** 2, q)):
            if len(spots) >= self.agent_count:
                break
            if all((p[0] - s[0]) ** 2 + (p[1] - s[1]) ** 2 > 0.24**2 for s in spots):
                spots.append(p)
        for a, (px, pz) in enumerate(spots):
            self.pos[i, a] = torch.tensor([px, AGENT_Y, pz])
            self.yaw[i, a] = yaw
            self.horizon[i, a] = 0.0
        self.last_error[i] = OK
        self.last_blocker[i] = -1

    def _sync_boxes(self) -> None:
        """Upload the boxes of worlds whose state changed; re-pad all when one outgrows B."""
        stale = [i for i, w in enumerate(self.worlds) if w.version != self._versions[i]]
        if not stale and self._boxes is not None:
            return
        self._visible = None  # a world changed: its visibility must be recomputed
        need = max(len(w.boxes()) for w in self.worlds)
        if self._boxes is None or need > self._world_boxes:
            self._world_boxes = need
            stale = list(range(self.num_worlds))
            n, b = self.num_worlds, need + _AGENT_BOXES * self.agent_count
            dev = self.device
            self._boxes = BoxTensors(
                lo=torch.zeros(n, b, 3, device=dev),
                hi=torch.zeros(n, b, 3, device=dev),
                inst=torch.full((n, b), -100, dtype=torch.int32, device=dev),
                color=torch.zeros(n, b, 3, device=dev),
                pattern=torch.zeros(n, b, dtype=torch.int8, device=dev),
                active=torch.zeros(n, b, dtype=torch.bool, device=dev),
            )
            self._blocks = torch.zeros(n, need, dtype=torch.bool, device=dev)
            ac = torch.tensor(STRUCTURE_COLORS["Agent"])
            for a in range(self.agent_count):
                j = need + _AGENT_BOXES * a
                self._boxes.inst[:, j : j + 2] = AGENT_BASE - a
                self._boxes.color[:, j] = ac
                self._boxes.color[:, j + 1] = torch.tensor([0.95, 0.85, 0.2])
                self._boxes.active[:, j : j + 2] = self._agents_visible
        bx = self._boxes
        for i in stale:
            wb = self.worlds[i].boxes()
            m = len(wb)
            sl = slice(0, m)
            bx.lo[i, sl] = torch.from_numpy(wb.lo).to(self.device)
            bx.hi[i, sl] = torch.from_numpy(wb.hi).to(self.device)
            bx.inst[i, sl] = torch.from_numpy(wb.inst).to(self.device)
            bx.color[i, sl] = torch.from_numpy(wb.color).to(self.device)
            bx.pattern[i, sl] = torch.from_numpy(wb.pattern).to(self.device)
            bx.active[i, sl] = torch.from_numpy(wb.active).to(self.device)
            bx.active[i, m : self._world_boxes] = False
            self._blocks[i, :m] = torch.from_numpy(wb.blocks & wb.active).to(self.device)
            self._blocks[i, m:] = False
            self._versions[i] = self.worlds[i].version

    def _update_agent_boxes(self) -> None:
        bx = self._boxes
        base = self._world_boxes
        for a in range(self.agent_count):
            j = base + _AGENT_BOXES * a
            p = self.pos[:, a]
            body_half = torch.tensor([0.12, 0.0, 0.12], device=self.device)
            floor = torch.zeros_like(p)
            floor[:, 0], floor[:, 2] = p[:, 0], p[:, 2]
            bx.lo[:, j] = floor - body_half
            bx.hi[:, j] = floor + body_half + torch.tensor([0.0, 1.45, 0.0], device=self.device)
            # The head sits towards the agent's heading so partners can read its orientation.
            yaw = torch.deg2rad(self.yaw[:, a])
            head = floor + torch.stack(
                [0.06 * torch.sin(yaw), torch.full_like(yaw, 1.55), 0.06 * torch.cos(yaw)], -1
            )
            bx.lo[:, j + 1] = head - 0.09
            bx.hi[:, j + 1] = head + 0.09

    # -- collisions --------------------------------------------------------------------------
    def _collides(
        self,
        xz: torch.Tensor,
        agent: int,
        ignore_object: torch.Tensor | None = None,
        ignore_agents: Sequence[int] = (),
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For positions (N, 2) of `agent`: (blocked (N,), error code (N,), blocking box (N,)).

        `ignore_object` (N,) names per world an object index whose boxes do not block (-1:
        none; the object an agent carries), `ignore_agents` agents that do not block (its
        fellow carriers, which move with it).
        """
        bx = self._boxes
        nb = self._world_boxes
        lo, hi = bx.lo[:, :nb], bx.hi[:, :nb]
        x, z = xz[:, None, 0], xz[:, None, 1]
        dx = torch.clamp(torch.maximum(lo[..., 0] - x, x - hi[..., 0]), min=0.0)
        dz = torch.clamp(torch.maximum(lo[..., 2] - z, z - hi[..., 2]), min=0.0)
        hit = ((dx * dx + dz * dz) < _COLLIDE_R2) & self._blocks
        if ignore_object is not None:
            hit &= (bx.inst[:, :nb].long() != ignore_object[:, None]) | (ignore_object[:, None] < 0)
        any_box = hit.any(1)
        first = torch.where(
            any_box, hit.to(torch.int8).argmax(1), torch.full_like(any_box, -1, dtype=torch.long)
        )
        code = torch.where(
            any_box,
            torch.where(
                bx.inst[:, :nb].gather(1, first.clamp(min=0)[:, None])[:, 0] >= 0,
                torch.full_like(first, BLOCKED_OBJECT),
                torch.full_like(first, BLOCKED_WALL),
            ),
            torch.zeros_like(first),
        )
        r = self._room
        x1, z1 = xz[:, 0], xz[:, 1]
        outside = (x1 <= r[:, 0]) | (x1 >= r[:, 2]) | (z1 <= r[:, 1]) | (z1 >= r[:, 3])
        outside |= (x1 > r[:, 4]) & (z1 > r[:, 5])
        code = torch.where(outside & ~any_box, torch.full_like(code, BLOCKED_WALL), code)
        blocked = any_box | outside
        for other in range(self.agent_count):
            if other == agent or other in ignore_agents:
                continue
            d2 = ((self.pos[:, other, [0, 2]] - xz) ** 2).sum(-1)
            near = d2 < _AGENT_MIN_DIST**2
            code = torch.where(near & ~blocked, torch.full_like(code, BLOCKED_AGENT), code)
            first = torch.where(near & ~blocked, torch.full_like(first, AGENT_BASE - other), first)
            blocked = blocked | near
        return blocked, code, first

    def position_free(self, i: int, x: float, z: float, agent: int = 0) -> bool:
        """Whether agent `agent` of world i could stand at (x, z)."""
        self._sync_boxes()
        xz = self.pos[:, agent, [0, 2]].clone()
        xz[i] = torch.tensor([x, z], device=self.device)
        return not bool(self._collides(xz, agent)[0][i])

    # -- poses -------------------------------------------------------------------------------
    def agent_poses(self, agent: int = 0) -> torch.Tensor:
        """(N, 4) float32 poses [x, z, yaw, horizon] of agent `agent` in every world."""
        self._check_agent(agent)
        p = self.pos[:, agent]
        return torch.stack([p[:, 0], p[:, 2], self.yaw[:, agent], self.horizon[:, agent]], -1)

    def teleport(
        self,
        worlds: Sequence[int] | torch.Tensor,
        x: Sequence[float] | torch.Tensor,
        z: Sequence[float] | torch.Tensor,
        yaw: Sequence[float] | torch.Tensor | None = None,
        horizon: Sequence[float] | torch.Tensor | None = None,
        agent: int = 0,
        check: bool = True,
    ) -> torch.Tensor:
        """Put agent `agent` of the K given worlds at (x, z) (standing height), optionally turned.

        All arguments but `agent`/`check` are per-world values (K,); yaw/horizon None keep the
        current ones. With `check`, a pose whose position collides (walls, objects, other agents)
        or whose horizon is outside [-30, 60] is not applied, as AI2-THOR's Teleport fails.
        Returns (K,) bool: whether each world's pose was applied.
        """
        self._check_agent(agent)
        dev = self.device
        w = torch.as_tensor(worlds, dtype=torch.long, device=dev).reshape(-1)
        k = w.numel()
        if k and (int(w.min()) < 0 or int(w.max()) >= self.num_worlds):
            raise ValueError(f"world indices must be in [0, {self.num_worlds}), got {w.tolist()}")
        if torch.unique(w).numel() != k:
            raise ValueError("teleport: each world may appear only once in `worlds`")

        def per_world(name: str, v) -> torch.Tensor:
            t = torch.as_tensor(v, dtype=torch.float32, device=dev).reshape(-1)
            if t.numel() != k:
                raise ValueError(f"teleport: {name} must have one value per world ({k}), got {t.numel()}")
            return t

        xs, zs = per_world("x", x), per_world("z", z)
        ok = torch.ones(k, dtype=torch.bool, device=dev)
        hs = None if horizon is None else per_world("horizon", horizon)
        ys = None if yaw is None else torch.remainder(per_world("yaw", yaw), 360.0)
        if check:
            self._sync_boxes()
            xz = self.pos[:, agent, [0, 2]].clone()
            xz[w, 0], xz[w, 1] = xs, zs
            ok &= ~self._collides(xz, agent)[0][w]
            if hs is not None:
                ok &= (hs >= HORIZON_MIN - 1e-4) & (hs <= HORIZON_MAX + 1e-4)
        sel = w[ok]
        self.pos[sel, agent, 0] = xs[ok]
        self.pos[sel, agent, 1] = AGENT_Y
        self.pos[sel, agent, 2] = zs[ok]
        if ys is not None:
            self.yaw[sel, agent] = ys[ok]
        if hs is not None:
            self.horizon[sel, agent] = hs[ok]
        self._visible = None
        return ok

    def _check_agent(self, agent: int) -> None:
        if not isinstance(agent, int) or not 0 <= agent < self.agent_count:
            raise ValueError(f"agent must be an integer in [0, {self.agent_count}), got {agent!r}")

    # -- objects that move as a whole (two-agent furniture tasks) ---------------------------
    def _world_indices(self, worlds: Sequence[int] | torch.Tensor, where: str) -> list[int]:
        w = torch.as_tensor(worlds, dtype=torch.long).reshape(-1).tolist()
        for i in w:
            if not 0 <= i < self.num_worlds:
                raise ValueError(f"{where}: world index {i} out of range [0, {self.num_worlds})")
        if len(set(w)) != len(w):
            raise ValueError(f"{where}: each world may appear only once in `worlds`")
        return w

    @staticmethod
    def _per_world(where: str, name: str, v, k: int, dtype=torch.float64) -> list:
        """One value for all K worlds, or K values, as a list (ValueError otherwise)."""
        t = torch.as_tensor(v, dtype=dtype).reshape(-1)
        if t.numel() == 1:
            t = t.expand(k)
        if t.numel() != k:
            raise ValueError(f"{where}: {name} must be one value or one per world ({k}), got {t.numel()}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{where}: {name} must be finite, got {t.tolist()}")
        return t.tolist()

    def _object_index(self, where: str, i: int, j: int, allow_none: bool) -> None:
        n = len(self.worlds[i].objects)
        if not (-1 if allow_none else 0) <= j < n:
            extra = " (-1: none)" if allow_none else ""
            raise ValueError(f"{where}: object index {j} out of range [0, {n}){extra} in world {i}")

    def object_blocker(
        self,
        world: int,
        object_idx: int,
        x: float,
        y: float,
        z: float,
        facing: int | None = None,
        ignore_agents: Sequence[int] = (),
    ) -> str | None:
        """What would stop object `object_idx` of world `world` from having its box centre at
        (x, y, z), turned to `facing` (None: as it is); None when nothing would.

        The answer names the problem: ``"outside the room"`` (the box leaves the floor's extents,
        the L-shaped cut included, or goes below the floor or through the ceiling), ``"a wall"``,
        an objectId (a furniture box, or any other object's box, that the new box overlaps in 3-D;
        the object itself and what rests on or in it do not count) or ``"Agent k"`` (an agent's
        body, a vertical cylinder of radius AGENT_RADIUS from the floor to AGENT_HEIGHT, that the
        box reaches into). Agents in `ignore_agents` (those carrying it) do not count.
        """
        w = self.worlds[world]
        self._object_index("object_blocker", world, object_idx, False)
        o = w.objects[object_idx]
        size = o.size if facing is None or (facing - o.facing) % 2 == 0 else o.size[[2, 1, 0]]
        c = np.array([x, y, z], dtype=np.float64)
        lo, hi = c - size / 2, c + size / 2
        code = int(object_box_blockers(w, object_idx, lo[None], hi[None])[0])
        if code == BOX_OUTSIDE:
            return "outside the room"
        if code >= 0:
            k = int(w.boxes().inst[code])
            return w.objects[k].object_id if k >= 0 else "a wall"
        if lo[1] < AGENT_HEIGHT and hi[1] > 0.0:
            pos = self.pos[world].cpu().numpy()
            for a in range(self.agent_count):
                if a in ignore_agents:
                    continue
                px, pz = float(pos[a, 0]), float(pos[a, 2])
                ddx = max(lo[0] - px, px - hi[0], 0.0)
                ddz = max(lo[2] - pz, pz - hi[2], 0.0)
                if ddx * ddx + ddz * ddz < _COLLIDE_R2:
                    return f"Agent {a}"
        return None

    def teleport_object(
        self,
        worlds: Sequence[int] | torch.Tensor,
        object_idx: int | Sequence[int] | torch.Tensor,
        x: float | Sequence[float] | torch.Tensor,
        y: float | Sequence[float] | torch.Tensor,
        z: float | Sequence[float] | torch.Tensor,
        facing: int | Sequence[int] | torch.Tensor | None = None,
        check: bool = True,
    ) -> torch.Tensor:
        """AI2-THOR's TeleportObject in K worlds: put each world's object (by index) with its box
        centre at (x, y, z), turned to `facing` (0–3, rotation.y = 90 * facing; None keeps it).

        Any object moves, furniture included (the Television of FurnLift is put on the floor
        this way): it leaves its receptacle and then blocks agents as furniture does, and what
        rests on or in it moves along. With `check`, a world where :meth:`object_blocker` finds
        a problem is left unchanged. Every argument but `check` is one value for all worlds or
        K values; object index -1 moves nothing. Returns (K,) bool on the device: applied.
        """
        w = self._world_indices(worlds, "teleport_object")
        k = len(w)
        idx = self._per_world("teleport_object", "object_idx", object_idx, k, torch.long)
        xs, ys, zs = (self._per_world("teleport_object", n, v, k) for n, v in (("x", x), ("y", y), ("z", z)))
        fs = (
            [None] * k
            if facing is None
            else self._per_world("teleport_object", "facing", facing, k, torch.long)
        )
        ok = [False] * k
        for n, (i, j) in enumerate(zip(w, idx, strict=True)):
            self._object_index("teleport_object", i, j, True)
            f = fs[n]
            if f is not None and not 0 <= f <= 3:
                raise ValueError(f"teleport_object: facing must be 0, 1, 2 or 3 (rotation.y / 90), got {f}")
            if j < 0 or (check and self.object_blocker(i, j, xs[n], ys[n], zs[n], f) is not None):
                continue
            world = self.worlds[i]
            ok[n] = world.move_object(world.objects[j].object_id, (xs[n], ys[n], zs[n]), f) is None
        self._visible = None
        return torch.tensor(ok, dtype=torch.bool, device=self.device)

    def move_group(
        self,
        worlds: Sequence[int] | torch.Tensor,
        agents: Sequence[int],
        object_idx: int | Sequence[int] | torch.Tensor,
        dx: float | Sequence[float] | torch.Tensor,
        dz: float | Sequence[float] | torch.Tensor,
        check: bool = True,
    ) -> torch.Tensor:
        """Translate `agents` (the same agent indices in every world) and one object per world
        (object_idx, -1: none) together by (dx, dz) metres, all or nothing per world.

        This is how a lifted object moves with its holders (FurnMove); like
        :meth:`teleport_object` it leaves its receptacle (lift it first: it keeps its height).
        A world whose object is held by an agent (PickupObject) fails. With `check`, a world
        moves only if every agent's new position is free (walls, blocking boxes, agents outside
        the group; the carried object does not block its carriers) and the object's new box
        passes :meth:`object_blocker` with the group's agents ignored. Moves are swept as
        :meth:`step_nav` sweeps them (endpoint and intermediate points at most half an agent
        radius apart), so nothing is crossed on the way. Returns (K,) bool on the device.
        """
        w = self._world_indices(worlds, "move_group")
        k = len(w)
        group = list(agents)
        for a in group:
            self._check_agent(a)
        if len(set(group)) != len(group):
            raise ValueError(f"move_group: each agent may appear only once in `agents`, got {group}")
        idx = self._per_world("move_group", "object_idx", object_idx, k, torch.long)
        dxs = self._per_world("move_group", "dx", dx, k)
        dzs = self._per_world("move_group", "dz", dz, k)
        for i, j in zip(w, idx, strict=True):
            self._object_index("move_group", i, j, True)
        ok = [
            j < 0 or self.worlds[i].objects[j].object_id not in self.worlds[i].picked_by
            for i, j in zip(w, idx, strict=True)
        ]
        if check and k:
            self._sync_boxes()
            longest = max(math.hypot(a, b) for a, b in zip(dxs, dzs, strict=True))
            steps = max(2, math.ceil(min(longest, 100.0) / (AGENT_RADIUS / 2)))
            fractions = [s / steps for s in range(steps, 0, -1)]
            dev = self.device
            wt = torch.tensor(w, dtype=torch.long, device=dev)
            d = torch.tensor([dxs, dzs], dtype=torch.float32, device=dev).T  # (K, 2)
            carried = torch.full((self.num_worlds,), -1, dtype=torch.long, device=dev)
            carried[wt] = torch.tensor(idx, dtype=torch.long, device=dev)
            free = torch.ones(k, dtype=torch.bool, device=dev)
            for a in group:
                for f in fractions:
                    xz = self.pos[:, a, [0, 2]].clone()
                    xz[wt] += d * f
                    free &= ~self._collides(xz, a, carried, group)[0][wt]
            free_l = free.tolist()
            for n, (i, j) in enumerate(zip(w, idx, strict=True)):
                ok[n] = ok[n] and free_l[n]
                if not ok[n] or j < 0:
                    continue
                c = self.worlds[i].objects[j].center
                ok[n] = all(
                    self.object_blocker(i, j, c[0] + dxs[n] * f, c[1], c[2] + dzs[n] * f, None, group) is None
                    for f in fractions
                )
        for n, (i, j) in enumerate(zip(w, idx, strict=True)):
            if not ok[n]:
                continue
            if j >= 0:
                world = self.worlds[i]
                o = world.objects[j]
                world.move_object(o.object_id, o.center + np.array([dxs[n], 0.0, dzs[n]]), None)
            for a in group:
                self.pos[i, a, 0] += dxs[n]
                self.pos[i, a, 2] += dzs[n]
        self._visible = None
        return torch.tensor(ok, dtype=torch.bool, device=self.device)

    # -- navigation --------------------------------------------------------------------------
    def step_nav(
        self,
        actions: torch.Tensor,
        magnitude: torch.Tensor | None = None,
        degrees: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Apply navigation actions (N, A) of NAV_ACTIONS indices (-1: the agent does nothing).

        Agents act in index order within a step. Returns lastActionSuccess (N, A).
        """
        self._sync_boxes()
        actions = torch.as_tensor(actions, device=self.device, dtype=torch.long)
        if actions.dim() == 1:
            actions = actions[:, None].expand(-1, self.agent_count).clone()
            actions[:, 1:] = -1
        n, a_count = actions.shape
        if n != self.num_worlds or a_count != self.agent_count:
            raise ValueError(
                f"actions must have shape ({self.num_worlds}, {self.agent_count}) or "
                f"({self.num_worlds},), got {tuple(actions.shape)}"
            )
        if ((actions < -1) | (actions >= len(NAV_ACTIONS))).any():
            raise ValueError(f"action indices must be -1 or in [0, {len(NAV_ACTIONS)}): {NAV_ACTIONS}")
        mag = self.grid_size if magnitude is None else magnitude
        deg = self.rotate_step_degrees if degrees is None else degrees
        mag = torch.as_tensor(mag, device=self.device, dtype=torch.float32).expand(n, a_count)
        deg = torch.as_tensor(deg, device=self.device, dtype=torch.float32).expand(n, a_count)
        success = torch.ones(n, a_count, dtype=torch.bool, device=self.device)
        self.last_error.zero_()
        self.last_blocker.fill_(-1)
        for a in range(a_count):
            act = actions[:, a]
            is_move = (act >= 0) & (act <= 3)
            if bool(is_move.any()):
                offset = torch.zeros_like(mag[:, a])
                for code, off in _MOVE_OFFSET.items():
                    offset = torch.where(act == code, torch.full_like(offset, off), offset)
                heading = torch.remainder(self.yaw[:, a] + offset, 360.0)
                dx, dz = _heading_delta(heading, mag[:, a])
                cur = self.pos[:, a, [0, 2]]
                delta = torch.stack([dx, dz], -1)
                target = cur + delta
                # Sweep the path in steps of at most half the agent radius, endpoint first. A move
                # longer than the largest room ends outside it (blocked whatever the sweep finds),
                # so the sweep never needs more steps than the room's diagonal takes.
                r = self._room
                diagonal = float(torch.sqrt((r[:, 2] - r[:, 0]) ** 2 + (r[:, 3] - r[:, 1]) ** 2).max()) + 1.0
                longest = min(float(mag[:, a][is_move].max()), diagonal)
                steps = max(2, math.ceil(longest / (AGENT_RADIUS / 2)))
                blocked = torch.zeros_like(is_move)
                code = torch.zeros_like(self.last_error[:, a])
                first = torch.full_like(self.last_blocker[:, a], -1)
                for s in range(steps, 0, -1):
                    b, c, f = self._collides(cur + delta * (s / steps), a)
                    new = b & ~blocked
                    code = torch.where(new, c.to(torch.int8), code)
                    first = torch.where(new, f, first)
                    blocked |= b
                blocked &= is_move
                ok = is_move & ~blocked
                self.pos[:, a, 0] = torch.where(ok, target[:, 0], self.pos[:, a, 0])
                self.pos[:, a, 2] = torch.where(ok, target[:, 1], self.pos[:, a, 2])
                self.last_error[:, a] = torch.where(blocked, code, self.last_error[:, a])
                self.last_blocker[:, a] = torch.where(blocked, first, self.last_blocker[:, a])
                success[:, a] &= ~blocked
            rot = (act == 4) | (act == 5)
            sgn = torch.where(act == 4, -1.0, 1.0)
            self.yaw[:, a] = torch.where(
                rot, torch.remainder(self.yaw[:, a] + sgn * deg[:, a], 360.0), self.yaw[:, a]
            )
            look = (act == 6) | (act == 7)
            # LookUp/LookDown move by 30 degrees unless `degrees` says otherwise.
            look_deg = 30.0 if degrees is None else deg[:, a]
            new_h = self.horizon[:, a] + torch.where(act == 7, 1.0, -1.0) * look_deg
            out = look & ((new_h < HORIZON_MIN - 1e-4) | (new_h > HORIZON_MAX + 1e-4))
            self.horizon[:, a] = torch.where(look & ~out, new_h, self.horizon[:, a])
            self.last_error[:, a] = torch.where(
                out, torch.full_like(self.last_error[:, a], HORIZON_LIMIT), self.last_error[:, a]
            )
            success[:, a] &= ~out
        self._visible = None
        return success

    # -- rendering ---------------------------------------------------------------------------
    def _cameras(self, worlds: torch.Tensor | None = None) -> Cameras:
        n, a = self.num_worlds, self.agent_count
        w = torch.arange(n, device=self.device)[:, None].expand(n, a).reshape(-1)
        ag = torch.arange(a, device=self.device)[None, :].expand(n, a).reshape(-1)
        pos = self.pos.reshape(-1, 3).clone()
        pos[:, 1] = pos[:, 1] + CAMERA_HEIGHT
        hide_lo = self._world_boxes + _AGENT_BOXES * ag
        cams = Cameras(
            world=w,
            pos=pos,
            yaw=self.yaw.reshape(-1),
            horizon=self.horizon.reshape(-1),
            hide_lo=hide_lo,
            hide_hi=hide_lo + _AGENT_BOXES,
        )
        if worlds is not None:
            sel = (worlds[:, None] * a + torch.arange(a, device=self.device)[None, :]).reshape(-1)
            cams = Cameras(
                *(
                    t[sel]
                    for t in (
                        cams.world,
                        cams.pos,
                        cams.yaw,
                        cams.horizon,
                        cams.hide_lo,
                        cams.hide_hi,
                    )
                )
            )
        return cams

    def render(self, rgb: bool | None = None) -> tuple[RenderOutput, torch.Tensor]:
        """Render every agent of every world. Returns (frames with leading N*A, visible (N,A,O))."""
        self._sync_boxes()
        self._update_agent_boxes()
        cams = self._cameras()
        want_rgb = self.render_rgb if rgb is None else rgb
        out = render(
            self._boxes,
            cams,
            self.height,
            self.width,
            self.field_of_view,
            rgb=want_rgb,
            use_compile=self.compile,
        )
        vis_w = max(1, round(VISIBILITY_ROWS * self.width / self.height))
        if (self.height, self.width) == (VISIBILITY_ROWS, vis_w):
            vis_src = out
        else:
            vis_src = render(
                self._boxes,
                cams,
                VISIBILITY_ROWS,
                vis_w,
                self.field_of_view,
                rgb=False,
                use_compile=self.compile,
            )
        self._visible = self._visibility(vis_src)
        self._frames = (out, self._visible)
        return out, self._visible

    def render_cameras(
        self,
        world: int,
        positions: Sequence[Sequence[float]],
        rotations: Sequence[Sequence[float]],
        field_of_view: float,
        rgb: bool = True,
    ) -> RenderOutput:
        """Render extra cameras (AI2-THOR's third-party cameras) into world `world` at the
        simulator's resolution: C positions (x, y, z) and rotations (pitch = x, positive looking
        down like cameraHorizon; yaw = y; roll = z) in degrees. Every agent is in view."""
        if not 0 <= world < self.num_worlds:
            raise ValueError(f"world index {world} out of range [0, {self.num_worlds})")
        self._sync_boxes()
        self._update_agent_boxes()
        dev = self.device
        pos = torch.as_tensor(positions, dtype=torch.float32, device=dev).reshape(-1, 3)
        rot = torch.as_tensor(rotations, dtype=torch.float32, device=dev).reshape(-1, 3)
        c = pos.shape[0]
        none = torch.full((c,), -1, dtype=torch.long, device=dev)
        cams = Cameras(
            world=torch.full((c,), world, dtype=torch.long, device=dev),
            pos=pos,
            yaw=rot[:, 1],
            horizon=rot[:, 0],
            hide_lo=none,
            hide_hi=none,
            roll=rot[:, 2],
        )
        return render(
            self._boxes, cams, self.height, self.width, field_of_view, rgb=rgb, use_compile=self.compile
        )

    def _visibility(self, out: RenderOutput) -> torch.Tensor:
        """AI2-THOR's rule: an object is visible when a pixel shows it (in frame, unobstructed)
        and that pixel's surface point is within visibilityDistance of the agent's central
        vertical axis (horizontal distance; the camera sits on that axis)."""
        n, a = self.num_worlds, self.agent_count
        o = max(1, max(len(w.objects) for w in self.worlds))
        c = n * a
        inst = out.inst.reshape(c, -1).to(torch.long)
        ok = (inst >= 0) & (out.horizontal.reshape(c, -1) <= self.visibility_distance)
        flat = torch.arange(c, device=self.device)[:, None] * o + inst.clamp(min=0)
        counts = torch.bincount(flat[ok], minlength=c * o)
        return (counts > 0).reshape(n, a, o)

    def visible(self) -> torch.Tensor:
        """(N, A, O) visibility of every object for every agent in the current state."""
        if self._visible is None or any(
            w.version != v for w, v in zip(self.worlds, self._versions, strict=True)
        ):
            self.render(rgb=False)
        return self._visible

    def step(self, actions) -> BatchStep:
        """Navigation step for all worlds, then one batched render."""
        success = self.step_nav(actions)
        return self.observe(success)

    def observe(self, success: torch.Tensor | None = None) -> BatchStep:
        """Frames and visibility of the current state (one render; none when nothing changed since
        the last render that made what this simulator returns)."""
        cached = self._frames
        fresh = (
            cached is not None
            and self._visible is not None
            and cached[1] is self._visible
            and all(w.version == v for w, v in zip(self.worlds, self._versions, strict=True))
            and (cached[0].rgb is not None or not self.render_rgb)
        )
        if fresh:
            # Callers keep what they are given (numpy views share memory): hand out copies.
            c, visible = cached
            out = RenderOutput(
                rgb=None if c.rgb is None else c.rgb.clone(), depth=c.depth.clone(), inst=c.inst.clone(),
                distance=c.distance, horizontal=c.horizontal,
            )  # fmt: skip
            visible = visible.clone()
        else:
            out, visible = self.render()
        n, a = self.num_worlds, self.agent_count
        h, w = self.height, self.width
        if success is None:
            success = torch.ones(n, a, dtype=torch.bool, device=self.device)
        return BatchStep(
            rgb=None if out.rgb is None else out.rgb.reshape(n, a, h, w, 3),
            depth=out.depth.reshape(n, a, h, w) if self.render_depth else None,
            instance=out.inst.reshape(n, a, h, w) if self.render_instance_segmentation else None,
            visible=visible,
            success=success,
        )

    # -- interaction by screen point ---------------------------------------------------------
    def object_at(
        self,
        x: float | Sequence[float] | torch.Tensor,
        y: float | Sequence[float] | torch.Tensor,
        agent: int = 0,
        worlds: Sequence[int] | torch.Tensor | None = None,
    ) -> PointHit:
        """The object under screen point (x, y) of agent `agent`'s current view, per world.

        x, y in [0, 1] as AI2-THOR's: origin top-left, x to the right, y down; one value for all
        worlds or one per world. The point names the pixel (floor(y*H), floor(x*W)) of the
        frame :meth:`render` returns (the last row/column for 1.0), and exactly one ray is cast
        per world through that pixel's centre with the renderer's arithmetic, so the result is
        the object the instance frame shows there. An object counts only if the hit surface
        point is within visibilityDistance of the agent's central vertical axis (horizontally),
        the visibility rule; otherwise reason is POINT_TOO_FAR (index -1, code still the object).
        Floor, walls, ceiling, other agents and empty space give POINT_NOTHING; a point outside
        [0, 1] gives POINT_OUTSIDE. Costs one ray per world, not a frame.
        """
        self._check_agent(agent)
        dev = self.device
        w = (
            torch.arange(self.num_worlds, device=dev)
            if worlds is None
            else torch.as_tensor(worlds, dtype=torch.long, device=dev).reshape(-1)
        )
        k = w.numel()
        if k and (int(w.min()) < 0 or int(w.max()) >= self.num_worlds):
            raise ValueError(f"world indices must be in [0, {self.num_worlds}), got {w.tolist()}")
        xs = torch.as_tensor(x, dtype=torch.float64).reshape(-1).expand(k) if k else torch.zeros(0)
        ys = torch.as_tensor(y, dtype=torch.float64).reshape(-1).expand(k) if k else torch.zeros(0)
        outside = ~((xs >= 0) & (xs <= 1) & (ys >= 0) & (ys <= 1))  # NaN is outside too
        h, wd = self.height, self.width
        col = torch.clamp(torch.floor(torch.nan_to_num(xs) * wd), 0, wd - 1).long()
        row = torch.clamp(torch.floor(torch.nan_to_num(ys) * h), 0, h - 1).long()
        self._sync_boxes()
        self._update_agent_boxes()
        bx = self._boxes
        cam_pos = self.pos[w, agent].clone()
        cam_pos[:, 1] = cam_pos[:, 1] + CAMERA_HEIGHT
        fwd, right, up = camera_basis(self.yaw[w, agent], self.horizon[w, agent])
        grid = _pixel_grid(h, wd, self.field_of_view, dev)[(row * wd + col).to(dev)]  # (K, 2)
        # The same expression, in the same order, as the renderer's per-pixel ray.
        d = fwd[:, None, :] + grid[:, None, 0:1] * right[:, None, :] + grid[:, None, 1:2] * up[:, None, :]
        d = torch.where(d.abs() < 1e-7, torch.full_like(d, 1e-7), d)
        valid = bx.active[w].clone()
        own = self._world_boxes + _AGENT_BOXES * agent
        valid[:, own : own + _AGENT_BOXES] = False  # the agent's own body is not seen
        t, box = _nearest_hit(cam_pos[:, None, :], d, bx.lo[w], bx.hi[w], valid)
        t, box = t[:, 0], box[:, 0]
        hit = torch.isfinite(t)
        code = torch.where(hit, bx.inst[w].gather(1, box[:, None])[:, 0].long(), torch.full_like(box, -100))
        dd = d[:, 0]
        horizontal = torch.where(
            hit, t * torch.sqrt(dd[:, 0] * dd[:, 0] + dd[:, 2] * dd[:, 2]), torch.full_like(t, math.inf)
        )
        is_obj = hit & (code >= 0) & ~outside.to(dev)
        near = horizontal <= self.visibility_distance
        reason = torch.full((k,), POINT_NOTHING, dtype=torch.int8, device=dev)
        reason = torch.where(is_obj & near, torch.full_like(reason, POINT_OK), reason)
        reason = torch.where(is_obj & ~near, torch.full_like(reason, POINT_TOO_FAR), reason)
        reason = torch.where(outside.to(dev), torch.full_like(reason, POINT_OUTSIDE), reason)
        index = torch.where(reason == POINT_OK, code, torch.full_like(code, -1))
        point = torch.where(hit[:, None], cam_pos + t[:, None] * dd, torch.full_like(dd, math.nan))
        return PointHit(index=index, reason=reason, code=code, horizontal=horizontal, point=point)

    def interact(
        self,
        action: str,
        worlds: Sequence[int] | torch.Tensor,
        object_idx: Sequence[int] | torch.Tensor,
        agent: int = 0,
        openness: float = 1.0,
    ) -> tuple[torch.Tensor, list[str]]:
        """Apply OpenObject / CloseObject / PickupObject / PutObject in K worlds at once.

        `object_idx` (K,) names each world's target by object index (PutObject: the receptacle
        to put what `agent` holds into/on); -1 fails with "No object to {action}". Visibility is
        the caller's concern (:meth:`object_at` or :meth:`visible`). A failure changes nothing
        in that world. Returns (ok (K,) bool on the device, error messages, "" where ok).
        """
        if action not in INTERACTIONS:
            raise ValueError(f"interact: unknown action {action!r}; one of {INTERACTIONS}")
        self._check_agent(agent)
        w = torch.as_tensor(worlds, dtype=torch.long).reshape(-1).tolist()
        idx = torch.as_tensor(object_idx, dtype=torch.long).reshape(-1).tolist()
        if len(w) != len(idx):
            raise ValueError(f"interact: {len(w)} worlds but {len(idx)} object indices")
        errors = []
        for i, j in zip(w, idx, strict=True):
            if not 0 <= i < self.num_worlds:
                raise ValueError(f"world index {i} out of range [0, {self.num_worlds})")
            world = self.worlds[i]
            if not 0 <= j < len(world.objects):
                errors.append(f"No object to {action}" if j < 0 else f"object index {j} out of range")
                continue
            errors.append(world.interact(action, world.objects[j].object_id, agent, openness) or "")
        self._visible = None
        ok = torch.tensor([e == "" for e in errors], dtype=torch.bool, device=self.device)
        return ok, errors

    def interact_at(
        self,
        action: str,
        x: float | Sequence[float] | torch.Tensor,
        y: float | Sequence[float] | torch.Tensor,
        worlds: Sequence[int] | torch.Tensor | None = None,
        agent: int = 0,
        openness: float = 1.0,
        force: bool = False,
    ) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """AI2-THOR's ``step(action, x=…, y=…)`` in K worlds: :meth:`object_at` then :meth:`interact`.

        With `force` (forceAction) an object beyond visibilityDistance is still a target.
        Returns (ok (K,), error messages with AI2-THOR's texts, target object index (K,), -1
        where nothing was targeted). Failures leave their world unchanged.
        """
        if action not in INTERACTIONS:
            raise ValueError(f"interact_at: unknown action {action!r}; one of {INTERACTIONS}")
        hit = self.object_at(x, y, agent=agent, worlds=worlds)
        k = hit.index.numel()
        w = (
            list(range(self.num_worlds))
            if worlds is None
            else torch.as_tensor(worlds, dtype=torch.long).reshape(-1).tolist()
        )
        xs = torch.as_tensor(x, dtype=torch.float64).reshape(-1).expand(k).tolist()
        ys = torch.as_tensor(y, dtype=torch.float64).reshape(-1).expand(k).tolist()
        reason = hit.reason.tolist()
        code = hit.code.tolist()
        target = [-1] * k
        errors = [""] * k
        for n in range(k):
            r = reason[n]
            if r == POINT_OUTSIDE:
                errors[n] = "x/y must be in [0:1]"
            elif r == POINT_NOTHING:
                errors[n] = f"No SimObject found at (x: {xs[n]:g}, y: {ys[n]:g})"
            elif r == POINT_TOO_FAR and not force:
                oid = self.worlds[w[n]].objects[code[n]].object_id
                errors[n] = (
                    f"Target sim object: ({oid}) at screen coordinate: ({xs[n]:g}, {ys[n]:g}) is beyond "
                    f"your visibilityDistance: {self.visibility_distance:g}!\nHint: Ignore this check by "
                    "passing in forceAction=True or update visibility distance, call "
                    "controller.reset(visibilityDistance=<new visibility distance>)."
                )
            else:
                target[n] = code[n]
        go = [n for n in range(k) if target[n] >= 0]
        ok = torch.zeros(k, dtype=torch.bool, device=self.device)
        if go:
            sub_ok, sub_err = self.interact(
                action, [w[n] for n in go], [target[n] for n in go], agent, openness
            )
            ok[go] = sub_ok
            for n, e in zip(go, sub_err, strict=True):
                errors[n] = e
        return ok, errors, torch.tensor(target, dtype=torch.long, device=self.device)

    def physics(self, i: int) -> ScenePhysics:
        """The MuJoCo model of world i as it is now (built on first use, rebuilt after a change);
        its ``dynamic`` lists the objects a push moves."""
        from .physics import ScenePhysics

        ph = self._physics.get(i)
        if ph is None or ph.world is not self.worlds[i] or not ph.is_current():
            ph = self._physics[i] = ScenePhysics(self.worlds[i])
        return ph

    def push_objects(
        self,
        worlds: Sequence[int] | torch.Tensor,
        object_idx: int | Sequence[int] | torch.Tensor,
        direction: Sequence[float] | np.ndarray | torch.Tensor,
        magnitude: float | Sequence[float] | torch.Tensor,
        point: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        apply: bool = True,
        stop_too_fast: bool = False,
    ) -> list[PushResult]:
        """Push one object in each of K worlds with MuJoCo rigid-body physics (AI2-THOR's force
        actions; :mod:`thorgym.sim.physics` says how a push maps to a force).

        `direction` is (3,) or (K, 3) in world coordinates, `magnitude` newtons (one or K
        values), `point` (3,) or (K, 3) where the force acts (None: the object's centre of mass,
        as AI2-THOR). Each world is simulated until rest, too fast or a time cap; with `apply`
        the final poses (and new receptacles) are written into the world and the frames show
        them. One MuJoCo model per world, kept until the world changes otherwise. Bad indices,
        directions or magnitudes raise ValueError; objects that cannot be pushed too (callers
        that follow AI2-THOR check :func:`thorgym.sim.physics.can_be_pushed` first).
        """
        w = self._world_indices(worlds, "push_objects")
        k = len(w)
        idx = self._per_world("push_objects", "object_idx", object_idx, k, torch.long)
        mags = self._per_world("push_objects", "magnitude", magnitude, k)
        dirs = np.broadcast_to(np.asarray(torch.as_tensor(direction, dtype=torch.float64)), (k, 3))
        pts = (
            None
            if point is None
            else np.broadcast_to(np.asarray(torch.as_tensor(point, dtype=torch.float64)), (k, 3))
        )
        results = []
        for n, (i, j) in enumerate(zip(w, idx, strict=True)):
            self._object_index("push_objects", i, j, False)
            ph = self.physics(i)
            r = ph.push(j, dirs[n], mags[n], None if pts is None else pts[n], stop_too_fast=stop_too_fast)
            if apply:
                ph.apply(r)
            results.append(r)
        self._visible = None
        return results

    # -- queries -----------------------------------------------------------------------------
    def reachable_positions(self, i: int, agent: int = 0, heading: float = 0.0) -> list[tuple[float, float]]:
        """Grid positions (step gridSize, anchored at the agent) reachable without collisions.

        Other agents are ignored, as for AI2-THOR's GetReachablePositions. The grid's axes are
        the world's (heading 0), or turned by `heading` degrees about the vertical
        (AI2-THOR's ``directionsRelativeAgent=True`` passes the agent's yaw).
        """
        self._sync_boxes()
        x0 = float(self.pos[i, agent, 0])
        z0 = float(self.pos[i, agent, 2])
        return _reachable_from(self, i, x0, z0, self.grid_size, heading)


BOX_FREE, BOX_OUTSIDE = -1, -2  # codes of object_box_blockers besides a box index


def object_box_blockers(world: World, object_idx: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For C candidate boxes (lo, hi) (C, 3) of object `object_idx` of `world`: (C,) int64, the
    index (into ``world.boxes()``) of the first box each would overlap in 3-D, ``BOX_OUTSIDE``
    when it leaves the room (the floor's extents, the L-shaped cut, below the floor, through the
    ceiling) or ``BOX_FREE``. Furniture, walls and every other object's box count; the object
    itself, what rests on or in it and wall-mounted items do not; agents are not looked at.
    The rule of :meth:`BatchedSimulator.object_blocker`, for planners that test many places."""
    lo = np.asarray(lo, dtype=np.float64).reshape(-1, 3)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1, 3)
    eps = TOUCH_TOLERANCE
    x0, z0, x1, z1 = world.spec.bounds
    cx, cz = world.spec.cut if world.spec.cut is not None else (math.inf, math.inf)
    outside = (
        (lo[:, 0] < x0 - eps) | (hi[:, 0] > x1 + eps) | (lo[:, 2] < z0 - eps) | (hi[:, 2] > z1 + eps)
        | ((hi[:, 0] > cx + eps) & (hi[:, 2] > cz + eps))
        | (lo[:, 1] < -eps) | (hi[:, 1] > WALL_HEIGHT + eps)
    )  # fmt: skip
    o = world.objects[object_idx]
    moving = {object_idx} | {world.index[d] for d in world._descendants(o.object_id)}
    b = world.boxes()
    counts = b.active & (b.blocks | (b.inst >= 0)) & ~np.isin(b.inst, list(moving))
    counts &= ~np.array([k >= 0 and world.objects[k].object_type in WALL_MOUNTED for k in b.inst.tolist()],
                        dtype=bool)  # fmt: skip
    over = counts[None] & np.all((b.lo[None] < hi[:, None] - eps) & (lo[:, None] + eps < b.hi[None]), axis=2)
    code = np.where(over.any(1), np.argmax(over, axis=1), BOX_FREE)
    return np.where(outside, BOX_OUTSIDE, code).astype(np.int64)


@functools.lru_cache(maxsize=16)
def _pixel_grid(height: int, width: int, fov: float, device: torch.device) -> torch.Tensor:
    return pixel_grid(height, width, fov, device)


def _heading_delta(heading: torch.Tensor, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Displacement of a move along `heading` degrees.

    Headings on multiples of 45° move on the grid (diagonals move `mag` on both axes, as SAVN's
    45° setting does); other headings move `mag` metres along the heading.
    """
    rad = torch.deg2rad(heading.to(torch.float64))
    sx, cz = torch.sin(rad), torch.cos(rad)
    on45 = torch.remainder(heading + 1e-4, 45.0) < 2e-4
    gx, gz = torch.round(sx * 1.4142), torch.round(cz * 1.4142)
    gx, gz = torch.clamp(gx, -1, 1), torch.clamp(gz, -1, 1)
    m = mag.to(torch.float64)
    dx = torch.where(on45, gx * m, sx * m)
    dz = torch.where(on45, gz * m, cz * m)
    return dx.to(torch.float32), dz.to(torch.float32)


def _reachable_from(sim: BatchedSimulator, i: int, x0: float, z0: float, step: float, heading: float = 0.0):
    """Breadth-first search over the grid from (x0, z0) with the simulator's collision test,
    the grid turned by `heading` degrees (grid step (u, v) lies at u*right + v*ahead)."""
    bx = sim._boxes
    nb = sim._world_boxes
    blocks = sim._blocks[i].cpu().numpy()
    lo = bx.lo[i, :nb].cpu().numpy()[blocks]
    hi = bx.hi[i, :nb].cpu().numpy()[blocks]

    def free(x: float, z: float) -> bool:
        dx = np.clip(np.maximum(lo[:, 0] - x, x - hi[:, 0]), 0, None)
        dz = np.clip(np.maximum(lo[:, 2] - z, z - hi[:, 2]), 0, None)
        return not np.any(dx * dx + dz * dz < np.float32(_COLLIDE_R2))

    x0, z0 = np.float32(x0), np.float32(z0)
    if not free(x0, z0):
        return []
    turned = heading % 360.0 != 0.0
    ca, sa = math.cos(math.radians(heading)), math.sin(math.radians(heading))

    def at(u: float, v: float) -> tuple[float, float]:
        if not turned:
            return x0 + u * step, z0 + v * step
        return x0 + (u * ca + v * sa) * step, z0 + (v * ca - u * sa) * step

    seen = {(0, 0)}
    dq = deque([(0, 0)])
    out = []
    while dq:
        u, v = dq.popleft()
        px, pz = at(u, v)
        out.append((round(float(px), 4), round(float(pz), 4)))
        for du, dv in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            k = (u + du, v + dv)
            if k in seen or abs(k[0]) > 200 or abs(k[1]) > 200:
                continue
            seen.add(k)
            if free(*at(*k)) and free(*at(u + du / 2, v + dv / 2)):
                dq.append(k)
    return sorted(out)


__all__ = [
    "NAV_ACTIONS",
    "POINT_NOTHING",
    "POINT_OK",
    "POINT_OUTSIDE",
    "POINT_TOO_FAR",
    "BatchStep",
    "BatchedSimulator",
    "PointHit",
    "get_scene",
    "resolve_device",
]
