"""Batched ray casting of axis-aligned boxes in PyTorch (CPU or CUDA, no OpenGL, no display).

One call renders every camera of a batch. Per camera the boxes outside the view frustum are
culled and the rest compacted, then each pixel ray is tested against the remaining boxes with
the slab method; the nearest hit gives depth, instance and the face for shading.

Camera conventions (AI2-THOR): y up, yaw 0 looks along +z, positive yaw turns right (towards +x),
positive horizon looks down; ``fov`` is the vertical field of view. Depth is the distance along
the camera's forward axis (as AI2-THOR's depth frame), in metres. Each hit also reports its
euclidean distance from the camera and its horizontal distance from the camera's vertical axis
(the agent's central axis, which AI2-THOR's visibility rule measures from).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

EPS_T = 1e-4
FAR = 100.0
# Light from above and slightly behind the +x/+z corner; ambient keeps shadows readable.
_LIGHT = tuple(float(v) for v in np.array([0.35, 0.85, 0.4]) / np.linalg.norm([0.35, 0.85, 0.4]))


@dataclass
class BoxTensors:
    """Padded boxes of N worlds: (N, B, …) tensors on one device."""

    lo: torch.Tensor  # (N, B, 3) float32
    hi: torch.Tensor  # (N, B, 3)
    inst: torch.Tensor  # (N, B) int32
    color: torch.Tensor  # (N, B, 3) float32
    pattern: torch.Tensor  # (N, B) int8
    active: torch.Tensor  # (N, B) bool


@dataclass
class Cameras:
    """C cameras: each looks into world ``world[c]`` and may hide one box range (its own body)."""

    world: torch.Tensor  # (C,) long
    pos: torch.Tensor  # (C, 3) float32
    yaw: torch.Tensor  # (C,) degrees
    horizon: torch.Tensor  # (C,) degrees
    hide_lo: torch.Tensor  # (C,) long: first box index hidden from this camera (-1 none)
    hide_hi: torch.Tensor  # (C,) long: one past the last hidden box
    roll: torch.Tensor | None = None  # (C,) degrees about the view axis (third-party cameras)


@dataclass
class RenderOutput:
    rgb: torch.Tensor | None  # (C, H, W, 3) uint8
    depth: torch.Tensor  # (C, H, W) float32, metres along the view axis
    inst: torch.Tensor  # (C, H, W) int32 instance code (object index, or structure code)
    distance: torch.Tensor  # (C, H, W) float32, euclidean distance of the hit from the camera
    # (C, H, W) float32: horizontal (x, z) distance of the hit from the camera's vertical axis
    horizontal: torch.Tensor


def camera_basis(yaw: torch.Tensor, horizon: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Forward, right and up vectors (C, 3) from yaw/horizon in degrees.

    Computed in float64 and rounded to float32, so a camera's basis does not depend on how many
    cameras share the call (vectorised and scalar trig may differ in the last bit).
    """
    y = torch.deg2rad(yaw.detach().to("cpu", torch.float64))
    h = torch.deg2rad(horizon.detach().to("cpu", torch.float64))
    sy, cy, sh, ch = torch.sin(y), torch.cos(y), torch.sin(h), torch.cos(h)
    zero = torch.zeros_like(y)
    fwd = torch.stack([sy * ch, -sh, cy * ch], -1)
    right = torch.stack([cy, zero, -sy], -1)
    up = torch.stack([sy * sh, ch, cy * sh], -1)
    dev = yaw.device
    return tuple(v.to(torch.float32).to(dev) for v in (fwd, right, up))


def _rolled(right: torch.Tensor, up: torch.Tensor, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right and up vectors turned by `roll` degrees about the view axis, as Unity's rotation z
    (left-handed: positive roll turns right towards up)."""
    r = torch.deg2rad(roll.detach().to("cpu", torch.float64)).to(torch.float32).to(right.device)[:, None]
    c, s = torch.cos(r), torch.sin(r)
    return c * right + s * up, c * up - s * right


def project_points(
    points: np.ndarray, camera: np.ndarray, width: int, height: int, fov: float = 90.0
) -> tuple[np.ndarray, np.ndarray]:
    """Where world points (T, 3) land in the frame of an agent's camera: pixel coordinates (T, 2)
    (x right, y down; pixel j spans [j, j + 1), as :func:`pixel_grid` lays its rays) and (T,) bool
    in front of the camera. ``camera`` is the agent's pose (x, y, z, yaw, horizon); the camera
    sits CAMERA_HEIGHT above it, with the renderer's basis (:func:`camera_basis`)."""
    from .layout import CAMERA_HEIGHT

    cam = np.asarray(camera, dtype=np.float64).reshape(5)
    basis = camera_basis(torch.tensor([cam[3]]), torch.tensor([cam[4]]))
    fwd, right, up = (v[0].double().numpy() for v in basis)
    eye = np.array([cam[0], cam[1] + CAMERA_HEIGHT, cam[2]])
    d = np.asarray(points, dtype=np.float64).reshape(-1, 3) - eye
    cf, cr, cu = d @ fwd, d @ right, d @ up
    ty = math.tan(math.radians(fov) / 2)
    tx = ty * width / height
    front = cf > 1e-3
    safe = np.where(front, cf, 1.0)
    u = (cr / safe / tx + 1) / 2 * width
    v = (1 - cu / safe / ty) / 2 * height
    return np.stack([u, v], 1), front


def pixel_grid(height: int, width: int, fov: float, device: torch.device) -> torch.Tensor:
    """Camera-space ray directions (H*W, 2) as (x right, y up) at unit forward distance."""
    ty = math.tan(math.radians(fov) / 2)
    tx = ty * width / height
    js = (torch.arange(width, dtype=torch.float64) + 0.5) / width * 2 - 1
    is_ = 1 - (torch.arange(height, dtype=torch.float64) + 0.5) / height * 2
    yy, xx = torch.meshgrid(is_ * ty, js * tx, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).to(torch.float32).to(device)


def _frustum_keep(boxes: BoxTensors, cams: Cameras, fwd, right, up, tx: float, ty: float):
    """(C, B) bool: active boxes that may be seen by each camera (conservative)."""
    lo = boxes.lo[cams.world]
    hi = boxes.hi[cams.world]
    center = (lo + hi) * 0.5 - cams.pos[:, None, :]
    half = (hi - lo) * 0.5
    keep = boxes.active[cams.world].clone()
    # Inward normals of the 4 side planes and the near plane, all through the camera centre.
    planes = [
        fwd,
        fwd * tx + right,
        fwd * tx - right,
        fwd * ty + up,
        fwd * ty - up,
    ]
    for n in planes:
        reach = (center * n[:, None, :]).sum(-1) + (half * n[:, None, :].abs()).sum(-1)
        keep &= reach > -1e-4
    b = torch.arange(lo.shape[1], device=lo.device)[None, :]
    keep &= ~((b >= cams.hide_lo[:, None]) & (b < cams.hide_hi[:, None]))
    return keep


@dataclass
class _Tiles:
    pixels: torch.Tensor  # (T, Pt) pixel index of each tile slot (padding repeats a real pixel)
    real: torch.Tensor  # (T, Pt) bool: slot holds a pixel of its own tile
    bounds: torch.Tensor  # (T, 4) tangent-space x0, x1, y0, y1 of the tile's pixel edges
    slot_of_pixel: torch.Tensor  # (P,) where each image pixel sits in tile order


_TILE_CACHE: dict[tuple, _Tiles] = {}


def _tiles(height: int, width: int, fov: float, device: torch.device) -> _Tiles:
    """Split the image into about 8×8 tiles (cached per size, fov and device)."""
    key = (height, width, fov, str(device))
    if key in _TILE_CACHE:
        return _TILE_CACHE[key]
    ty = math.tan(math.radians(fov) / 2)
    tx = ty * width / height
    size = max(4, math.ceil(max(height, width) / 8))
    rows = range(0, height, size)
    cols = range(0, width, size)
    pix, real, bounds = [], [], []
    for r0 in rows:
        for c0 in cols:
            r1, c1 = min(r0 + size, height), min(c0 + size, width)
            idx = [r * width + c for r in range(r0, r1) for c in range(c0, c1)]
            n = len(idx)
            pix.append(idx + [idx[0]] * (size * size - n))
            real.append([True] * n + [False] * (size * size - n))
            bounds.append(
                [
                    (c0 / width * 2 - 1) * tx,
                    (c1 / width * 2 - 1) * tx,
                    (1 - r1 / height * 2) * ty,
                    (1 - r0 / height * 2) * ty,
                ]
            )
    slot = [0] * (height * width)
    for k, (p, ok) in enumerate(zip(sum(pix, []), sum(real, []), strict=True)):
        if ok:
            slot[p] = k
    tiles = _Tiles(
        torch.tensor(pix, device=device),
        torch.tensor(real, device=device),
        torch.tensor(bounds, dtype=torch.float32, device=device),
        torch.tensor(slot, device=device),
    )
    _TILE_CACHE[key] = tiles
    return tiles


def _tile_planes(tiles: _Tiles, fwd, right, up):
    """Inward normals (c, T, 3) of each tile's four side planes through the camera centre."""
    b = tiles.bounds[None]  # (1, T, 4)
    f, r, u = fwd[:, None, :], right[:, None, :], up[:, None, :]
    return (
        r - b[..., 0:1] * f,
        b[..., 1:2] * f - r,
        u - b[..., 2:3] * f,
        b[..., 3:4] * f - u,
    )


def _nearest_hit(o, d, lo, hi, valid):
    """Slab test. o (C,1,3), d (C,P,3), lo/hi (C,K,3), valid (C,K) -> t (C,P), k (C,P)."""
    inv = 1.0 / d
    tnear = None
    tfar = None
    for ax in range(3):
        a = (lo[:, None, :, ax] - o[:, :, None, ax]) * inv[:, :, None, ax]
        b = (hi[:, None, :, ax] - o[:, :, None, ax]) * inv[:, :, None, ax]
        mn, mx = torch.minimum(a, b), torch.maximum(a, b)
        tnear = mn if tnear is None else torch.maximum(tnear, mn)
        tfar = mx if tfar is None else torch.minimum(tfar, mx)
    hit = (tnear <= tfar) & (tnear > EPS_T) & valid[:, None, :]
    t = torch.where(hit, tnear, torch.full_like(tnear, float("inf")))
    return t.min(-1)


_COMPILED: dict[str, object] = {}


def _maybe_compiled(fn, use_compile: bool):
    """`fn` itself, or its torch.compile'd form (fused loops; compiled once per process)."""
    if not use_compile:
        return fn
    if fn.__name__ not in _COMPILED:
        _COMPILED[fn.__name__] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn.__name__]


def render(
    boxes: BoxTensors,
    cams: Cameras,
    height: int,
    width: int,
    fov: float,
    *,
    rgb: bool = True,
    chunk_elems: int = 1 << 21,
    use_compile: bool = False,
) -> RenderOutput:
    """Ray-cast all cameras. Returns per-pixel RGB, depth, instance code and hit distance."""
    dev = boxes.lo.device
    C = cams.world.shape[0]
    P = height * width
    fwd, right, up = camera_basis(cams.yaw, cams.horizon)
    if cams.roll is not None:
        right, up = _rolled(right, up, cams.roll)
    ty = math.tan(math.radians(fov) / 2)
    tx = ty * width / height
    tiles = _tiles(height, width, fov, dev)
    T, Pt = tiles.pixels.shape
    # Rays are generated directly in tile order (T*Pt slots) and put back in image order once.
    grid = pixel_grid(height, width, fov, dev)[tiles.pixels.reshape(-1)]  # (T*Pt, 2)
    d_t = fwd[:, None, :] + grid[None, :, 0:1] * right[:, None, :] + grid[None, :, 1:2] * up[:, None, :]
    # Keep every direction component away from zero so 1/d stays finite.
    d_t = torch.where(d_t.abs() < 1e-7, torch.full_like(d_t, 1e-7), d_t)
    keep = _frustum_keep(boxes, cams, fwd, right, up, tx, ty)

    t_t = torch.empty(C, T * Pt, device=dev)
    box_t = torch.empty(C, T * Pt, dtype=torch.long, device=dev)
    hit_fn = _maybe_compiled(_nearest_hit, use_compile)
    centre = (boxes.lo + boxes.hi) * 0.5  # (N, B, 3)
    half = (boxes.hi - boxes.lo) * 0.5
    # Cameras are processed in chunks; within a chunk every screen tile keeps only the boxes its
    # own sub-frustum can see, compacted to the chunk's largest per-tile count K. The compiled
    # kernel never materialises (rays x boxes), so it takes all cameras at once.
    kmax = max(1, int(keep.sum(1).max()))
    per_cam = C if use_compile else max(1, chunk_elems // max(1, T * Pt * kmax // 2))
    for start in range(0, C, per_cam):
        sl = slice(start, min(C, start + per_cam))
        w = cams.world[sl]
        c = w.shape[0]
        rel = centre[w] - cams.pos[sl, None, :]  # (c, B, 3)
        hb = half[w]
        tkeep = keep[sl, None, :].expand(c, T, -1).clone()  # (c, T, B)
        for n in _tile_planes(tiles, fwd[sl], right[sl], up[sl]):  # each (c, T, 3)
            reach = torch.bmm(n, rel.transpose(1, 2)) + torch.bmm(n.abs(), hb.transpose(1, 2))
            tkeep &= reach > -1e-4
        K = max(1, int(tkeep.sum(-1).max()))
        order = torch.argsort((~tkeep).to(torch.int8), dim=2, stable=True)[..., :K]  # (c, T, K)
        sel = order.reshape(c, T * K, 1).expand(-1, -1, 3)
        lo = torch.gather(boxes.lo[w], 1, sel).reshape(c * T, K, 3)
        hi = torch.gather(boxes.hi[w], 1, sel).reshape(c * T, K, 3)
        valid = torch.gather(tkeep, 2, order).reshape(c * T, K)
        o = cams.pos[sl, None, None, :].expand(-1, T, 1, -1).reshape(c * T, 1, 3)
        t, k = hit_fn(o, d_t[sl].reshape(c * T, Pt, 3), lo, hi, valid)
        t_t[sl] = t.reshape(c, T * Pt)
        box_t[sl] = torch.gather(order.reshape(c * T, K), 1, k).reshape(c, T * Pt)

    slot = tiles.slot_of_pixel  # (P,) slot in tile order of each image pixel
    t_all = torch.index_select(t_t, 1, slot)
    box_all = torch.index_select(box_t, 1, slot)
    d = torch.index_select(d_t, 1, slot)
    hit = torch.isfinite(t_all)
    t_all = torch.where(hit, t_all, torch.full_like(t_all, FAR))
    # One flat index per pixel into the (N*B) box table: index_select beats 2-D fancy indexing.
    B = boxes.inst.shape[1]
    flat = (cams.world[:, None] * B + box_all).reshape(-1)
    inst = torch.index_select(boxes.inst.reshape(-1), 0, flat).reshape(C, P)
    inst = torch.where(hit, inst, torch.full_like(inst, -100))
    distance = t_all * d.norm(dim=-1)
    horizontal = t_all * torch.sqrt(d[..., 0] * d[..., 0] + d[..., 2] * d[..., 2])
    out_rgb = None
    if rgb:

        def take(x: torch.Tensor) -> torch.Tensor:
            return torch.index_select(x.reshape(-1, *x.shape[2:]), 0, flat).reshape(C, P, *x.shape[2:])

        out_rgb = _maybe_compiled(_shade, use_compile)(
            take(boxes.lo),
            take(boxes.hi),
            take(boxes.color),
            take(boxes.pattern),
            cams.pos,
            d,
            t_all,
            hit,
            distance,
        ).reshape(C, height, width, 3)
    return RenderOutput(
        rgb=out_rgb,
        depth=t_all.reshape(C, height, width),
        inst=inst.to(torch.int32).reshape(C, height, width),
        distance=distance.reshape(C, height, width),
        horizontal=horizontal.reshape(C, height, width),
    )


def _shade(lo, hi, base_color, pattern, cam_pos, d, t, hit, distance) -> torch.Tensor:
    """Flat colours per type, Lambert shading by face normal, procedural patterns, distance fog.

    Per pixel (C, P, …): the hit box's bounds, colour and pattern, the ray and its hit.
    """
    o = cam_pos[:, None, :]
    p = o + t[..., None] * d
    inv = 1.0 / d
    a = (lo - o) * inv
    b = (hi - o) * inv
    axis = torch.minimum(a, b).argmax(-1)  # the face through which the ray entered
    sign = -torch.sign(torch.gather(d, 2, axis[..., None]))[..., 0]
    light = torch.where(axis == 0, _LIGHT[0], torch.where(axis == 1, _LIGHT[1], _LIGHT[2]))
    lam = (sign * light.to(torch.float32)).clamp(min=0.0)
    shade = 0.5 + 0.5 * lam
    pattern = pattern.to(torch.int64)
    # Procedural textures: stripes along y, a checker on the horizontal plane.
    stripes = (torch.floor(p[..., 1] * 10.0).remainder(2) * 0.12).to(torch.float32)
    cell = torch.floor(p[..., 0] * 2.0) + torch.floor(p[..., 2] * 2.0) + torch.floor(p[..., 1] * 4.0)
    checker = (cell.remainder(2) * 0.1).to(torch.float32)
    tex = torch.where(
        pattern == 1,
        1.0 - stripes,
        torch.where(pattern == 2, 1.0 - checker, torch.ones_like(stripes)),
    )
    fog = torch.exp(-0.04 * distance)
    color = base_color * (shade * tex * fog)[..., None]
    color = torch.where(hit[..., None], color, torch.zeros_like(color))
    return (color.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
