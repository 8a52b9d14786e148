"""The forces dataset: pushes on visible objects of the built-in scenes, simulated with MuJoCo.

``thorgym data forces --out DIR [--scenes …] [--n N] [--seed S]`` writes, per split (train / val /
test by scene, AI2-THOR's usual split: FloorPlan 1–20 / 21–25 / 26–30 of each room type), one
shard per scene, ``DIR/<split>/<scene>.npz``, and ``DIR/manifest.json``. Each shard holds the
scene's samples as stacked arrays (:data:`ARRAY_KEYS`). A shard is written atomically and only
when complete, so a killed run is resumed by running the same command again: finished shards
are kept (when their recorded settings match), the others made again. A shard's samples depend
only on (seed, scene, N, size), so the same command gives the same bytes.

How one scene's samples are made (:func:`scene_samples`): the agent stands at random reachable
positions, turned to a random multiple of 90° and looking down 30°; in each view, pushable
objects (AI2-THOR's rule: pickupable or moveable, visible, not shut in or held) with at least
:data:`MIN_MASK_PIXELS` pixels are candidates. A sample picks one, a pixel of its mask (the force
acts where that pixel's ray hits the object), a horizontal direction (:data:`PUSH_ANGLES` from
the camera's forward) and a magnitude (:data:`MAGNITUDES` newtons); MuJoCo simulates until
everything is at rest, the object is too fast (the sample is dropped and counted) or a time cap;
the world is then put back, so every push starts from the scene as the image shows it.
A small test split ships with the package (``datasets/data/forces_test.npz``, 64×64).
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from thorgym.atomic import write_bytes_atomic, write_json_atomic
from thorgym.tasks.forces import (
    MAGNITUDES,
    NUM_CLASSES,
    PUSH_ANGLES,
    SPLITS,
    STEPS,
    summarize_counts,
    trajectory_labels,
)

FORMAT_VERSION = 1
TRAJ_LEN = 151  # 3 s of trajectory at 0.02 s (pushes that run longer are cut for storage)
MIN_MASK_PIXELS = 6
HORIZON = 30.0  # degrees down: tables and counters in view
SHIPPED_TEST = Path(__file__).parent / "data" / "forces_test.npz"
ARRAY_KEYS = (
    "image", "mask", "point", "angle", "magnitude", "point3d", "trajectory", "traj_len", "labels",
    "scene", "object_id", "object_type", "camera", "outcome",
)  # fmt: skip


@dataclass
class ForceArrays:
    """K samples as stacked arrays (the shard format; see :class:`thorgym.tasks.forces.ForceSample`)."""

    image: np.ndarray  # (K, H, W, 3) uint8
    mask: np.ndarray  # (K, H, W) bool
    point: np.ndarray  # (K, 2) float32 image x, y in [0, 1]
    angle: np.ndarray  # (K,) float32 degrees clockwise from the camera's forward
    magnitude: np.ndarray  # (K,) float32 newtons
    point3d: np.ndarray  # (K, 3) float32
    trajectory: np.ndarray  # (K, TRAJ_LEN, 3) float32, padded with the last position
    traj_len: np.ndarray  # (K,) int32 valid trajectory points
    labels: np.ndarray  # (K, STEPS) int64 in [0, NUM_CLASSES)
    scene: np.ndarray  # (K,) str
    object_id: np.ndarray  # (K,) str
    object_type: np.ndarray  # (K,) str
    camera: np.ndarray  # (K, 5) float32 agent x, y, z, yaw, horizon
    outcome: np.ndarray  # (K,) str: "rest" or "timeout"

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray | Sequence[int]) -> ForceArrays:
        idx = np.asarray(idx)
        return ForceArrays(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(parts: Sequence[ForceArrays]) -> ForceArrays:
        if not parts:
            raise ValueError("no samples to concatenate")
        return ForceArrays(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ForceArrays)}
        )

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, format_version=np.int64(FORMAT_VERSION), **{k: getattr(self, k) for k in ARRAY_KEYS}
        )
        return buf.getvalue()


def read_shard(path: str | Path) -> ForceArrays:
    """Read one shard (or the shipped split), checking its format; ValueError names the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"]) if "format_version" in z.files else None
            if version != FORMAT_VERSION:
                raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
            missing = [k for k in ARRAY_KEYS if k not in z.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            arrays = ForceArrays(**{k: z[k] for k in ARRAY_KEYS})
    except FileNotFoundError:
        raise
    except Exception as e:  # zip, pickle or shape errors: one clear message
        raise ValueError(
            f"{path}: not a thorgym forces shard ({e}); regenerate it with `thorgym data forces`"
        ) from e
    k = len(arrays.labels)
    if (
        arrays.labels.shape != (k, STEPS)
        or arrays.labels.min(initial=0) < 0
        or arrays.labels.max(initial=0) >= NUM_CLASSES
    ):
        raise ValueError(f"{path}: labels must be (K, {STEPS}) integers in [0, {NUM_CLASSES})")
    for f in fields(ForceArrays):
        if len(getattr(arrays, f.name)) != k:
            raise ValueError(f"{path}: array {f.name!r} has {len(getattr(arrays, f.name))} rows, labels {k}")
    return arrays


def load_split(root: str | Path | None, split: str) -> ForceArrays:
    """All samples of a split under `root` (a `thorgym data forces --out` folder), in scene order.
    ``root=None`` with split "test" is the shipped test split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
    if root is None:
        if split != "test":
            raise ValueError(
                f"only the test split ships; generate {split!r} with `thorgym data forces --out DIR`"
            )
        return read_shard(SHIPPED_TEST)
    folder = Path(root) / split
    shards = sorted(folder.glob("*.npz"))
    if not shards:
        raise FileNotFoundError(f"no shards in {folder}: run `thorgym data forces --out {root}` first")
    return ForceArrays.concat([read_shard(p) for p in shards])
