"""KQA views: the scenes of each split and the rendered views that show objects with facts.

Per scene the built-in simulator re-places the small objects once (seeded, kept out of closed
fridges, cabinets and microwaves so they can be seen), scores many candidate poses on small
instance segmentations in one render pass, and renders the best ones in colour.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from thorgym.kqa.knowledge import KnowledgeBase
from thorgym.kqa.questions import BACKGROUND_TYPES, askable
from thorgym.sim.objects import OBJECT_TYPES
from thorgym.sim.scenes import parse_scene, scenes_for

__all__ = ["VISIBLE_AREA", "candidate_poses", "objects_in_view", "pick_scenes", "scene_views", "view_score"]

VISIBLE_AREA = 0.002
"""An object counts as in view (sidecar, oracle detector) from this fraction of the image."""
_HORIZONS = (0.0, 30.0)
_HORIZON_P = (0.4, 0.6)
_AIM_HORIZONS = (0.0, 30.0, 60.0)
_CANDIDATE_SIZE = 64  # candidate poses are scored on 64x64 segmentations (one render pass)


def objects_in_view(inst: np.ndarray, world: Any) -> list[dict[str, Any]]:
    """Objects covering at least ``VISIBLE_AREA`` of an instance map, largest first."""
    h, w = inst.shape
    n = len(world.objects)
    flat = inst.reshape(-1)
    counts = np.bincount(flat[flat >= 0].astype(np.int64), minlength=n)
    out = []
    for idx in np.flatnonzero(counts >= max(1, VISIBLE_AREA * h * w)):
        o = world.objects[int(idx)]
        ys, xs = np.nonzero(inst == idx)
        parent_type = None
        if o.parent is not None and o.parent in world.index:
            parent_type = world.objects[world.index[o.parent]].object_type
        out.append(
            {
                "objectId": o.object_id,
                "objectType": o.object_type,
                "area": round(float(counts[idx]) / (h * w), 5),
                "bbox": [
                    round(float(xs.min()) / w, 4),
                    round(float(ys.min()) / h, 4),
                    round(float(xs.max() + 1) / w, 4),
                    round(float(ys.max() + 1) / h, 4),
                ],
                "center": [
                    round(float(xs.mean() + 0.5) / w, 4),
                    round(float(ys.mean() + 0.5) / h, 4),
                ],
                "parentType": parent_type,
                "inside": bool(o.inside),
            }
        )
    out.sort(key=lambda d: (-d["area"], d["objectId"]))
    return out


def pick_scenes(split: str, room_types: Sequence[str], n: int, seed: int) -> list[str]:
    out = []
    for i, room in enumerate(room_types):
        pool = scenes_for(split, (room,))
        if not 1 <= n <= len(pool):
            raise ValueError(
                f"{split} has {len(pool)} {room} scenes; asked for {n} per room type (use 1..{len(pool)})"
            )
        order = np.random.default_rng([seed, 101, i, len(pool)]).permutation(len(pool))
        out += sorted((pool[k] for k in order[:n]), key=lambda s: parse_scene(s)[2])
    return out


_CLOSED_INTERIORS = frozenset({"Fridge", "Cabinet", "Microwave"})


def view_score(view: Sequence[dict[str, Any]], kb: KnowledgeBase) -> float:
    """How good a view is for questions: distinct object types with facts, big enough to ask
    about; small (pickupable) objects count double, background types not at all."""
    types = {
        v["objectType"]
        for v in view
        if askable(v) and v["objectType"] in kb.objects and v["objectType"] not in BACKGROUND_TYPES
    }
    return float(sum(2 if OBJECT_TYPES[t].pickupable else 1 for t in types))


def candidate_poses(
    world: Any,
    reachable: Sequence[tuple[float, float]],
    n: int,
    rng: np.random.Generator,
    kb: KnowledgeBase,
) -> list[tuple[float, float, float, float]]:
    """``n`` poses (x, z, yaw, horizon) at reachable grid points.

    Half look at a random object with facts (small objects, three times as likely, from
    0.4–0.9 m, others from 0.75–2 m; yaw in 45-degree steps, the camera tilted down toward low
    objects); the rest are random grid poses (yaw in 90-degree steps).
    """
    from thorgym.sim.layout import AGENT_Y, CAMERA_HEIGHT

    pts = np.asarray(reachable, dtype=float)
    targets = []
    for o in world.objects:
        if o.object_type not in kb.objects or o.object_type in BACKGROUND_TYPES:
            continue
        parent = world.objects[world.index[o.parent]] if o.parent in world.index else None
        if o.inside and parent is not None and parent.object_type in _CLOSED_INTERIORS:
            continue  # hidden until opened
        targets.append(o)
    poses: list[tuple[float, float, float, float]] = []
    if targets:
        w = np.array([3.0 if OBJECT_TYPES[o.object_type].pickupable else 1.0 for o in targets])
        for _ in range(n // 2):
            o = targets[int(rng.choice(len(targets), p=w / w.sum()))]
            lo, hi = (0.4, 0.9) if OBJECT_TYPES[o.object_type].pickupable else (0.75, 2.0)
            d = np.hypot(pts[:, 0] - o.center[0], pts[:, 1] - o.center[2])
            near = np.flatnonzero((d >= lo) & (d <= hi))
            if len(near) == 0:
                continue
            k = int(near[int(rng.integers(len(near)))])
            dx, dz = o.center[0] - pts[k, 0], o.center[2] - pts[k, 1]
            yaw = float((45 * round(np.degrees(np.arctan2(dx, dz)) / 45)) % 360)
            pitch = np.degrees(np.arctan2(AGENT_Y + CAMERA_HEIGHT - o.center[1], d[k]))
            horizon = _AIM_HORIZONS[int(np.argmin([abs(pitch - h) for h in _AIM_HORIZONS]))]
            poses.append((float(pts[k, 0]), float(pts[k, 1]), yaw, float(horizon)))
    while len(poses) < n:
        k = int(rng.integers(len(pts)))
        poses.append(
            (
                float(pts[k, 0]),
                float(pts[k, 1]),
                float(90 * rng.integers(4)),
                float(rng.choice(_HORIZONS, p=_HORIZON_P)),
            )
        )
    return poses


def scene_views(
    scene: str,
    *,
    seed: int,
    images: int,
    candidates: int,
    width: int,
    height: int,
    device: str,
    kb: KnowledgeBase,
) -> tuple[list[dict[str, Any]], np.random.Generator]:
    """Render up to ``images`` views of one scene showing objects with knowledge facts."""
    from thorgym.sim.batch import BatchedSimulator

    rng = np.random.default_rng([seed, zlib.crc32(scene.encode())])
    spawn_seed = int(rng.integers(2**31 - 1))

    def make(n: int, w: int, h: int, rgb: bool) -> BatchedSimulator:
        sim = BatchedSimulator(
            [scene] * n,
            width=w,
            height=h,
            render_depth=False,
            render_instance_segmentation=True,
            render_rgb=rgb,
            device=device,
        )
        # Re-place the small objects once, then give every copy of the scene the same layout.
        # Small objects go on surfaces, not into closed fridges and cabinets, so they can be
        # seen (and asked about).
        first = sim.worlds[0]
        first.random_spawn(spawn_seed, excluded_receptacles=sorted(_CLOSED_INTERIORS))
        for world in sim.worlds[1:]:
            for src, dst in zip(first.objects, world.objects, strict=True):
                dst.center, dst.size = src.center.copy(), src.size.copy()
                dst.parent, dst.inside = src.parent, src.inside
            world._touch()
        return sim

    def pose_at(sim: BatchedSimulator, i: int, pose: tuple[float, float, float, float]) -> None:
        x, z, yaw, horizon = pose
        sim.teleport([i], [x], [z], [yaw], [horizon], check=False)

    cand = make(candidates, _CANDIDATE_SIZE, _CANDIDATE_SIZE, False)
    reachable = cand.reachable_positions(0)
    if not reachable:
        return [], rng
    poses = candidate_poses(cand.worlds[0], reachable, candidates, rng, kb)
    for i, pose in enumerate(poses):
        pose_at(cand, i, pose)
    out, _ = cand.render(rgb=False)
    inst = out.inst.reshape(candidates, _CANDIDATE_SIZE, _CANDIDATE_SIZE).cpu().numpy()
    scored = []
    for i in range(candidates):
        view = objects_in_view(inst[i], cand.worlds[i])
        scored.append((view_score(view, kb) + 0.5 * float(rng.random()), i))
    scored.sort(reverse=True)
    chosen: list[int] = []
    spots: set[tuple[float, float]] = set()
    for score, i in scored:
        if score < 1.0 or len(chosen) >= images:
            break
        spot = poses[i][:2]
        if spot in spots:
            continue
        spots.add(spot)
        chosen.append(i)
    if not chosen:
        return [], rng
    final = make(len(chosen), width, height, True)
    for j, i in enumerate(chosen):
        pose_at(final, j, poses[i])
    out, _ = final.render()
    rgb = out.rgb.reshape(len(chosen), height, width, 3).cpu().numpy()
    inst = out.inst.reshape(len(chosen), height, width).cpu().numpy()
    views = []
    for j, i in enumerate(chosen):
        x, z, yaw, horizon = poses[i]
        views.append(
            {
                "frame": rgb[j],
                "objects": objects_in_view(inst[j], final.worlds[j]),
                "pose": {"x": x, "z": z, "rotation": yaw, "horizon": horizon},
            }
        )
    return views, rng
