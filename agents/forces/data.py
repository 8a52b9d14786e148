"""Batches of forces samples for the model, and the augmentations that keep labels right.

Only two augmentations are used, both exact:

* **colour jitter** (brightness, contrast, saturation per sample, RGB only): the physics does not
  depend on colours, so labels stay;
* **horizontal mirror** (probability ½): the mirrored scene is as physical as the original (gravity
  and friction are left/right symmetric), provided everything that names a direction mirrors too:
  image and mask flip left↔right, the force point x → 1 − x (pixel j's centre (j + ½)/W goes to
  pixel W − 1 − j's), the push angle (clockwise from the camera's forward) → −angle, and each
  slide / fall class's azimuth bin b (clockwise from forward, 45° bins) → −b, i.e. right ↔ left,
  away-right ↔ away-left, toward-right ↔ toward-left; stop, away, toward and fall down stay.

Randomness comes from a generator the caller seeds per step, so a resumed run draws what the
uninterrupted run drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from thorgym.datasets.forces import ForceArrays
from thorgym.tasks.forces import NUM_CLASSES, force_encoding

__all__ = ["MIRROR_CLASS", "Batch", "augment", "make_batch", "mirror_classes"]


def _mirror_table() -> np.ndarray:
    table = np.arange(NUM_CLASSES, dtype=np.int64)
    for base in (1, 9):  # slide 1–8, fall diagonally 9–16: azimuth bin b = class − base
        for b in range(8):
            table[base + b] = base + (-b) % 8
    return table


MIRROR_CLASS = _mirror_table()  # class → the class of the mirrored motion


def mirror_classes(labels: np.ndarray) -> np.ndarray:
    """Labels of the left↔right mirrored scene (see the module docstring)."""
    return MIRROR_CLASS[np.asarray(labels, dtype=np.int64)]


@dataclass
class Batch:
    """Model inputs and labels as tensors on one device."""

    image: torch.Tensor  # (N, H, W, 3) uint8
    mask: torch.Tensor  # (N, H, W) bool
    point: torch.Tensor  # (N, 2) float32
    force: torch.Tensor  # (N, FORCE_FEATURES) float32
    labels: torch.Tensor  # (N, STEPS) int64

    def __len__(self) -> int:
        return len(self.labels)


def augment(
    image: np.ndarray,
    mask: np.ndarray,
    point: np.ndarray,
    angle: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    mirror: bool = True,
    jitter: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mirror (probability ½ per sample) and colour-jitter a batch; returns new arrays
    (image, mask, point, angle, labels). ``jitter`` is the largest relative change of brightness,
    contrast and saturation (0: none)."""
    image, mask = image.copy(), mask.copy()
    point = point.astype(np.float32, copy=True)
    angle = angle.astype(np.float32, copy=True)
    labels = labels.copy()
    n = len(labels)
    if mirror:
        flip = rng.random(n) < 0.5
        image[flip] = image[flip, :, ::-1]
        mask[flip] = mask[flip, :, ::-1]
        point[flip, 0] = 1.0 - point[flip, 0]
        angle[flip] = (-angle[flip]) % 360.0
        labels[flip] = mirror_classes(labels[flip])
    if jitter > 0:
        x = image.astype(np.float32)
        b = 1 + rng.uniform(-jitter, jitter, (n, 1, 1, 1)).astype(np.float32)
        c = 1 + rng.uniform(-jitter, jitter, (n, 1, 1, 1)).astype(np.float32)
        s = 1 + rng.uniform(-jitter, jitter, (n, 1, 1, 1)).astype(np.float32)
        x = x * b
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * c + mean
        grey = x.mean(axis=3, keepdims=True)
        x = (x - grey) * s + grey
        image = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return image, mask, point, angle, labels


def make_batch(
    data: ForceArrays,
    idx: np.ndarray,
    device: torch.device,
    rng: np.random.Generator | None = None,
    mirror: bool = True,
    jitter: float = 0.2,
) -> Batch:
    """The samples ``idx`` of ``data`` as a :class:`Batch`; augmented when ``rng`` is given."""
    image, mask, point, angle, labels = (
        data.image[idx], data.mask[idx], data.point[idx], data.angle[idx], data.labels[idx],
    )  # fmt: skip
    if rng is not None:
        image, mask, point, angle, labels = augment(image, mask, point, angle, labels, rng, mirror, jitter)
    force = force_encoding(point, angle, data.magnitude[idx])

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return Batch(
        image=t(image),
        mask=t(mask.astype(bool)),
        point=t(np.asarray(point, dtype=np.float32)),
        force=t(force),
        labels=t(np.asarray(labels, dtype=np.int64)),
    )
