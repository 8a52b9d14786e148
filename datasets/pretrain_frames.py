"""Frames and free labels from the built-in simulator, for pretraining image backbones.

What a frame is: the view of an agent standing on a random reachable grid point of a scene,
yaw a multiple of 45° and camera horizon 0° or 30° (the poses of SAVN's ObjectNav), rendered at
``size × size`` by :class:`thorgym.sim.BatchedSimulator` — many worlds per call, which is what
makes tens of thousands of frames a matter of a minute on a CPU.

What its label is: **multi-label object-type presence**, a 0/1 vector over :data:`LABEL_TYPES`
saying which object types cover at least ``min_pixels`` pixels of the frame's instance
segmentation. Why this label:

* it is what ObjectNav needs from vision: "is an object of the target type in view?" is the
  question the policy must answer at every step, and :data:`LABEL_TYPES` starts with all of
  SAVN's target types (:data:`thorgym.tasks.objectnav.TARGET_TYPES`), followed by the other
  object types of the simulator (more context for the same price);
* it costs nothing: the renderer produces the instance map in the same ray cast as the RGB
  frame, so there is no annotation and no second pass;
* it is scene-independent: the classes are object types, not instances or positions, so a model
  trained on the train scenes (1–20 of each room type) is evaluated with the same classes on
  held-out val + test scenes (21–30), whose layouts it has never seen.

Datasets are deterministic for a seed (the pose sampler is one seeded NumPy generator over a
fixed scene order) and cached as ``.npz`` files written atomically, so a rerun or a resumed
pretraining never re-renders (:func:`load_or_generate`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thorgym.sim.objects import TYPE_NAMES
from thorgym.sim.scenes import scenes_for
from thorgym.tasks.objectnav import HEADINGS, HORIZONS, TARGET_TYPES

# SAVN's targets first (so ``labels[:, :NUM_TARGET_TYPES]`` is the ObjectNav sub-problem).
LABEL_TYPES: tuple[str, ...] = TARGET_TYPES + tuple(t for t in TYPE_NAMES if t not in TARGET_TYPES)
LABEL_INDEX: dict[str, int] = {t: i for i, t in enumerate(LABEL_TYPES)}
NUM_TARGET_TYPES = len(TARGET_TYPES)
SPLIT_SCENES: dict[str, Callable[[], list[str]]] = {
    "train": lambda: scenes_for("train"),
    "heldout": lambda: scenes_for("val") + scenes_for("test"),
}
MIN_SIZE = 64  # the backbones' input convention: H, W >= 64
MAX_SIZE = 300
FORMAT = "thorgym.pretrain_frames/1"


@dataclass
class FrameSet:
    """Rendered frames with their labels.

    Attributes:
        images: ``(N, size, size, 3)`` uint8 RGB.
        labels: ``(N, C)`` uint8 0/1 presence of each of :attr:`classes`.
        scene_ids: ``(N,)`` index into :attr:`scenes` of each frame's scene.
        poses: ``(N, 4)`` float32 ``x, z, yaw, horizon`` of each frame.
        scenes: scene names.
        classes: label names (object types), :data:`LABEL_TYPES`.
        meta: how the set was made (split, seed, size, min_pixels, simulator fingerprint, ...).
    """

    images: np.ndarray
    labels: np.ndarray
    scene_ids: np.ndarray
    poses: np.ndarray
    scenes: tuple[str, ...]
    classes: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def labels_from_instance(inst: np.ndarray, object_types: Sequence[str], min_pixels: int) -> np.ndarray:
    """0/1 presence vector over :data:`LABEL_TYPES` of one instance segmentation map.

    Args:
        inst: ``(H, W)`` integer map, value ``i >= 0`` for object ``i`` of the world (negative:
            floor, walls, ceiling, agents).
        object_types: ``object_types[i]`` is the type of object ``i``.
        min_pixels: a type is present when its objects cover at least this many pixels in all.

    Returns:
        ``(len(LABEL_TYPES),)`` uint8.
    """
    if min_pixels < 1:
        raise ValueError(f"min_pixels must be >= 1, got {min_pixels}")
    flat = np.asarray(inst).reshape(-1)
    flat = flat[flat >= 0].astype(np.int64)
    n = len(object_types)
    if flat.size and int(flat.max()) >= n:
        raise ValueError(f"instance id {int(flat.max())} but only {n} object types given")
    counts = np.bincount(flat, minlength=n)
    type_ids = np.array([LABEL_INDEX[t] for t in object_types], dtype=np.int64)
    per_type = np.bincount(type_ids, weights=counts, minlength=len(LABEL_TYPES))
    return (per_type >= min_pixels).astype(np.uint8)


def sim_fingerprint() -> str:
    """What the simulator does (:func:`thorgym.sim.fingerprint.behaviour_fingerprint`) with this
    file format: the key of cached frame sets."""
    from thorgym.sim.fingerprint import behaviour_fingerprint

    return hashlib.sha256(f"{FORMAT}/{behaviour_fingerprint()}".encode()).hexdigest()[:16]


def _check(frames: int, size: int, min_pixels: int) -> None:
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"the number of frames must be a positive integer, got {frames!r}")
    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}] (backbones need H, W >= 64), "
            f"got {size!r}; pass --size 64 or larger"
        )
    if not isinstance(min_pixels, int) or min_pixels < 1:
        raise ValueError(f"min_pixels must be a positive integer, got {min_pixels!r}")


def generate_frames(
    scenes: Sequence[str],
    frames: int,
    *,
    size: int = 64,
    seed: int = 0,
    min_pixels: int = 8,
    device: str = "cpu",
    worlds: int = 160,
    progress: bool = False,
) -> FrameSet:
    """Render ``frames`` labelled frames at random reachable poses of ``scenes``.

    Frames are spread evenly over the scenes (frame ``j`` of a batch is in scene
    ``j % len(scenes)``); each batch renders ``max(worlds, len(scenes))`` worlds in one call.
    The poses come from one generator seeded with ``seed`` and the scene list, drawn in frame
    order, so the result depends on the arguments and the simulator's code but not on ``worlds``
    (how many frames one render call makes).
    """
    from thorgym.sim.batch import BatchedSimulator

    _check(frames, size, min_pixels)
    scenes = list(scenes)
    if not scenes:
        raise ValueError("scenes must name at least one scene")
    copies = max(1, math.ceil(worlds / len(scenes)))
    slots = scenes * copies
    sim = BatchedSimulator(
        slots,
        width=size,
        height=size,
        render_depth=False,
        render_instance_segmentation=True,
        rotate_step_degrees=45.0,
        device=device,
    )
    reach = {}
    types = {}
    for i, s in enumerate(scenes):  # slots i < len(scenes) hold each scene once
        pts = sim.reachable_positions(i)
        if not pts:
            raise ValueError(f"scene {s} has no reachable positions")
        reach[s] = np.asarray(pts, dtype=np.float32)
        types[s] = [o.object_type for o in sim.worlds[i].objects]
    rng = np.random.default_rng([seed, zlib.crc32("\n".join(scenes).encode())])
    images = np.zeros((frames, size, size, 3), dtype=np.uint8)
    labels = np.zeros((frames, len(LABEL_TYPES)), dtype=np.uint8)
    scene_ids = np.zeros(frames, dtype=np.int16)
    poses = np.zeros((frames, 4), dtype=np.float32)
    batches = range(0, frames, len(slots))
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"rendering {frames} frames", unit="batch")
    for start in batches:
        n = min(len(slots), frames - start)
        for j in range(n):
            s = slots[j]
            pts = reach[s]
            x, z = pts[int(rng.integers(len(pts)))]
            yaw = HEADINGS[int(rng.integers(len(HEADINGS)))]
            horizon = HORIZONS[int(rng.integers(len(HORIZONS)))]
            poses[start + j] = (x, z, yaw, horizon)
            scene_ids[start + j] = j % len(scenes)
        batch = poses[start : start + n]
        # reachable positions by construction: no collision check needed
        sim.teleport(range(n), batch[:, 0], batch[:, 1], batch[:, 2], batch[:, 3], check=False)
        out, _ = sim.render()
        rgb = out.rgb.reshape(len(slots), size, size, 3)[:n].cpu().numpy()
        inst = out.inst.reshape(len(slots), size, size)[:n].cpu().numpy()
        images[start : start + n] = rgb
        for j in range(n):
            labels[start + j] = labels_from_instance(inst[j], types[slots[j]], min_pixels)
    meta = {
        "format": FORMAT,
        "frames": frames,
        "size": size,
        "seed": seed,
        "min_pixels": min_pixels,
        "scenes_hash": zlib.crc32("\n".join(scenes).encode()),
        "sim": sim_fingerprint(),
    }
    return FrameSet(images, labels, scene_ids, poses, tuple(scenes), LABEL_TYPES, meta)


def cache_path(root: str | Path, split: str, frames: int, size: int, seed: int, min_pixels: int) -> Path:
    """Where :func:`load_or_generate` keeps a split's frames under ``root``."""
    return Path(root) / f"frames_{split}_{size}px_{frames}_seed{seed}_k{min_pixels}.npz"


def save_frames(fs: FrameSet, path: str | Path) -> Path:
    """Write a :class:`FrameSet` as a compressed ``.npz``, atomically (never a partial file)."""
    from thorgym.atomic import write_bytes_atomic

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        images=fs.images,
        labels=fs.labels,
        scene_ids=fs.scene_ids,
        poses=fs.poses,
        scenes=np.array(fs.scenes),
        classes=np.array(fs.classes),
        meta=np.array(json.dumps(fs.meta, sort_keys=True)),
    )
    return write_bytes_atomic(path, buf.getvalue())


def load_frames(path: str | Path) -> FrameSet:
    """Read a file written by :func:`save_frames`; ValueError if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            return FrameSet(
                images=f["images"],
                labels=f["labels"],
                scene_ids=f["scene_ids"],
                poses=f["poses"],
                scenes=tuple(str(s) for s in f["scenes"]),
                classes=tuple(str(c) for c in f["classes"]),
                meta=json.loads(str(f["meta"])),
            )
    except (OSError, KeyError, ValueError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is not a readable pretraining frame set ({e})") from e


def load_or_generate(
    root: str | Path,
    split: str,
    frames: int,
    *,
    size: int = 64,
    seed: int = 0,
    min_pixels: int = 8,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[FrameSet, bool]:
    """The frames of ``split`` ("train": train scenes; "heldout": val + test scenes).

    Loaded from the cache under ``root`` when a file made with the same arguments and simulator
    code exists; rendered and cached otherwise. Returns ``(frames, loaded_from_cache)``.
    """
    if split not in SPLIT_SCENES:
        raise ValueError(f"unknown split {split!r}: use one of {sorted(SPLIT_SCENES)}")
    _check(frames, size, min_pixels)
    scenes = SPLIT_SCENES[split]()
    # Different seeds per split, so train and held-out poses are independent draws.
    split_seed = seed * 2 + (0 if split == "train" else 1)
    path = cache_path(root, split, frames, size, seed, min_pixels)
    if path.is_file():
        try:
            fs = load_frames(path)
        except ValueError:
            fs = None  # corrupt or foreign: render again
        if (
            fs is not None
            and fs.meta.get("sim") == sim_fingerprint()
            and fs.meta.get("format") == FORMAT
            and fs.meta.get("seed") == split_seed
            and fs.scenes == tuple(scenes)
            and fs.classes == LABEL_TYPES
            and len(fs) == frames
        ):
            return fs, True
    fs = generate_frames(
        scenes,
        frames,
        size=size,
        seed=split_seed,
        min_pixels=min_pixels,
        device=device,
        progress=progress,
    )
    fs.meta["split"] = split
    save_frames(fs, path)
    return fs, False


__all__ = [
    "LABEL_TYPES",
    "NUM_TARGET_TYPES",
    "FrameSet",
    "cache_path",
    "generate_frames",
    "labels_from_instance",
    "load_frames",
    "load_or_generate",
    "save_frames",
]
