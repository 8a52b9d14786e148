"""``thorgym train forces``: train the force-prediction model on a ``thorgym data forces`` folder.

Supervised training on the train split, model selection on the val split's sequence accuracy
(the paper's metric), the final checkpoint being the selected model:

* loss: frequency-weighted cross-entropy over the 6 steps (``thorgym.tasks.forces.class_weights``
  of the training labels — of the labels *and their mirror images* when mirroring is on, since
  that is the distribution the model is trained on), raised to ``--class-weight-power``
  (:func:`loss_weights`); all samples count, all-stop ones included (only the metric leaves them
  out). The default power is 0 (plain cross-entropy), not the paper's 1: in generated data stop
  is ~60 % of all steps, and inverse-frequency weights make stop so cheap that the model rarely
  predicts it, while nearly every moving sequence ends in stops. Sanity runs (cnn_small, batch
  32, val-selected; whole-sequence accuracy in % on held-out val / test scenes):

  - 480 train samples (16 scenes), 600 steps, seeds 0 and 1: power 1 → 0.6 / 1.9 and 0 / 0;
    power 0.5 → 8.4 / 8.1 and 12.4 / 10.6; power 0 → 17.4 / 10.6 and 15.2 / 10.0;
  - 1,920 train samples (48 scenes), 1,500 steps: power 0.5 → 13.2 / 10.7; power 0 → 17.0 / 14.4
    (there: most-frequent 4.4 / 4.6, nearest neighbour 12.6 / 13.5, random 0 / 0);

* AdamW, cosine learning-rate decay to 5 % over the run, gradient norm clipped at 5;
* augmentation: mirror and colour jitter, both label-exact (:mod:`.data`).

Reproducible and resumable: the batch of step s is the s-th slice of epoch e's permutation
(``default_rng([seed, e])``), its augmentation draws from ``default_rng([seed, 1, s])`` and
dropout from ``torch.manual_seed`` of (seed, s); the learning rate is a function of s. A run
killed at any point and resumed with ``--resume`` from its last checkpoint therefore continues
exactly as the uninterrupted run would have (tested, on CPU).

Run directory (``thorgym.rundir``)::

    OUT/checkpoints/ckpt_<step>.pt   training state (model, optimiser, log), every --checkpoint-every
    OUT/best.pt                      the best model so far by val sequence accuracy
    OUT/final.pt                     the selected model (the best; the last when there is no val split)
    OUT/args.json, OUT/tb/, OUT/learning_curve.png, OUT/train_summary.json

TensorBoard scalars (fixed names): ``train/loss``, ``train/step_accuracy``, ``train/lr``,
``val/loss``, ``val/sequence_accuracy``, ``val/per_step_accuracy``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from thorgym.datasets.forces import ForceArrays, load_split
from thorgym.rundir import RunDir, exit_terminated, stop_on_sigterm, termination_requested
from thorgym.tasks.forces import STEPS, class_weights, score

from .data import make_batch, mirror_classes
from .model import ForcesModel, ForcesModelConfig, weighted_sequence_loss

if TYPE_CHECKING:
    from thorgym.agents.train_args import TrainOptions

__all__ = [
    "CHECKPOINT_FORMAT",
    "ForcesTrainArgs",
    "load_checkpoint",
    "load_model",
    "loss_weights",
    "predict",
    "train_forces",
]

CHECKPOINT_FORMAT = "thorgym-forces-v1"
SCALARS = {  # TensorBoard tag -> key of the run's log rows
    "train/loss": "train_loss",
    "train/step_accuracy": "train_step_accuracy",
    "train/lr": "lr",
    "val/loss": "val_loss",
    "val/sequence_accuracy": "val_sequence_accuracy",
    "val/per_step_accuracy": "val_per_step_accuracy",
}


@dataclass
class ForcesTrainArgs:
    """Arguments of ``thorgym train forces`` (CleanRL style: one flat dataclass)."""

    data_root: Path = Path("data/forces")  # a `thorgym data forces --out` folder (train/ and val/)
    out: Path = Path("runs/forces")
    backbone: str = "cnn_small"  # any registry backbone; cnn_small is the CPU default
    steps: int = 20_000  # gradient updates
    epochs: int = 0  # > 0: train this many passes over the train split instead of --steps
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    size: int = 64  # model input side; images of another size are resized
    hidden: int = 256  # GRU hidden size
    point_map: bool = True  # the force point as an extra image channel (see model.py)
    mirror: bool = True  # left-right mirror augmentation (labels and force mirrored too)
    jitter: float = 0.2  # colour jitter strength (0: none)
    class_weight_power: float = 0.0  # loss weights = class_weights ** power: 1 the paper's, 0 plain CE
    eval_every: int = 500  # steps between val evaluations (model selection)
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3  # newest ckpt_* kept (0: keep all)
    resume: bool = False
    device: str = "auto"
    threads: int = 1
    eval_batch_size: int = 256
    progress: bool = True

    def validate(self) -> None:
        for k in ("steps", "batch_size", "eval_every", "checkpoint_every", "size", "hidden", "threads"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"--{k.replace('_', '-')} must be positive, got {getattr(self, k)}")
        if self.epochs < 0 or self.keep_checkpoints < 0:
            raise ValueError("--epochs and --keep-checkpoints must be >= 0")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.class_weight_power < 0:
            raise ValueError(f"--class-weight-power must be >= 0, got {self.class_weight_power}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"--jitter must be in [0, 1), got {self.jitter}")
        if self.size < 64:
            raise ValueError(f"--size must be at least 64 pixels, got {self.size}")

    @classmethod
    def from_options(cls, o: TrainOptions, data_root: str | Path | None = None) -> ForcesTrainArgs:
        """The arguments of `thorgym train forces` from the CLI's flags (unset ones: these
        defaults). The dataset folder is ``--data`` (``data_root`` overrides it);
        ``--checkpoint-every`` counts gradient steps here and is taken only when given (its CLI
        default is sized for environment steps)."""
        data_root = data_root if data_root is not None else o.data
        if data_root is None:
            hint = "a dataset folder made by `thorgym data forces --out DIR`"
            raise ValueError(f"forces training needs --data DIR, {hint}")
        flags = ("backbone", "steps", "epochs", "size", "hidden", "lr", "device", "class_weight_power")
        explicit = o.given(*flags, "batch_size")
        default_every = next(f.default for f in fields(type(o)) if f.name == "checkpoint_every")
        if o.checkpoint_every != default_every:
            explicit["checkpoint_every"] = o.checkpoint_every
        args = cls(
            data_root=Path(data_root), out=Path(o.out), seed=o.seed, resume=o.resume, threads=o.threads,
            progress=o.progress, **explicit,
        )  # fmt: skip
        args.validate()
        return args

    def model_config(self) -> ForcesModelConfig:
        return ForcesModelConfig(
            backbone=self.backbone, size=self.size, hidden=self.hidden, point_map=self.point_map
        )

    def as_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


# -- checkpoints ---------------------------------------------------------------------------------------
def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A forces checkpoint's contents (``torch.load(weights_only=True)``); a ValueError saying what
    is wrong for anything that is not one (unreadable, truncated, another agent's)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"forces checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every unreadable payload is the same user error
        raise ValueError(
            f"{path} is not a readable thorgym forces checkpoint ({type(e).__name__}: {e}); "
            "train one with `thorgym train forces --out DIR`"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(
            f"{path} is not a thorgym forces checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})"
        )
    for key in ("config", "model"):
        if key not in ckpt:
            raise ValueError(f"{path}: forces checkpoint without {key!r}")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ForcesModel, dict[str, Any]]:
    """The model of a forces checkpoint (in eval mode) and the checkpoint's contents."""
    ckpt = load_checkpoint(path)
    try:
        model = ForcesModel(ForcesModelConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"{path}: the forces checkpoint does not match the model ({e})") from None
    return model.to(device).eval(), ckpt


def _payload(
    model: ForcesModel, opt: torch.optim.Optimizer | None, step: int, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": model.cfg.to_dict(),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": None if opt is None else opt.state_dict(),
        "step": int(step),
        **extra,
    }


def _save(run: RunDir, path: Path, payload: dict[str, Any]) -> Path:
    return run.write_checkpoint(path, lambda f: torch.save(payload, f))


# -- evaluation ----------------------------------------------------------------------------------------
@torch.no_grad()
def predict(
    model: ForcesModel,
    data: ForceArrays,
    device: torch.device,
    batch_size: int = 256,
    weights: torch.Tensor | None = None,
) -> tuple[np.ndarray, float | None]:
    """(K, STEPS) argmax predictions of ``model`` on ``data`` and, given class ``weights``, the
    weighted loss over the whole set (else None). Runs in eval mode; restores the mode after."""
    was_training = model.training
    model.eval()
    preds, loss_sum, w_sum = [], 0.0, 0.0
    for a in range(0, len(data), batch_size):
        b = make_batch(data, np.arange(a, min(a + batch_size, len(data))), device)
        logits = model(b.image, b.mask, b.point, b.force)
        preds.append(logits.argmax(-1).cpu().numpy())
        if weights is not None:
            w = weights[b.labels.reshape(-1)]
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.labels.reshape(-1),
                                                   reduction="none")  # fmt: skip
            loss_sum += float((w * ce).sum())
            w_sum += float(w.sum())
    model.train(was_training)
    out = np.concatenate(preds) if preds else np.zeros((0, STEPS), dtype=np.int64)
    return out.astype(np.int64), (loss_sum / w_sum if weights is not None and w_sum > 0 else None)


def loss_weights(labels: np.ndarray, power: float = 1.0) -> np.ndarray:
    """(NUM_CLASSES,) loss weights: ``class_weights(labels) ** power`` renormalised to mean 1 over
    the classes present. power 1 is the paper's inverse-frequency weighting; below 1 it is softened
    (0.5: inverse square root), 0 is plain cross-entropy; absent classes keep weight 0."""
    w = class_weights(labels).astype(np.float64)
    present = w > 0
    w[present] = w[present] ** power
    if present.any():
        w[present] /= w[present].mean()
    return w.astype(np.float32)


def _selection_score(metrics: dict[str, Any]) -> float:
    """Val sequence accuracy; per-step accuracy when the val split has no moving sample."""
    s = metrics.get("sequence_accuracy")
    return float(s) if s is not None else float(metrics.get("per_step_accuracy") or 0.0)


# -- the run -------------------------------------------------------------------------------------------
def _batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray:
    per_epoch = max(1, n // batch)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return np.sort(perm[k * batch : (k + 1) * batch]) if n >= batch else perm


def _lr(args: ForcesTrainArgs, step: int, total: int) -> float:
    return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(1, total))))


def total_steps(args: ForcesTrainArgs, train_samples: int) -> int:
    """--steps, or --epochs passes of (train samples // batch size) steps."""
    if args.epochs > 0:
        return args.epochs * max(1, train_samples // args.batch_size)
    return args.steps


@stop_on_sigterm()  # SIGTERM: checkpoint after the step in progress, then exit (resume continues)
def train_forces(args: ForcesTrainArgs) -> Path:
    """Train the force-prediction model; returns the final checkpoint (``OUT/final.pt``, the
    model selected on the val split)."""
    from thorgym.rundir import resolve_device, set_threads

    args.validate()
    set_threads(args.threads)
    device = resolve_device(args.device)
    train = load_split(args.data_root, "train")
    try:
        val: ForceArrays | None = load_split(args.data_root, "val")
    except FileNotFoundError:
        val = None
        print(f"no val split under {args.data_root}: the final checkpoint is the last step's model")
    total = total_steps(args, len(train))
    run = RunDir(Path(args.out), ".pt")
    run.root.mkdir(parents=True, exist_ok=True)
    seen = np.concatenate([train.labels, mirror_classes(train.labels)]) if args.mirror else train.labels
    weights = torch.from_numpy(loss_weights(seen, args.class_weight_power)).to(device)

    torch.manual_seed(args.seed)
    model = ForcesModel(args.model_config()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step = 0
    log: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None  # {"step", "score", "metrics"}
    best_file = run.root / "best.pt"
    start = run.resume_from(args.resume)
    if start is not None:
        ckpt = load_checkpoint(start)
        if ckpt["config"] != model.cfg.to_dict():
            raise ValueError(
                f"--resume: {start} was trained with {ckpt['config']}, these arguments give "
                f"{model.cfg.to_dict()}; use the run's arguments ({run.args_file})"
            )
        model.load_state_dict(ckpt["model"])
        if ckpt.get("optimizer") is None:
            raise ValueError(f"--resume: {start} holds no optimiser state (not a training checkpoint)")
        opt.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        log = json.loads(ckpt.get("log", "[]"))
        if best_file.is_file():
            b = load_checkpoint(best_file)
            best = {"step": int(b["step"]), "score": float(b["score"]), "metrics": json.loads(b["metrics"])}
        print(f"resumed from {start} at step {step}")
    run.write_args(args.as_json())

    def state_extra() -> dict[str, Any]:
        return {"log": json.dumps(log), "args": json.dumps(args.as_json()), "class_weights": weights.cpu()}

    def evaluate_val() -> dict[str, Any]:
        nonlocal best
        assert val is not None
        preds, vloss = predict(model, val, device, args.eval_batch_size, weights)
        m = score(preds, val.labels, val.object_type.tolist())
        row = {"val_loss": vloss, "val_sequence_accuracy": m["sequence_accuracy"],
               "val_per_step_accuracy": m["per_step_accuracy"]}  # fmt: skip
        s = _selection_score(m)
        if best is None or s > best["score"]:
            best = {"step": step, "score": s, "metrics": m}
            extra = {"score": s, "metrics": json.dumps(m), "args": json.dumps(args.as_json())}
            _save(run, best_file, _payload(model, None, step, extra))
        return row

    writer = run.tb_writer(f"start_{step:010d}")
    next_ckpt = run.next_checkpoint(step, args.checkpoint_every)
    from tqdm import tqdm

    bar = tqdm(
        total=total, initial=step, unit="step", disable=not args.progress, desc=f"forces {args.backbone}"
    )
    t0, s0 = time.time(), step
    model.train()
    run_loss, run_acc, run_n = 0.0, 0.0, 0
    while step < total:
        idx = _batch_indices(step, len(train), args.batch_size, args.seed)
        rng = np.random.default_rng([args.seed, 1, step])
        b = make_batch(train, idx, device, rng, args.mirror, args.jitter)
        torch.manual_seed(args.seed * 1_000_003 + step)  # dropout: a function of (seed, step)
        lr = _lr(args, step, total)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(b.image, b.mask, b.point, b.force)
        loss = weighted_sequence_loss(logits, b.labels, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        bar.update(1)
        run_loss += float(loss.detach())
        run_acc += float((logits.argmax(-1) == b.labels).float().mean())
        run_n += 1
        due_eval = step % args.eval_every == 0 or step == total
        if due_eval:
            row: dict[str, Any] = {
                "step": step, "train_loss": run_loss / run_n, "train_step_accuracy": 100 * run_acc / run_n,
                "lr": lr,
            }  # fmt: skip
            run_loss, run_acc, run_n = 0.0, 0.0, 0
            if val is not None:
                row |= evaluate_val()
            log.append(row)
            for name, key in SCALARS.items():
                if row.get(key) is not None:
                    writer.add_scalar(name, row[key], step)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_seq=row.get("val_sequence_accuracy"))
        if step >= next_ckpt or step == total or termination_requested():
            saved = _save(run, run.checkpoint(step), _payload(model, opt, step, state_extra()))
            _prune(run, args.keep_checkpoints)
            if termination_requested():
                bar.close()
                writer.close()
                exit_terminated(saved)
            next_ckpt = run.next_checkpoint(step, args.checkpoint_every)
    bar.close()
    writer.close()
    if best is not None and best_file.is_file():
        selected = load_checkpoint(best_file)
        final_payload = dict(selected)
        final_payload["selected_by"] = "val sequence accuracy"
    else:
        final_payload = _payload(model, None, step, {"args": json.dumps(args.as_json())})
        final_payload["selected_by"] = "last step (no val split)"
    final_payload["log"] = json.dumps(log)
    final = _save(run, run.final, final_payload)
    _write_curve(run, log)
    summary = {
        "steps": step,
        "train_samples": len(train),
        "val_samples": 0 if val is None else len(val),
        "seconds": round(time.time() - t0, 1),
        "steps_per_second": round((step - s0) / max(1e-6, time.time() - t0), 2),
        "selected_step": int(final_payload["step"]),
        "selected_by": final_payload["selected_by"],
        "val": None if best is None else best["metrics"],
    }
    from thorgym.atomic import write_json_atomic

    write_json_atomic(run.root / "train_summary.json", summary, indent=1)
    return final


def _prune(run: RunDir, keep: int) -> None:
    """Delete all but the newest ``keep`` training checkpoints (0: keep all)."""
    if keep <= 0:
        return
    from thorgym.rundir import checkpoint_steps

    ckpts = sorted(run.checkpoints.glob(f"ckpt_*{run.ext}"), key=checkpoint_steps)
    for p in ckpts[:-keep]:
        p.unlink(missing_ok=True)


def _write_curve(run: RunDir, log: list[dict[str, Any]]) -> None:
    """Train loss and val accuracies against steps (from the run's log, resumes included)."""
    if not log:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from thorgym.atomic import atomic_path

        s = [r["step"] for r in log]
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
        ax[0].plot(s, [r["train_loss"] for r in log], label="train")
        if any(r.get("val_loss") is not None for r in log):
            ax[0].plot(s, [r.get("val_loss") for r in log], label="val")
        ax[0].set_title("weighted cross-entropy")
        ax[0].legend()
        ax[1].plot(s, [r["train_step_accuracy"] for r in log], label="train per-step")
        for key, label in (
            ("val_per_step_accuracy", "val per-step"),
            ("val_sequence_accuracy", "val sequence"),
        ):
            if any(r.get(key) is not None for r in log):
                ax[1].plot(s, [r.get(key) for r in log], label=label)
        ax[1].set_title("accuracy (%)")
        ax[1].legend()
        for a in ax:
            a.set_xlabel("steps")
            a.grid(alpha=0.3)
        fig.suptitle(f"thorgym train forces: {run.root}")
        fig.tight_layout()
        with atomic_path(run.curve) as p:
            fig.savefig(p, format="png", dpi=100)
        plt.close(fig)
    except Exception as e:  # a curve is a convenience; never lose a finished run over it
        print(f"learning curve not written: {e}")
