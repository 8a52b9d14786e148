"""Pose tables of a scene's initial state: where MoveAhead leads, and what is visible from where.

Both answer exactly what :class:`BatchedSimulator` would (the same collision test and the same
renderer on the same 64-row visibility raster); they are the building blocks of precomputed pose
graphs (shortest paths, optimal episode lengths) for navigation tasks.

    positions, move_to = move_table("FloorPlan1")
    vis = visible_from_poses("FloorPlan1", positions, np.zeros(len(positions)),
                             np.zeros(len(positions)), ["Fridge"])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .batch import NAV_INDEX, VISIBILITY_ROWS, BatchedSimulator, get_scene
from .layout import AGENT_Y, CAMERA_HEIGHT, GRID
from .render import BoxTensors, Cameras, camera_basis, render
from .world import World

DEFAULT_HEADINGS: tuple[float, ...] = tuple(45.0 * k for k in range(8))
_MOVE_CHUNK = 96  # worlds stepped per MoveAhead call
_RENDER_CHUNK = 512  # poses rendered per call
_CULL_MARGIN = 0.05  # metres of slack in the conservative (float64) culling tests


def _grid_key(x: float, z: float, grid_size: float) -> tuple[int, int]:
    res = grid_size / 5
    return (round(float(x) / res), round(float(z) / res))


def _probe(scenes: list[str], grid_size: float) -> BatchedSimulator:
    return BatchedSimulator(
        scenes,
        width=32,
        height=32,
        grid_size=grid_size,
        render_depth=False,
        render_instance_segmentation=False,
        render_rgb=False,
    )


def move_table(
    scene: str, grid_size: float = GRID, headings: Sequence[float] = DEFAULT_HEADINGS
) -> tuple[np.ndarray, np.ndarray]:
    """Grid positions closed under MoveAhead at the given headings, and where MoveAhead leads.

    Starts from the positions reachable from the scene's start (``reachable_positions``) and adds
    any position a move reaches that the 4-connected search did not (diagonal moves at odd
    multiples of 45°). Returns positions (P, 2) float64 [x, z] and the MoveAhead table (P, H)
    int64: the index of the position reached from each position at each heading (itself when
    blocked). Other agents and interactions are not considered (the scene's initial state).
    """
    headings = [float(h) for h in headings]
    if not headings:
        raise ValueError("headings must name at least one heading in degrees, e.g. (0, 90, 180, 270)")
    positions = [tuple(p) for p in _probe([scene], grid_size).reachable_positions(0)]
    index = {_grid_key(*p, grid_size): i for i, p in enumerate(positions)}
    sim = _probe([scene] * _MOVE_CHUNK, grid_size)
    rows: list[list[int]] = []
    while len(rows) < len(positions):
        batch = positions[len(rows) : len(rows) + _MOVE_CHUNK]
        n = len(batch)
        chunk_rows = [[0] * len(headings) for _ in range(n)]
        xz = torch.tensor(batch, dtype=torch.float32)
        worlds = torch.arange(n)
        acts = torch.full((_MOVE_CHUNK,), -1, dtype=torch.long)
        acts[:n] = NAV_INDEX["MoveAhead"]
        for h, yaw in enumerate(headings):
            # Positions come from the collision-checked search or from moves: no check needed.
            sim.teleport(worlds, xz[:, 0], xz[:, 1], torch.full((n,), yaw), torch.zeros(n), check=False)
            sim.step_nav(acts)
            reached = sim.agent_poses()[:n, :2].numpy()
            for j in range(n):
                x, z = float(reached[j, 0]), float(reached[j, 1])
                key = _grid_key(x, z, grid_size)
                if key not in index:
                    index[key] = len(positions)
                    positions.append((round(x, 4), round(z, 4)))
                chunk_rows[j][h] = index[key]
        rows.extend(chunk_rows)
    return np.asarray(positions, dtype=np.float64), np.asarray(rows, dtype=np.int64)


def footprint_distance(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Horizontal distance from points (C, 2|3) to the (x, z) footprints of boxes (B, 3) → (C, B)."""
    px = p[:, None, 0]
    pz = p[:, None, -1]
    dx = np.maximum(np.maximum(lo[None, :, 0] - px, 0.0), px - hi[None, :, 0])
    dz = np.maximum(np.maximum(lo[None, :, 2] - pz, 0.0), pz - hi[None, :, 2])
    return np.sqrt(dx * dx + dz * dz)


def box_in_frustum(
    cam: np.ndarray,
    fwd: np.ndarray,
    right: np.ndarray,
    up: np.ndarray,
    tx: float,
    ty: float,
    lo: np.ndarray,
    hi: np.ndarray,
    margin: float | None = None,
) -> np.ndarray:
    """(C, B) conservative test: box may intersect the camera's view frustum."""
    center = (lo + hi)[None] * 0.5 - cam[:, None]
    half = (hi - lo)[None] * 0.5
    keep = np.ones(center.shape[:2], dtype=bool)
    for n in (fwd, fwd * tx + right, fwd * tx - right, fwd * ty + up, fwd * ty - up):
        reach = (center * n[:, None]).sum(-1) + (half * np.abs(n[:, None])).sum(-1)
        keep &= reach > -(_CULL_MARGIN if margin is None else margin)
    return keep


def visible_from_poses(
    scene: str,
    positions: np.ndarray,
    yaws: np.ndarray,
    horizons: np.ndarray,
    object_types: Sequence[str],
    *,
    field_of_view: float = 90.0,
    visibility_distance: float = 1.5,
    aspect: float = 1.0,
) -> dict[str, np.ndarray]:
    """Per object type, (C,) bool: some object of that type is visible from each pose.

    Poses are C agent positions (C, 2) [x, z] with yaws (C,) and horizons (C,) in degrees, in the
    scene's initial state with one agent. The answer equals ``BatchedSimulator.visible()`` at those
    poses (same camera, renderer and 64-row raster of width/height ``aspect``; AI2-THOR's rule:
    in frame, unobstructed, within ``visibility_distance`` of the agent's vertical axis). Faster
    because it renders only poses from which a box of a wanted type is within the distance
    (horizontally) and inside the view frustum, and only boxes within the distance: a farther box
    cannot hold a visible pixel, nor can removing it uncover one (a farther hit on the same ray is
    farther from the axis too).
    """
    world = World(get_scene(scene), 1)
    type_of = [o.object_type for o in world.objects]
    types = list(dict.fromkeys(object_types))
    groups = [[i for i, ty in enumerate(type_of) if ty == t] for t in types]
    seen = _visible_groups(
        world, positions, yaws, horizons, groups, field_of_view, visibility_distance, aspect
    )
    return {t: seen[k] for k, t in enumerate(types)}


def objects_visible_from_poses(
    world: World,
    positions: np.ndarray,
    yaws: np.ndarray,
    horizons: np.ndarray,
    object_ids: Sequence[str],
    *,
    field_of_view: float = 90.0,
    visibility_distance: float = 1.5,
    aspect: float = 1.0,
) -> dict[str, bool]:
    """Per objectId of a world in its current state (one agent, e.g. after InitialRandomSpawn
    and with receptacles opened): whether it is visible from at least one of the poses, under
    the same rule and raster as :func:`visible_from_poses`."""
    groups = [[world.index[o]] for o in object_ids]
    seen = _visible_groups(
        world, positions, yaws, horizons, groups, field_of_view, visibility_distance, aspect
    )
    return {o: bool(seen[k].any()) for k, o in enumerate(object_ids)}


def object_visible_per_pose(
    world: World,
    positions: np.ndarray,
    yaws: np.ndarray,
    horizons: np.ndarray,
    object_id: str,
    *,
    field_of_view: float = 90.0,
    visibility_distance: float = 1.5,
    aspect: float = 1.0,
) -> np.ndarray:
    """(C,) bool: whether one object of a world in its current state is visible from each pose
    (one agent, the same rule and raster as :func:`visible_from_poses`). Tasks use it to find
    the poses from which a goal can be seen (e.g. FurnLift's pickup poses)."""
    if object_id not in world.index:
        raise ValueError(f"objectId {object_id!r} is not in the world ({world.spec.name})")
    group = [[world.index[object_id]]]
    fov, dist = field_of_view, visibility_distance
    return _visible_groups(world, positions, yaws, horizons, group, fov, dist, aspect)[0]


def _visible_groups(
    world: World,
    positions: np.ndarray,
    yaws: np.ndarray,
    horizons: np.ndarray,
    groups: Sequence[Sequence[int]],
    field_of_view: float,
    visibility_distance: float,
    aspect: float,
) -> np.ndarray:
    """(G, C) bool: some object of group g (object indices of `world`) is visible from pose c."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    c_all = len(positions)
    yaws = np.asarray(yaws, dtype=np.float64).reshape(-1)
    horizons = np.asarray(horizons, dtype=np.float64).reshape(-1)
    if len(yaws) != c_all or len(horizons) != c_all:
        raise ValueError(
            f"positions ({c_all}), yaws ({len(yaws)}) and horizons ({len(horizons)}) "
            "must hold one value per pose"
        )
    if not (isinstance(aspect, int | float) and aspect > 0):
        raise ValueError(f"aspect (frame width / height) must be positive, got {aspect!r}")
    wb = world.boxes()
    act = wb.active
    lo_all, hi_all, inst_all = wb.lo[act], wb.hi[act], wb.inst[act]
    out = np.zeros((len(groups), c_all), dtype=bool)
    tgt_boxes = np.isin(inst_all, [i for g in groups for i in g])
    if not tgt_boxes.any() or c_all == 0:
        return out

    # Every pose's camera as the simulator computes it (float32 torch arithmetic).
    pos = torch.zeros(c_all, 3)
    pos[:, 0] = torch.from_numpy(positions[:, 0]).float()
    pos[:, 1] = AGENT_Y
    pos[:, 2] = torch.from_numpy(positions[:, 1]).float()
    cam = pos.clone()
    cam[:, 1] = pos[:, 1] + CAMERA_HEIGHT
    yaw = torch.remainder(torch.from_numpy(yaws).float(), 360.0)
    hor = torch.from_numpy(horizons).float()
    fwd, right, up = (t.numpy().astype(np.float64) for t in camera_basis(yaw, hor))
    cam_np = cam.numpy().astype(np.float64)

    vis_h = VISIBILITY_ROWS
    vis_w = max(1, round(VISIBILITY_ROWS * aspect))
    ty = math.tan(math.radians(field_of_view) / 2)
    tx = ty * vis_w / vis_h
    reach = visibility_distance + _CULL_MARGIN
    tlo, thi = lo_all[tgt_boxes], hi_all[tgt_boxes]
    cand = np.zeros(c_all, dtype=bool)
    for s in range(0, c_all, 4096):
        sl = slice(s, s + 4096)
        near = footprint_distance(cam_np[sl], tlo, thi) <= reach
        near &= box_in_frustum(cam_np[sl], fwd[sl], right[sl], up[sl], tx, ty, tlo, thi)
        cand[sl] = near.any(1)
    todo = np.nonzero(cand)[0]
    num_objects = max(len(world.objects), int(inst_all.max(initial=0)) + 1)
    member = np.zeros((len(groups), num_objects + 1), dtype=bool)  # group g holds object k
    for g, idx in enumerate(groups):
        member[g, list(idx)] = True
    for s in range(0, len(todo), _RENDER_CHUNK):
        idx = todo[s : s + _RENDER_CHUNK]
        c = len(idx)
        keep = footprint_distance(cam_np[idx], lo_all, hi_all) <= reach  # (c, B)
        kmax = max(1, int(keep.sum(1).max()))
        order = np.argsort(~keep, axis=1, kind="stable")[:, :kmax]
        boxes = BoxTensors(
            lo=torch.from_numpy(lo_all[order]),
            hi=torch.from_numpy(hi_all[order]),
            inst=torch.from_numpy(inst_all[order]),
            color=torch.zeros(c, kmax, 3),
            pattern=torch.zeros(c, kmax, dtype=torch.int8),
            active=torch.from_numpy(np.take_along_axis(keep, order, 1)),
        )
        ti = torch.from_numpy(idx)
        cams = Cameras(
            world=torch.arange(c),
            pos=cam[ti],
            yaw=yaw[ti],
            horizon=hor[ti],
            hide_lo=torch.full((c,), kmax, dtype=torch.long),
            hide_hi=torch.full((c,), kmax, dtype=torch.long),
        )
        r = render(boxes, cams, vis_h, vis_w, field_of_view, rgb=False)
        inst = r.inst.reshape(c, -1).numpy()
        ok = (inst >= 0) & (r.horizontal.reshape(c, -1).numpy() <= visibility_distance)
        shown = np.zeros((c, num_objects + 1), dtype=bool)  # pose shows object k
        rows = np.broadcast_to(np.arange(c)[:, None], inst.shape)
        shown[rows[ok], inst[ok]] = True
        out[:, idx] = (member[None] & shown[:, None]).any(-1).T
    return out


__all__ = [
    "DEFAULT_HEADINGS",
    "move_table",
    "object_visible_per_pose",
    "objects_visible_from_poses",
    "visible_from_poses",
]
