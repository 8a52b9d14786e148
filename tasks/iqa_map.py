"""IQA's top-down semantic map (HIMN's spatial memory): a batched grid built from depth and
per-pixel classes.

The task offers it as the ``semantic_map`` observation (``IQATask`` with the "semantic_map"
sensor); HIMN (``thorgym.agents.himn``, whose ``semantic_map`` module re-exports this one) keeps
its own for planning.

Conventions (those of AI2-THOR and :mod:`thorgym.sim`): y is up, the agent at yaw 0 faces +z
and has +x on its right, yaw grows clockwise seen from above (yaw 90 faces +x), cameraHorizon
is positive looking down. Depth is metres along the camera's view axis (AI2-THOR's depth frame).

**Map layout.** ``SemanticMap.map`` is (B, C, H, W) float32 with 0/1 entries. Cell ``[b, :, i, j]``
covers world ``x ∈ [ox + j·cell, ox + (j+1)·cell)`` and ``z ∈ [oz + i·cell, oz + (i+1)·cell)``
with ``(ox, oz) = origin[b]``: columns go along +x, rows along +z (row 0 is the lowest z, so an
image of the map shows the room upside down relative to a plan with +z up). The origin is chosen
on :meth:`SemanticMap.reset` so that the grid points ``k·cell`` (where AI2-THOR puts agents on a
0.25 m grid) are cell centres and the scene's floor bounds sit in the middle of the map.

**Channels** (``C = NUM_CLASSES + 3 = 24``), see :data:`CHANNELS`:

* ``0`` Background: observed, and no map class (1–20) seen in the cell;
* ``1–13`` the question objects, ``14–20`` the receptacles (``tasks.iqa_vocab.MAP_CLASSES``):
  1 once a pixel of that class has landed in the cell;
* ``21`` free space: the most recent view that saw the cell at floor or obstacle height saw floor
  points there and no point in the obstacle band (``floor_max < y < obstacle_max``);
* ``22`` visited: an agent pose has been in the cell;
* ``23`` coverage: any back-projected point has landed in the cell.

**Egocentric crop** (:meth:`SemanticMap.egocentric`): (B, C + 2, S, S) with the agent's cell at
the centre ``(S // 2, S // 2)`` (S odd) and the agent facing *up*: the cell ``k`` cells ahead of
the agent is at row ``S // 2 - k``, the cell ``k`` cells to its right at column ``S // 2 + k``.
The two extra channels hold the map coordinates of each crop cell (x then z, normalised to
[-1, 1] across the map; outside the map they leave that range and the map channels read 0).

Everything is batched torch (scatter into a flat buffer; no loops over pixels or environments)
and runs on whatever device the map was created on; :meth:`SemanticMap.update` does not
synchronise with the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .iqa_vocab import MAP_CLASSES, NUM_CLASSES, class_of

CELL = 0.25
FREE, VISITED, COVERAGE = NUM_CLASSES, NUM_CLASSES + 1, NUM_CLASSES + 2
NUM_CHANNELS = NUM_CLASSES + 3
CHANNELS: tuple[str, ...] = (*MAP_CLASSES, "FreeSpace", "Visited", "Coverage")
# Camera height above the floor for an AI2-THOR standing agent (agent y 0.901 + camera 0.675).
CAMERA_Y = 0.9009995 + 0.675

__all__ = [
    "CELL",
    "CHANNELS",
    "COVERAGE",
    "FREE",
    "NUM_CHANNELS",
    "VISITED",
    "SemanticMap",
    "class_table",
    "classes_from_instance",
]


def class_table(object_types: Sequence[Sequence[str]], device: str | torch.device = "cpu") -> torch.Tensor:
    """(B, Omax) long lookup: map class of object ``k`` of world ``b`` (0 for padding).

    ``object_types[b]`` lists world b's object types in object-index order, e.g.
    ``[[o.object_type for o in w.objects] for w in sim.worlds]``.
    """
    omax = max(1, max((len(t) for t in object_types), default=0))
    table = torch.zeros(len(object_types), omax, dtype=torch.long)
    for b, types in enumerate(object_types):
        if types:
            table[b, : len(types)] = torch.tensor([class_of(t) for t in types], dtype=torch.long)
    return table.to(device)


def classes_from_instance(instance: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Ground-truth perception: per-pixel map class (B, H, W) long from instance ids (B, H, W).

    ``instance`` holds object indices into each world's object list (< 0: structure or agents,
    class 0); ``table`` is :func:`class_table`'s (B, Omax) lookup on the same device.
    """
    inst = instance.to(torch.long)
    b, h, w = inst.shape
    if table.shape[0] != b:
        raise ValueError(f"table has {table.shape[0]} worlds, instance {b}")
    omax = table.shape[1]
    idx = inst.clamp(0, omax - 1).reshape(b, h * w)
    cls = torch.gather(table, 1, idx).reshape(b, h, w)
    return torch.where(inst >= 0, cls, torch.zeros_like(cls))


def _rays(h: int, w: int, fov: float, stride: int, device: torch.device) -> torch.Tensor:
    """(P, 2) camera-space (right, up) ray offsets at unit forward distance, pixel centres of the
    strided grid, row-major (the renderer's pinhole: ``fov`` is the vertical field of view)."""
    ty = math.tan(math.radians(fov) / 2)
    tx = ty * w / h
    js = (torch.arange(0, w, stride, dtype=torch.float64) + 0.5) / w * 2 - 1
    is_ = 1 - (torch.arange(0, h, stride, dtype=torch.float64) + 0.5) / h * 2
    yy, xx = torch.meshgrid(is_ * ty, js * tx, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).to(device, torch.float32)


class SemanticMap:
    """Top-down semantic grid of ``num_envs`` environments, ``size`` cells of ``cell`` metres.

    Args:
        num_envs: B, the batch of environments.
        size: (H, W) cells per environment (rows along z, columns along x), or one int for both.
            40 × 40 at 0.25 m (10 m) holds every iTHOR room with margin.
        cell: cell size in metres (AI2-THOR's gridSize).
        max_depth: points farther than this (metres along the view axis) are dropped.
        floor_max: points lower than this (world y, metres) count as floor.
        obstacle_max: points between ``floor_max`` and this height count as obstacles for free
            space (the standing agent is about 1.8 m tall).
        camera_y: camera height above the floor in metres.
        stride: back-project every ``stride``-th pixel in each direction.
        device: where the map lives; inputs are moved there.
    """

    def __init__(
        self,
        num_envs: int,
        size: int | tuple[int, int] = 40,
        *,
        cell: float = CELL,
        max_depth: float = 5.0,
        floor_max: float = 0.05,
        obstacle_max: float = 1.8,
        camera_y: float = CAMERA_Y,
        stride: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        self.num_envs = int(num_envs)
        self.height, self.width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.cell = float(cell)
        self.max_depth = float(max_depth)
        self.floor_max = float(floor_max)
        self.obstacle_max = float(obstacle_max)
        self.camera_y = float(camera_y)
        self.stride = int(stride)
        self.device = torch.device(device)
        b, hw = self.num_envs, self.height * self.width
        # One spare element at the end: scatters send dropped points there instead of masking
        # (boolean indexing would synchronise CUDA with the host).
        self._flat = torch.zeros(b * NUM_CHANNELS * hw + 1, device=self.device)
        self.map = self._flat[:-1].view(b, NUM_CHANNELS, self.height, self.width)
        self.origin = torch.zeros(b, 2, device=self.device)  # (ox, oz) per env
        self._ray_cache: dict[tuple, torch.Tensor] = {}

    # -- set-up ----------------------------------------------------------------------------
    def reset(
        self,
        env_ids: Sequence[int] | torch.Tensor,
        bounds: Sequence[Sequence[float]] | torch.Tensor,
    ) -> None:
        """Clear the maps of ``env_ids`` (K,) and place each on its scene's floor bounds (K, 4)
        ``(x0, z0, x1, z1)`` (``sim.worlds[i].spec.bounds``): the bounds' centre goes to the
        middle of the map, cell centres on multiples of ``cell``. Raises if a scene does not fit.
        """
        ids = torch.as_tensor(env_ids, dtype=torch.long, device=self.device).reshape(-1)
        bd = torch.as_tensor(bounds, dtype=torch.float64).reshape(-1, 4)
        if bd.shape[0] != ids.numel():
            raise ValueError(f"reset: {ids.numel()} env ids but {bd.shape[0]} bounds")
        span_x = (bd[:, 2] - bd[:, 0]) / self.cell
        span_z = (bd[:, 3] - bd[:, 1]) / self.cell
        if bool((span_x > self.width - 1).any() or (span_z > self.height - 1).any()):
            raise ValueError(
                f"scene bounds {bd.tolist()} do not fit a {self.height}x{self.width} map "
                f"of {self.cell} m cells"
            )
        cx = torch.round((bd[:, 0] + bd[:, 2]) / 2 / self.cell)
        cz = torch.round((bd[:, 1] + bd[:, 3]) / 2 / self.cell)
        ox = (cx - self.width // 2 - 0.5) * self.cell
        oz = (cz - self.height // 2 - 0.5) * self.cell
        self.origin[ids] = torch.stack([ox, oz], -1).to(self.device, torch.float32)
        self.map[ids] = 0.0

    def reset_around(self, env_ids: Sequence[int] | torch.Tensor, xz: torch.Tensor) -> None:
        """Clear the maps of ``env_ids`` (K,) and centre each on a world point (K, 2) [x, z]
        (e.g. the episode's start) when the scene's bounds are not known: the map then covers
        ±(size · cell / 2 − 0.5) m around it."""
        p = torch.as_tensor(xz, dtype=torch.float32).reshape(-1, 2)
        hx = self.width * self.cell / 2 - 0.5
        hz = self.height * self.cell / 2 - 0.5
        self.reset(env_ids, torch.stack([p[:, 0] - hx, p[:, 1] - hz, p[:, 0] + hx, p[:, 1] + hz], -1))

    # -- geometry ----------------------------------------------------------------------------
    def cells_of(self, xz: torch.Tensor) -> torch.Tensor:
        """(B, ..., 2) long (row, col) cells of world points (B, ..., 2) [x, z] (may be off-map)."""
        o = self.origin.reshape(self.num_envs, *([1] * (xz.dim() - 2)), 2)
        rc = torch.floor((xz.to(self.device, torch.float32) - o) / self.cell).to(torch.long)
        return rc.flip(-1)

    def cell_centers(self) -> torch.Tensor:
        """(B, H, W, 2) world [x, z] of every cell centre."""
        j = (torch.arange(self.width, device=self.device) + 0.5) * self.cell
        i = (torch.arange(self.height, device=self.device) + 0.5) * self.cell
        x = self.origin[:, 0, None, None] + j[None, None, :].expand(1, self.height, -1)
        z = self.origin[:, 1, None, None] + i[None, :, None].expand(1, -1, self.width)
        return torch.stack([x, z], -1)

    def _rays(self, h: int, w: int, fov: float) -> torch.Tensor:
        key = (h, w, float(fov), self.stride)
        if key not in self._ray_cache:
            self._ray_cache[key] = _rays(h, w, fov, self.stride, self.device)
        return self._ray_cache[key]

    def points(self, depth: torch.Tensor, poses: torch.Tensor, fov: float) -> torch.Tensor:
        """(B, P, 3) world points [x, y, z] of the (strided) pixels, row-major.

        ``depth`` (B, H, W) metres along the view axis, ``poses`` (B, 4) [x, z, yaw, horizon]
        (degrees), ``fov`` the vertical field of view in degrees.
        """
        b, h, w = depth.shape
        rays = self._rays(h, w, fov)  # (P, 2)
        d = depth[:, :: self.stride, :: self.stride].reshape(b, -1).to(self.device, torch.float32)
        p = poses.to(self.device, torch.float32)
        yaw, hor = torch.deg2rad(p[:, 2]), torch.deg2rad(p[:, 3])
        sy, cy, sh, ch = torch.sin(yaw), torch.cos(yaw), torch.sin(hor), torch.cos(hor)
        zero = torch.zeros_like(sy)
        fwd = torch.stack([sy * ch, -sh, cy * ch], -1)  # (B, 3)
        right = torch.stack([cy, zero, -sy], -1)
        up = torch.stack([sy * sh, ch, cy * sh], -1)
        dirs = fwd[:, None, :] + rays[None, :, 0:1] * right[:, None, :] + rays[None, :, 1:2] * up[:, None, :]
        cam = torch.stack([p[:, 0], torch.full_like(p[:, 0], self.camera_y), p[:, 1]], -1)
        return cam[:, None, :] + d[..., None] * dirs

    # -- update ------------------------------------------------------------------------------
    def update(
        self,
        depth: torch.Tensor,
        classes: torch.Tensor,
        poses: torch.Tensor,
        fov: float,
    ) -> torch.Tensor:
        """Add one view per environment: depth (B, H, W) metres, classes (B, H, W) long map
        classes, poses (B, 4) [x, z, yaw, horizon], fov the vertical field of view (degrees).

        Returns (B,) long: cells newly covered in this update (IQA's coverage bonus).
        """
        b, hh, ww = depth.shape
        if b != self.num_envs:
            raise ValueError(f"update: expected {self.num_envs} environments, got {b}")
        s = self.stride
        dev = self.device
        hw = self.height * self.width
        pts = self.points(depth, poses, fov)  # (B, P, 3)
        d = depth[:, ::s, ::s].reshape(b, -1).to(dev)
        cls = classes[:, ::s, ::s].reshape(b, -1).to(dev, torch.long)
        rc = self.cells_of(pts[..., [0, 2]])  # (B, P, 2)
        inside = (
            (rc[..., 0] >= 0) & (rc[..., 0] < self.height) & (rc[..., 1] >= 0) & (rc[..., 1] < self.width)
        )
        valid = inside & torch.isfinite(d) & (d > 0) & (d <= self.max_depth)
        cell = rc[..., 0].clamp(0, self.height - 1) * self.width + rc[..., 1].clamp(0, self.width - 1)
        env_base = torch.arange(b, device=dev)[:, None] * (NUM_CHANNELS * hw)
        trash = self._flat.numel() - 1

        def flat(ch: torch.Tensor | int, keep: torch.Tensor) -> torch.Tensor:
            idx = env_base + ch * hw + cell
            return torch.where(keep, idx, torch.full_like(idx, trash)).reshape(-1)

        before = self.map[:, COVERAGE].sum((1, 2))
        # Free space from this view's points at floor and obstacle height, per cell.
        y = pts[..., 1]
        floor = valid & (y < self.floor_max)
        obstacle = valid & (y >= self.floor_max) & (y < self.obstacle_max)
        counts = torch.zeros(b * 2 * hw + 1, device=dev)
        base2 = torch.arange(b, device=dev)[:, None] * (2 * hw) + cell
        for k, m in enumerate((floor, obstacle)):
            idx = torch.where(m, base2 + k * hw, torch.full_like(base2, counts.numel() - 1))
            counts.index_add_(0, idx.reshape(-1), torch.ones(idx.numel(), device=dev))
        counts = counts[:-1].view(b, 2, self.height, self.width)
        seen = (counts[:, 0] + counts[:, 1]) > 0
        free_now = (counts[:, 0] > 0) & (counts[:, 1] == 0)
        self.map[:, FREE] = torch.where(seen, free_now.to(self.map.dtype), self.map[:, FREE])

        ones = torch.ones(b * cls.shape[1], device=dev)
        self._flat.index_put_((flat(cls, valid & (cls > 0)),), ones)
        self._flat.index_put_((flat(COVERAGE, valid),), ones)
        self.mark_visited(poses)
        self._flat[-1] = 0.0
        objects = self.map[:, 1:NUM_CLASSES].amax(1)
        self.map[:, 0] = self.map[:, COVERAGE] * (1.0 - objects)
        return (self.map[:, COVERAGE].sum((1, 2)) - before).round().to(torch.long)

    def mark_visited(self, poses: torch.Tensor) -> None:
        """Set the visited channel at the cell of each pose (B, 4) (off-map poses are ignored)."""
        rc = self.cells_of(poses[:, None, :2])[:, 0]  # (B, 2)
        ok = (rc[:, 0] >= 0) & (rc[:, 0] < self.height) & (rc[:, 1] >= 0) & (rc[:, 1] < self.width)
        hw = self.height * self.width
        idx = (
            torch.arange(self.num_envs, device=self.device) * (NUM_CHANNELS * hw)
            + VISITED * hw
            + rc[:, 0].clamp(0, self.height - 1) * self.width
            + rc[:, 1].clamp(0, self.width - 1)
        )
        idx = torch.where(ok, idx, torch.full_like(idx, self._flat.numel() - 1))
        self._flat.index_put_((idx,), torch.ones(self.num_envs, device=self.device))
        self._flat[-1] = 0.0

    # -- planner input -----------------------------------------------------------------------
    def egocentric(self, poses: torch.Tensor, size: int = 81) -> torch.Tensor:
        """(B, C + 2, size, size) crop centred on each agent and rotated so that it faces up.

        Nearest-cell sampling (``affine_grid`` + ``grid_sample``); cells outside the map read 0.
        The last two channels are the map coordinates (x, z in [-1, 1] over the map) of each crop
        cell. See the module docstring for the orientation convention.
        """
        if size % 2 != 1:
            raise ValueError(f"egocentric: size must be odd (the agent's cell is the centre), got {size}")
        p = poses.to(self.device, torch.float32)
        yaw = torch.deg2rad(p[:, 2])
        sy, cy = torch.sin(yaw), torch.cos(yaw)
        half = size / 2 * self.cell  # metres from the crop centre to its edge
        # Output normalised (u, v), u right, v down, in [-1, 1]: right = u·half, ahead = -v·half.
        # World x = px + right·cos(yaw) + ahead·sin(yaw); z = pz - right·sin(yaw) + ahead·cos(yaw).
        # Map-normalised x' = 2(x - ox)/(W·cell) - 1, z' = 2(z - oz)/(H·cell) - 1.
        kx = 2.0 / (self.width * self.cell)
        kz = 2.0 / (self.height * self.cell)
        theta = torch.stack(
            [
                torch.stack([kx * half * cy, -kx * half * sy, kx * (p[:, 0] - self.origin[:, 0]) - 1], -1),
                torch.stack([-kz * half * sy, -kz * half * cy, kz * (p[:, 1] - self.origin[:, 1]) - 1], -1),
            ],
            1,
        )  # (B, 2, 3)
        grid = F.affine_grid(theta, [self.num_envs, NUM_CHANNELS, size, size], align_corners=False)
        crop = F.grid_sample(self.map, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return torch.cat([crop, grid.permute(0, 3, 1, 2)], 1)
