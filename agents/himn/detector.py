"""HIMN's learned perception: a small fully-convolutional per-pixel classifier over IQA's 21 map
classes, trained on simulator frames with instance segmentation as labels.

* :func:`render_frames` — frames from random reachable grid poses (IQA's yaw/horizon sets) of a
  :class:`~thorgym.sim.BatchedSimulator`, labelled with :func:`.semantic_map.classes_from_instance`;
* :class:`Detector` — the network (encoder at 1/2, 1/4, 1/8 with a dilated context block, a
  decoder with skips); :meth:`Detector.predict` maps uint8 RGB (B, H, W, 3) to classes (B, H, W);
* :func:`train_detector` / :func:`load_detector` — train with class-weighted cross-entropy and
  write the checkpoint atomically, read it back;
* :func:`evaluate_detector` — pixel accuracy and per-class IoU.

Default split (IQUAD V1): train on kitchens FloorPlan6–30, hold out FloorPlan1–5.
``python -m thorgym.agents.himn.detector OUT.pt`` trains with the defaults and prints the held-out
figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from thorgym.atomic import atomic_writer
from thorgym.tasks.iqa_vocab import MAP_CLASSES, NUM_CLASSES

from .semantic_map import class_table, classes_from_instance

CKPT_FORMAT = "thorgym.himn.detector/1"
TRAIN_SCENES: tuple[str, ...] = tuple(f"FloorPlan{i}" for i in range(6, 31))
HELDOUT_SCENES: tuple[str, ...] = tuple(f"FloorPlan{i}" for i in range(1, 6))
IQA_FOV = 60.0
YAWS = (0.0, 90.0, 180.0, 270.0)
HORIZONS = (-30.0, 0.0, 30.0, 60.0)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

__all__ = [
    "HELDOUT_SCENES",
    "TRAIN_SCENES",
    "Detector",
    "evaluate_detector",
    "load_detector",
    "render_frames",
    "train_detector",
]


def render_frames(
    scenes: Sequence[str], frames: int, seed: int, size: int = 96, fov: float = IQA_FOV
) -> tuple[torch.Tensor, torch.Tensor]:
    """``frames`` views (rgb (F, size, size, 3) uint8, classes (F, size, size) long) from random
    reachable grid poses, yaw in {0, 90, 180, 270}, horizon in {-30, 0, 30, 60}.

    One world per scene, rendered together; rounds repeat until ``frames`` views are taken
    (scenes in turn). Deterministic for a seed.
    """
    from thorgym.sim import BatchedSimulator

    scenes = list(scenes)
    sim = BatchedSimulator(
        scenes, width=size, height=size, field_of_view=fov, render_depth=False, device="cpu"
    )
    table = class_table([[o.object_type for o in w.objects] for w in sim.worlds])
    rng = np.random.default_rng(seed)
    n = len(scenes)
    rgbs, labels = [], []
    taken = 0
    ids = list(range(n))
    while taken < frames:
        xs, zs = [], []
        for i in ids:
            reach = sim.worlds[i].spec.reachable
            x, z = reach[int(rng.integers(len(reach)))]
            xs.append(x)
            zs.append(z)
        yaw = [YAWS[int(k)] for k in rng.integers(len(YAWS), size=n)]
        hor = [HORIZONS[int(k)] for k in rng.integers(len(HORIZONS), size=n)]
        sim.teleport(ids, xs, zs, yaw, hor, check=False)
        st = sim.observe()
        rgbs.append(st.rgb[:, 0])
        labels.append(classes_from_instance(st.instance[:, 0], table))
        taken += n
    return torch.cat(rgbs)[:frames], torch.cat(labels)[:frames]


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Detector(nn.Module):
    """Per-pixel classifier: logits (B, num_classes, H, W) from normalised images (B, 3, H, W).

    ``size`` is the square frame size it was trained on; :meth:`predict` resizes to it.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 32, size: int = 96) -> None:
        super().__init__()
        self.num_classes, self.width, self.size = num_classes, width, size
        w = width
        self.enc1 = nn.Sequential(_block(3, w // 2, 2), _block(w // 2, w // 2))  # 1/2
        self.enc2 = nn.Sequential(_block(w // 2, w, 2), _block(w, w))  # 1/4
        self.enc3 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w, dilation=2))  # 1/8
        self.ctx = _block(2 * w, 2 * w, dilation=4)
        self.dec2 = _block(2 * w + w, w)
        self.dec1 = _block(w + w // 2, w // 2)
        self.head = nn.Conv2d(w // 2, num_classes, 1)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) → normalised float (B, 3, H, W) on the model's device."""
        x = rgb.to(self.mean.device).permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.ctx(self.enc3(e2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear"), e1], 1))
        return F.interpolate(self.head(d1), size=(h, w), mode="bilinear")

    @torch.no_grad()
    def predict(self, rgb: torch.Tensor) -> torch.Tensor:
        """Map classes (B, H, W) long from uint8 RGB (B, H, W, 3), at the input's resolution
        (frames are resized to the training size and the logits back)."""
        was = self.training
        self.eval()
        x = self.normalize(rgb)
        h, w = x.shape[-2:]
        if (h, w) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        logits = self(x)
        if (h, w) != (self.size, self.size):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear")
        self.train(was)
        return logits.argmax(1)


def class_weights(labels: torch.Tensor, num_classes: int = NUM_CLASSES, cap: float = 25.0) -> torch.Tensor:
    """Median-frequency balancing, clipped to [1/cap, cap]; absent classes get weight ``cap``."""
    counts = torch.bincount(labels.reshape(-1), minlength=num_classes).double()
    freq = counts / counts.sum()
    med = freq[freq > 0].median()
    w = torch.where(freq > 0, med / freq.clamp(min=1e-12), torch.full_like(freq, cap))
    return w.clamp(1.0 / cap, cap).float()


def evaluate_detector(
    model: Detector, rgb: torch.Tensor, labels: torch.Tensor, batch: int = 64
) -> dict[str, object]:
    """Pixel accuracy, per-class IoU (classes present in labels or predictions) and their mean."""
    k = model.num_classes
    conf = torch.zeros(k, k, dtype=torch.long)
    for s in range(0, rgb.shape[0], batch):
        pred = model.predict(rgb[s : s + batch]).cpu()
        lab = labels[s : s + batch].cpu()
        conf += torch.bincount(lab.reshape(-1) * k + pred.reshape(-1), minlength=k * k).view(k, k)
    tp = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - tp
    iou = {MAP_CLASSES[c]: float(tp[c] / union[c]) for c in range(k) if union[c] > 0}
    present = [c for c in range(k) if conf[c].sum() > 0]
    return {
        "pixel_accuracy": float(tp.sum() / conf.sum()),
        "mean_iou": float(np.mean([iou[MAP_CLASSES[c]] for c in present])),
        "iou": iou,
        "pixels": {MAP_CLASSES[c]: int(conf[c].sum()) for c in present},
    }


def train_detector(
    out_path: str | os.PathLike,
    scenes: Sequence[str] = TRAIN_SCENES,
    frames: int = 2000,
    steps: int = 1500,
    seed: int = 0,
    size: int = 96,
    *,
    batch: int = 16,
    lr: float = 3e-3,
    width: int = 32,
    eval_scenes: Sequence[str] | None = None,
    eval_frames: int = 200,
    log_every: int = 0,
) -> dict[str, object]:
    """Train a :class:`Detector` on ``frames`` rendered views of ``scenes`` for ``steps`` Adam
    steps (batches of ``batch``, flips as augmentation, class-weighted cross-entropy, cosine
    learning rate), write the checkpoint to ``out_path`` atomically and return a summary
    (``losses`` per step, seconds, and ``heldout`` figures when ``eval_scenes`` is given).

    Deterministic for a seed on the same device and thread count (CPU).
    """
    t0 = time.perf_counter()
    rgb, labels = render_frames(scenes, frames, seed, size)
    t_data = time.perf_counter() - t0
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Detector(NUM_CLASSES, width, size)
    weights = class_weights(labels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps), pct_start=0.1)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, rgb.shape[0], (batch,), generator=gen)
        x = model.normalize(rgb[idx])
        y = labels[idx]
        flip = torch.rand(batch, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        loss = F.cross_entropy(model(x), y, weight=weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    summary: dict[str, object] = {
        "scenes": list(scenes),
        "frames": frames,
        "steps": steps,
        "seed": seed,
        "size": size,
        "batch": batch,
        "lr": lr,
        "width": width,
        "data_seconds": t_data,
        "train_seconds": time.perf_counter() - t0 - t_data,
        "final_loss": float(np.mean(losses[-20:])) if losses else float("nan"),
    }
    if eval_scenes:
        ev_rgb, ev_lab = render_frames(eval_scenes, eval_frames, seed + 1_000_003, size)
        summary["heldout"] = {
            "scenes": list(eval_scenes),
            "frames": eval_frames,
            **evaluate_detector(model, ev_rgb, ev_lab),
        }
    payload = {
        "format": CKPT_FORMAT,
        "config": {"num_classes": NUM_CLASSES, "width": width, "size": size},
        "classes": list(MAP_CLASSES),
        "state_dict": model.state_dict(),
        "summary": summary,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_writer(out_path) as f:
        f.write(buf.getvalue())
    summary["losses"] = losses
    return summary


def load_detector(path: str | os.PathLike, device: str | torch.device = "cpu") -> Detector:
    """The :class:`Detector` written by :func:`train_detector`, in eval mode on ``device``."""
    from thorgym.rundir import checkpoint_contents, load_torch_checkpoint

    hint = "train one with `python -m thorgym.agents.himn.detector OUT`"
    payload = load_torch_checkpoint(path, CKPT_FORMAT, "HIMN detector", hint)
    with checkpoint_contents(path, "HIMN detector"):
        if tuple(payload["classes"]) != MAP_CLASSES:
            raise ValueError(f"{path}: trained on other classes than IQA's MAP_CLASSES")
        model = Detector(**payload["config"])
        model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def main(argv: Sequence[str] | None = None) -> None:
    """Train with the defaults and print the held-out (FloorPlan1–5) figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--eval-frames", type=int, default=200)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    s = train_detector(
        a.out, TRAIN_SCENES, a.frames, a.steps, a.seed, a.size,
        eval_scenes=HELDOUT_SCENES, eval_frames=a.eval_frames, log_every=50,
    )  # fmt: skip
    s.pop("losses")
    print(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
