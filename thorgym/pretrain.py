"""`thorgym pretrain`: pretrain an image backbone on simulator frames with free labels.

The backbone learns multi-label object-type presence (which object types are in view; see
:mod:`thorgym.datasets.pretrain_frames` for why that label) on frames of the **train** scenes,
and is scored by macro mean average precision (mAP) on frames of the held-out **val + test**
scenes against two references trained or measured on exactly the same frames:

* ``random_init_probe``: the same backbone at its random initialisation (the weights the
  pretraining started from), frozen, with a linear head trained for the same epochs — what
  random convolutional features give by themselves;
* ``chance``: a constant score per class (the class prior); its AP is the class's held-out
  frequency.

mAP is :func:`thorgym.agents.metrics.mean_average_precision` (ties grouped as scikit-learn).

``pretrained_probe`` (the pretrained backbone frozen + a fresh linear head, trained like the
random-init probe) is reported too, so the two frozen-feature numbers compare like with like.

Outputs in ``OUT``: ``backbone.pt`` (the feature model, ``num_classes=0``, written with
:func:`~thorgym.agents.backbones.save_backbone`, so ``thorgym train objectnav --backbone NAME
--backbone-ckpt OUT`` loads it), ``classifier.pt`` (with the presence head), ``metrics.json``,
the cached frames (``frames_*.npz``) and ``checkpoints/state.pt`` (written atomically after every
epoch; ``--resume`` continues from it and gives the same weights as an uninterrupted run).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from thorgym.agents.metrics import mean_average_precision
from thorgym.device import resolve_device

if TYPE_CHECKING:
    from thorgym.datasets.pretrain_frames import FrameSet

STATE_FORMAT = "thorgym.pretrain_state/1"
# Arguments a resumed run must share with the checkpoint (epochs may grow; device may change).
_RESUME_KEYS = (
    "backbone",
    "size",
    "train_frames",
    "heldout_frames",
    "batch_size",
    "lr",
    "min_pixels",
    "seed",
)


@dataclass
class PretrainArgs:
    """Arguments of `thorgym pretrain` (one flat, typed record)."""

    backbone: str = "cnn_small"
    out: Path = Path("runs/pretrain")
    size: int = 64
    train_frames: int = 20_000
    heldout_frames: int = 4_000
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    min_pixels: int = 8
    seed: int = 0
    device: str = "cpu"
    resume: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raise ValueError naming the flag to fix for any unusable argument."""
        from thorgym.agents.backbones import get_spec
        from thorgym.datasets.pretrain_frames import MAX_SIZE, MIN_SIZE

        get_spec(self.backbone)  # unknown name → ValueError listing the valid ones
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(
                f"--size must be in [{MIN_SIZE}, {MAX_SIZE}] (backbones take H, W >= 64), got {self.size}"
            )
        for flag, v, lo in (
            ("--train-frames", self.train_frames, 1),
            ("--heldout-frames", self.heldout_frames, 1),
            ("--epochs", self.epochs, 1),
            ("--batch-size", self.batch_size, 1),
            ("--min-pixels", self.min_pixels, 1),
        ):
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"{flag} must be an integer >= {lo}, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        return d


# -- training helpers ---------------------------------------------------------------------------
def _epoch_order(seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices and horizontal-flip mask of an epoch (a function of seed and epoch only,
    so a resumed run sees the same batches as an uninterrupted one)."""
    rng = np.random.default_rng([seed, epoch, 7])
    return rng.permutation(n), rng.random(n) < 0.5


def _images(fs_images: np.ndarray, idx: np.ndarray, flip: np.ndarray | None, dev: torch.device):
    x = torch.from_numpy(fs_images[idx]).to(dev).permute(0, 3, 1, 2)  # NHWC viewed as NCHW
    if flip is not None and flip.any():
        f = torch.from_numpy(flip).to(dev)
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def _predict(model: nn.Module, images: np.ndarray, dev: torch.device, batch: int = 512) -> np.ndarray:
    """Outputs (logits or features) of ``model`` in eval mode for all images, as float32 NumPy."""
    was_training = model.training
    model.eval()
    outs = []
    for i in range(0, len(images), batch):
        idx = np.arange(i, min(i + batch, len(images)))
        outs.append(model(_images(images, idx, None, dev)).float().cpu())
    model.train(was_training)
    return torch.cat(outs).numpy()


def _probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    args: PretrainArgs,
    salt: int,
) -> np.ndarray:
    """Train a linear head on frozen features (standardised with the train statistics) with the
    pretraining's optimiser, batch size, epochs and batch order; return held-out logits."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xtr = torch.from_numpy((train_x - mean) / std)
    xte = torch.from_numpy((test_x - mean) / std)
    ytr = torch.from_numpy(train_y.astype(np.float32))
    torch.manual_seed(args.seed * 1000 + salt)
    head = nn.Linear(xtr.shape[1], ytr.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        order, _ = _epoch_order(args.seed, epoch, len(xtr))
        for i in range(0, len(order), args.batch_size):
            b = torch.from_numpy(order[i : i + args.batch_size])
            loss = F.binary_cross_entropy_with_logits(head(xtr[b]), ytr[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return head(xte).numpy()


# -- the command, step by step ------------------------------------------------------------------
def _load_frames(
    args: PretrainArgs, out: Path, dev: torch.device, seconds: dict[str, float]
) -> tuple[FrameSet, FrameSet, dict[str, bool]]:
    """Render or load the train and held-out frames; return (train, heldout, from-cache flags)."""
    from thorgym.datasets.pretrain_frames import load_or_generate

    frames = {}
    cached = {}
    for split, n in (("train", args.train_frames), ("heldout", args.heldout_frames)):
        t0 = time.time()
        frames[split], cached[split] = load_or_generate(
            out,
            split,
            n,
            size=args.size,
            seed=args.seed,
            min_pixels=args.min_pixels,
            device=str(dev),
            progress=args.progress,
        )
        seconds[f"frames_{split}"] = time.time() - t0
    return frames["train"], frames["heldout"], cached


@dataclass
class _Run:
    """What a pretraining run carries from epoch to epoch (and what its checkpoint holds)."""

    model: nn.Module
    init_state: dict[str, torch.Tensor]  # the random initial weights: the random-init reference
    opt: torch.optim.Optimizer
    start_epoch: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0


def _new_run(args: PretrainArgs, num_classes: int, dev: torch.device) -> _Run:
    from thorgym.agents.backbones import build_backbone

    torch.manual_seed(args.seed)
    model = build_backbone(args.backbone, num_classes=num_classes).to(dev)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return _Run(model, init_state, torch.optim.Adam(model.parameters(), lr=args.lr))


def _resume(run: _Run, args: PretrainArgs, out: Path, state_path: Path, dev: torch.device) -> None:
    """Load ``state_path`` into ``run`` (``--resume``), after checking it was made with the same
    arguments; without a checkpoint the run starts from scratch."""
    if not state_path.is_file():
        print(f"--resume: no checkpoint at {state_path}; starting from scratch")
        return
    st = torch.load(state_path, map_location=dev, weights_only=True)
    if st.get("format") != STATE_FORMAT:
        raise ValueError(f"{state_path} is not a thorgym pretraining checkpoint")
    differ = [k for k in _RESUME_KEYS if st["args"].get(k) != getattr(args, k)]
    if differ:
        raise ValueError(
            f"--resume: the checkpoint in {out} was made with other {differ} "
            f"({ {k: st['args'].get(k) for k in differ} }); pass the same values or "
            "another --out"
        )
    run.model.load_state_dict(st["model"])
    run.init_state = st["init"]
    run.opt.load_state_dict(st["optimizer"])
    run.start_epoch, run.history = int(st["epoch"]), list(st["history"])
    run.train_seconds = float(st["train_seconds"])
    print(f"resuming from {state_path} after epoch {run.start_epoch}")


def _train_epoch(
    run: _Run, tr: FrameSet, ytr: torch.Tensor, epoch: int, args: PretrainArgs, dev: torch.device
) -> float:
    """One epoch over the train frames; return the mean training loss."""
    run.model.train()
    order, flip = _epoch_order(args.seed, epoch, len(tr))
    batches = range(0, len(order), args.batch_size)
    if args.progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
    total, count = 0.0, 0
    for i in batches:
        idx = order[i : i + args.batch_size]
        x = _images(tr.images, idx, flip[i : i + args.batch_size], dev)
        loss = F.binary_cross_entropy_with_logits(run.model(x), ytr[idx].to(dev))
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total / count


def _save_state(run: _Run, args: PretrainArgs, epoch: int, state_path: Path) -> None:
    from thorgym.agents.backbones.checkpoint import save_torch_atomic

    state = {
        "format": STATE_FORMAT,
        "args": args.to_json(),
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "init": run.init_state,
        "optimizer": run.opt.state_dict(),
        "history": run.history,
        "train_seconds": run.train_seconds,
    }
    save_torch_atomic(state, state_path)


def _train(
    run: _Run, tr: FrameSet, ho: FrameSet, args: PretrainArgs, state_path: Path, dev: torch.device
) -> np.ndarray | None:
    """Train the remaining epochs, checkpointing after each; return the last epoch's held-out
    logits (``None`` when a resumed run had no epoch left)."""
    ytr = torch.from_numpy(tr.labels.astype(np.float32))
    heldout_logits = None
    for epoch in range(run.start_epoch, args.epochs):
        t0 = time.time()
        loss = _train_epoch(run, tr, ytr, epoch, args, dev)
        heldout_logits = _predict(run.model, ho.images, dev)
        held_map, _ = mean_average_precision(ho.labels, heldout_logits)
        run.train_seconds += time.time() - t0
        run.history.append({"epoch": epoch + 1, "train_loss": loss, "heldout_map": held_map})
        print(f"epoch {epoch + 1}: train loss {loss:.4f}, held-out mAP {held_map:.4f}")
        _save_state(run, args, epoch + 1, state_path)
    return heldout_logits


def _feature_model(args: PretrainArgs, state: dict[str, torch.Tensor], dev: torch.device) -> nn.Module:
    """The backbone without its head (``num_classes=0``) holding the feature weights of ``state``."""
    from thorgym.agents.backbones import build_backbone

    m = build_backbone(args.backbone, num_classes=0)
    m.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
    return m.to(dev)


def _reference_logits(
    pre_feat: nn.Module,
    rand_feat: nn.Module,
    tr: FrameSet,
    ho: FrameSet,
    args: PretrainArgs,
    dev: torch.device,
) -> dict[str, np.ndarray]:
    """Held-out scores of the two linear probes (random-init and pretrained features) and of
    chance (the train class prior)."""
    logits = {}
    for salt, (name, m) in enumerate((("random_init_probe", rand_feat), ("pretrained_probe", pre_feat))):
        logits[name] = _probe(_predict(m, tr.images, dev), tr.labels, _predict(m, ho.images, dev), args, salt)
    prior = np.broadcast_to(tr.labels.mean(0, keepdims=True), ho.labels.shape)
    logits["chance"] = np.array(prior)
    return logits


def _score(logits: dict[str, np.ndarray], ho: FrameSet) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """mAP (all classes and the SAVN targets) and per-class AP of every scorer; the mask of the
    classes present in the held-out frames."""
    from thorgym.datasets.pretrain_frames import LABEL_TYPES, NUM_TARGET_TYPES

    results: dict[str, Any] = {}
    per_class: dict[str, Any] = {}
    present = ho.labels.sum(0) > 0
    for name, scores in logits.items():
        m_all, aps = mean_average_precision(ho.labels, scores)
        m_tgt, _ = mean_average_precision(ho.labels[:, :NUM_TARGET_TYPES], scores[:, :NUM_TARGET_TYPES])
        results[name] = {"map": m_all, "map_savn_targets": m_tgt}
        per_class[name] = {
            c: round(float(a), 4) for c, a, p in zip(LABEL_TYPES, aps, present, strict=True) if p
        }
    return results, per_class, present


def pretrain(args: PretrainArgs) -> dict[str, Any]:
    """Render (or load) the frames, pretrain, evaluate, write ``OUT``; return the metrics dict."""
    from thorgym.agents.backbones import save_backbone
    from thorgym.atomic import write_json_atomic
    from thorgym.datasets.pretrain_frames import LABEL_TYPES, NUM_TARGET_TYPES

    args.validate()
    dev = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    seconds: dict[str, float] = {}
    tr, ho, cached = _load_frames(args, out, dev, seconds)

    run = _new_run(args, len(LABEL_TYPES), dev)
    state_path = out / "checkpoints" / "state.pt"
    if args.resume:
        _resume(run, args, out, state_path, dev)
    heldout_logits = _train(run, tr, ho, args, state_path, dev)
    seconds["pretrain"] = run.train_seconds

    pre_feat = _feature_model(args, run.model.state_dict(), dev)
    rand_feat = _feature_model(args, run.init_state, dev)
    t0 = time.time()
    if heldout_logits is None:  # resumed after the last epoch
        heldout_logits = _predict(run.model, ho.images, dev)
    logits = {"pretrained": heldout_logits, **_reference_logits(pre_feat, rand_feat, tr, ho, args, dev)}
    seconds["probes"] = time.time() - t0
    results, per_class, present = _score(logits, ho)

    save_backbone(pre_feat.cpu(), out / "backbone.pt")
    save_backbone(run.model.cpu(), out / "classifier.pt")
    seconds["total"] = time.time() - t_start
    metrics = {
        "backbone": args.backbone,
        "map_pretrained": results["pretrained"]["map"],
        "map_random_init_probe": results["random_init_probe"]["map"],
        "map_pretrained_probe": results["pretrained_probe"]["map"],
        "map_chance": results["chance"]["map"],
        "results": results,
        "per_class_ap": per_class,
        "classes": list(LABEL_TYPES),
        "classes_evaluated": int(present.sum()),
        "savn_target_classes": list(LABEL_TYPES[:NUM_TARGET_TYPES]),
        "train_frames": len(tr),
        "heldout_frames": len(ho),
        "train_scenes": list(tr.scenes),
        "heldout_scenes": list(ho.scenes),
        "label_frequency_train": float(tr.labels.mean()),
        "frames_from_cache": cached,
        "history": run.history,
        "seconds": seconds,
        "args": args.to_json(),
        "backbone_ckpt": str(out / "backbone.pt"),
    }
    write_json_atomic(out / "metrics.json", metrics, indent=1)
    return metrics


__all__ = ["PretrainArgs", "pretrain"]
