"""Forces ("What happens if…", Mottaghi et al., ECCV 2016): predict what a push does to an object.

A sample is one push: the RGB image before it, the pushed object's mask, the force (where it
acts in the image, its direction and magnitude) and what MuJoCo made of it — the object's 3-D
trajectory and its label, 6 steps of 18 classes.

Label quantisation (thorgym's; the paper's exact layout of its 17 directions is not published):
the trajectory after the push is cut into :data:`STEPS` windows of :data:`WINDOW` seconds. Each
window's displacement d of the object's box centre becomes one class:

* ``0`` stop: |d| < :data:`STOP_DISTANCE` (1 cm);
* ``1``–``8`` horizontal: the elevation of d is above −22.5° (sliding, tipping, and the rare
  upward bounce); the class is the azimuth bin of d's horizontal part, clockwise from the
  camera's forward direction in 45° bins centred on 0° (1 = away from the camera, 3 = right,
  5 = towards the camera, 7 = left);
* ``9``–``16`` falling diagonally: elevation in [−67.5°, −22.5°), same azimuth bins;
* ``17`` falling straight down: elevation below −67.5°.

Directions are relative to the camera, so the label is what the image shows. Measures follow the
paper: whole-sequence accuracy over the samples whose true sequence is not all stop, plus
per-step accuracy and both per object type.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

STEPS = 6
NUM_CLASSES = 18
STOP = 0
WINDOW = 0.15  # seconds per label step: 6 steps cover 0.9 s after the push
STOP_DISTANCE = 0.01  # metres moved in a window below which the object counts as stopped
PUSH_ANGLES = tuple(range(0, 360, 45))  # push directions, degrees clockwise from the camera's forward
MAGNITUDES = (10.0, 20.0, 40.0, 80.0, 160.0)  # newtons (AI2-THOR's moveMagnitude)
SPLITS = ("train", "val", "test")

_AZIMUTH_NAMES = ("away", "away-right", "right", "toward-right", "toward", "toward-left", "left", "away-left")
CLASS_NAMES: tuple[str, ...] = (
    "stop",
    *(f"slide {a}" for a in _AZIMUTH_NAMES),
    *(f"fall {a}" for a in _AZIMUTH_NAMES),
    "fall down",
)


def direction_class(displacement: np.ndarray, camera_yaw_deg: float) -> int:
    """The class (0–17) of one window's displacement (3,) seen from a camera turned
    `camera_yaw_deg` (AI2-THOR's yaw: 0 looks along +z, 90 along +x)."""
    d = np.asarray(displacement, dtype=np.float64)
    dist = float(np.linalg.norm(d))
    if dist < STOP_DISTANCE:
        return STOP
    horiz = math.hypot(d[0], d[2])
    elevation = math.degrees(math.atan2(d[1], horiz))
    if elevation < -67.5:
        return 17
    azimuth = math.degrees(math.atan2(d[0], d[2])) - camera_yaw_deg  # clockwise from forward
    bin_ = int(math.floor(((azimuth % 360.0) + 22.5) / 45.0)) % 8
    return 1 + bin_ + (8 if elevation < -22.5 else 0)


def trajectory_labels(times: np.ndarray, positions: np.ndarray, camera_yaw_deg: float) -> np.ndarray:
    """(STEPS,) int64 labels of a trajectory ((T,) times from the push, (T, 3) positions); after
    the trajectory ends (the object came to rest) the windows are stop."""
    times = np.asarray(times, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    out = np.zeros(STEPS, dtype=np.int64)
    for k in range(STEPS):
        a = _position_at(times, positions, k * WINDOW)
        b = _position_at(times, positions, (k + 1) * WINDOW)
        out[k] = direction_class(b - a, camera_yaw_deg)
    return out


def _position_at(times: np.ndarray, positions: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation of the trajectory at time t (held at its last point after the end)."""
    return np.array([np.interp(t, times, positions[:, c]) for c in range(3)])


def force_encoding(point_xy: np.ndarray, angle_deg: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """(K, 5) float32 features of K forces: image point (x, y) in [0, 1], the push direction as
    (sin, cos) of its angle from the camera's forward, log magnitude scaled to about [0, 1]."""
    p = np.asarray(point_xy, dtype=np.float64).reshape(-1, 2)
    a = np.radians(np.asarray(angle_deg, dtype=np.float64).reshape(-1))
    m = np.asarray(magnitude, dtype=np.float64).reshape(-1)
    logm = np.log(np.maximum(m, 1e-3)) / math.log(MAGNITUDES[-1])
    return np.stack([p[:, 0], p[:, 1], np.sin(a), np.cos(a), logm], axis=1).astype(np.float32)


FORCE_FEATURES = 5


@dataclass
class ForceSample:
    """One push, as the dataset stores it (see :mod:`thorgym.datasets.forces`)."""

    image: np.ndarray  # (H, W, 3) uint8, before the push
    mask: np.ndarray  # (H, W) bool, the pushed object's pixels
    point: np.ndarray  # (2,) float32: where the force acts, image x, y in [0, 1] (origin top-left)
    angle: float  # push direction, degrees clockwise from the camera's forward (horizontal)
    magnitude: float  # newtons
    point3d: np.ndarray  # (3,) world point where the force acts
    trajectory: np.ndarray  # (T, 3) box centre every 0.02 s from the push (T <= TRAJ_LEN)
    labels: np.ndarray  # (STEPS,) int64 in [0, NUM_CLASSES)
    scene: str
    object_id: str
    object_type: str
    camera: np.ndarray  # (5,) agent x, y, z, yaw, horizon
    outcome: str  # physics end: "rest" or "timeout"


def is_all_stop(labels: np.ndarray) -> np.ndarray:
    """(K,) bool: sequences that are stop at every step (left out of sequence accuracy)."""
    return (np.asarray(labels).reshape(-1, STEPS) == STOP).all(axis=1)


def score(predictions: np.ndarray, labels: np.ndarray, object_types: Iterable[str]) -> dict:
    """The task's measures for (K, STEPS) predicted and true labels.

    ``sequence_accuracy``: share of samples with a moving (not all-stop) true sequence whose
    6 predicted classes are all right (the paper's metric, in %); ``per_step_accuracy``: share
    of right classes over all steps of all samples (%); both also per object type; counts.
    """
    pred = np.asarray(predictions, dtype=np.int64).reshape(-1, STEPS)
    true = np.asarray(labels, dtype=np.int64).reshape(-1, STEPS)
    types = list(object_types)
    if not (len(pred) == len(true) == len(types)):
        raise ValueError(f"score: {len(pred)} predictions, {len(true)} labels, {len(types)} object types")
    moving = ~is_all_stop(true)
    exact = (pred == true).all(axis=1)
    steps = (pred == true).mean(axis=1)

    def block(sel: np.ndarray) -> dict:
        mv = sel & moving
        return {
            "samples": int(sel.sum()),
            "moving_samples": int(mv.sum()),
            "sequence_accuracy": round(100.0 * float(exact[mv].mean()), 2) if mv.any() else None,
            "per_step_accuracy": round(100.0 * float(steps[sel].mean()), 2) if sel.any() else None,
        }

    by_type: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(types), dtype=bool))
    for k, t in enumerate(types):
        by_type[t][k] = True
    out = block(np.ones(len(types), dtype=bool))
    out["all_stop_samples"] = int((~moving).sum())
    out["per_object_type"] = {t: block(sel) for t, sel in sorted(by_type.items())}
    return out


def most_frequent_sequence(labels: np.ndarray) -> np.ndarray:
    """(STEPS,) the most frequent moving (not all-stop) label sequence (ties: the smallest)."""
    true = np.asarray(labels, dtype=np.int64).reshape(-1, STEPS)
    moving = true[~is_all_stop(true)]
    if len(moving) == 0:
        return np.zeros(STEPS, dtype=np.int64)
    seqs, counts = np.unique(moving, axis=0, return_counts=True)
    return seqs[int(np.argmax(counts))]


def class_weights(labels: np.ndarray) -> np.ndarray:
    """(NUM_CLASSES,) float32 inverse-frequency weights (normalised to mean 1 over present
    classes; absent classes get 0): the paper's frequency-weighted cross-entropy."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).reshape(-1), minlength=NUM_CLASSES).astype(
        np.float64
    )
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    present = counts > 0
    if present.any():
        w[present] /= w[present].mean()
    return w.astype(np.float32)


def summarize_counts(labels: np.ndarray) -> Mapping[str, int]:
    """How often each class occurs (for the dataset manifest)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).reshape(-1), minlength=NUM_CLASSES)
    return {CLASS_NAMES[c]: int(counts[c]) for c in range(NUM_CLASSES)}
