"""Pictures of force predictions: the image with the pushed object's mask outlined, the force arrow
and the simulated (green) and predicted (red) trajectories of the object, projected into the image.

Projection: the camera of a sample stands at the agent's (x, y + ``CAMERA_HEIGHT``, z), turned
``yaw`` degrees (0 looks along +z) and looking ``horizon`` degrees down, with a 90° vertical field
of view — the built-in simulator's camera (``thorgym.sim.render.camera_basis`` gives the axes;
pixel j's centre is at (j + ½)/W of the width, as the renderer's ray grid).

The predicted trajectory is drawn from the object's box centre at the push: each predicted class
moves it :data:`PRED_STEP` metres along the class's direction — its azimuth bin's centre
(clockwise from the camera's forward, in 45° steps) at elevation 0° (slide), −45° (fall
diagonally) or −90° (fall down); stop does not move. It shows direction, not distance: the labels
quantise directions only.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from thorgym.atomic import atomic_writer
from thorgym.tasks.forces import STEPS, STOP, WINDOW

__all__ = [
    "FOV",
    "PRED_STEP",
    "TILE",
    "TRAJ_DT",
    "class_direction",
    "draw_sample",
    "predicted_path",
    "project",
    "write_contact_sheet",
    "write_video",
]

FOV = 90.0  # vertical field of view, degrees (the simulator's default, the generator's camera)
PRED_STEP = 0.05  # metres drawn per predicted step
TRAJ_DT = 0.02  # seconds between stored trajectory points (datasets/forces.py: TRAJ_LEN 151 = 3 s)
FORCE_ARROW = 0.15  # metres of the force arrow at the largest magnitude
MIN_ARROW = 24.0  # pixels: shorter projected force arrows are lengthened
TILE = 256  # pixel side of one drawn sample
BAND = 48  # text band under a tile
_SIM = (40, 220, 60)
_PRED = (255, 60, 60)
_FORCE = (60, 200, 255)
_MASK = (255, 230, 0)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def project(
    points: np.ndarray, camera: np.ndarray, width: int, height: int, fov: float = FOV
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (T, 2) (x right, y down; pixel j spans [j, j + 1)) of world points (T, 3)
    seen by ``camera`` (agent x, y, z, yaw, horizon), and (T,) bool: in front of the camera
    (:func:`thorgym.sim.render.project_points`)."""
    from thorgym.sim.render import project_points

    return project_points(points, camera, width, height, fov)


def class_direction(cls: int, camera_yaw: float) -> np.ndarray:
    """(3,) unit world direction of a class (zero for stop) for a camera turned ``camera_yaw``."""
    if cls == STOP:
        return np.zeros(3)
    if cls == 17:
        return np.array([0.0, -1.0, 0.0])
    b = (cls - 1) % 8
    elevation = 0.0 if cls <= 8 else -45.0
    az = math.radians(camera_yaw + 45.0 * b)
    el = math.radians(elevation)
    return np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])


def predicted_path(start: np.ndarray, classes: Sequence[int], camera_yaw: float) -> np.ndarray:
    """(STEPS + 1, 3) points: ``start`` then one :data:`PRED_STEP` per class along its direction."""
    pts = [np.asarray(start, dtype=np.float64)]
    for c in classes:
        pts.append(pts[-1] + PRED_STEP * class_direction(int(c), camera_yaw))
    return np.stack(pts)


def _outline(mask: np.ndarray) -> np.ndarray:
    m = mask
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def draw_sample(
    image: np.ndarray,
    mask: np.ndarray,
    point: np.ndarray,
    angle: float,
    magnitude: float,
    camera: np.ndarray,
    point3d: np.ndarray,
    trajectory: np.ndarray,
    traj_len: int,
    labels: Sequence[int],
    prediction: Sequence[int],
    title: str = "",
    upto: int = STEPS,
) -> np.ndarray:
    """(TILE + BAND, TILE, 3) uint8 picture of one sample, trajectories drawn up to step ``upto``."""
    h, w = image.shape[:2]
    s = TILE / max(h, w)
    big = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize(
        (round(w * s), round(h * s)), Image.NEAREST
    )
    m = (
        np.asarray(Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize(big.size, Image.NEAREST))
        > 0
    )
    arr = np.asarray(big).copy()
    edge = _outline(m)
    arr[edge] = _MASK
    tile = Image.new("RGB", (TILE, TILE + BAND), (24, 24, 28))
    tile.paste(Image.fromarray(arr), (0, 0))
    d = ImageDraw.Draw(tile)
    yaw = float(camera[3])

    def px(points: np.ndarray) -> list[tuple[float, float]] | None:
        uv, front = project(points, camera, w, h)
        if not front.all():
            return None
        return [(float(a) * s, float(b) * s) for a, b in uv]

    # simulated trajectory up to step `upto`
    n_sim = min(int(traj_len), int(round(upto * WINDOW / TRAJ_DT)) + 1)
    if n_sim >= 2:
        pts = px(trajectory[:n_sim])
        if pts:
            d.line(pts, fill=_SIM, width=3)
    pred = predicted_path(trajectory[0], list(prediction)[:upto], yaw)
    pts = px(pred)
    if pts:
        d.line(pts, fill=_PRED, width=2)
        for p in pts[1:]:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=_PRED)
    # the force: an arrow from its image point along its direction (projected from 3-D)
    p0 = (float(point[0]) * w * s, float(point[1]) * h * s)
    az = math.radians(yaw + float(angle))
    length = FORCE_ARROW * max(0.25, math.log(max(float(magnitude), 1.0)) / math.log(80.0))
    ends = px(np.stack([point3d, np.asarray(point3d) + length * np.array([math.sin(az), 0.0, math.cos(az)])]))
    r = math.radians(float(angle))
    dx, dy = 40 * math.sin(r), -40 * math.cos(r)  # fallback: up in the image is away from the camera
    if ends:
        ex, ey = ends[1][0] - ends[0][0], ends[1][1] - ends[0][1]
        n = math.hypot(ex, ey)
        if n > 1e-6:  # the projected direction, at least MIN_ARROW pixels long to stay visible
            k = max(1.0, MIN_ARROW / n)
            dx, dy = ex * k, ey * k
    p1 = (p0[0] + dx, p0[1] + dy)
    d.line([p0, p1], fill=_FORCE, width=3)
    ang = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    for da in (2.6, -2.6):
        d.line([p1, (p1[0] + 9 * math.cos(ang + da), p1[1] + 9 * math.sin(ang + da))], fill=_FORCE, width=3)
    d.ellipse([p0[0] - 3, p0[1] - 3, p0[0] + 3, p0[1] + 3], fill=_FORCE)
    f = _font(12)
    ok = list(map(int, labels)) == list(map(int, prediction))
    d.text((4, TILE + 2), f"{title}  {magnitude:g} N", fill=(240, 240, 240), font=f)
    d.text((4, TILE + 17), "sim  " + " ".join(f"{int(c):2d}" for c in labels), fill=_SIM, font=f)
    d.text((4, TILE + 32), "pred " + " ".join(f"{int(c):2d}" for c in prediction) + ("  ok" if ok else ""),
           fill=_PRED, font=f)  # fmt: skip
    return np.asarray(tile, dtype=np.uint8)


def write_contact_sheet(path: str | Path, tiles: Sequence[np.ndarray], columns: int = 4) -> Path:
    """Tiles (all one shape) in a grid, as a PNG written atomically."""
    if not tiles:
        raise ValueError("no tiles to draw")
    th, tw = tiles[0].shape[:2]
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * tw + (cols - 1) * 4, rows * th + (rows - 1) * 4), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(Image.fromarray(t), ((i % cols) * (tw + 4), (i // cols) * (th + 4)))
    buf = io.BytesIO()
    sheet.save(buf, format="png")
    with atomic_writer(path) as f:
        f.write(buf.getvalue())
    return Path(path)


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: int = 3) -> Path | None:
    """An mp4 of the frames (H.264, written atomically by ``thorgym.envs.video``)."""
    from thorgym.envs.video import EpisodeVideoWriter

    w = EpisodeVideoWriter(path, fps=fps)
    for fr in frames:
        w.add(fr)
    return w.close()
