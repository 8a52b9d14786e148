"""``thorgym eval forces``: score a trained model or a baseline on a split and write the results.

Agents:

* ``model`` — a checkpoint of ``thorgym train forces`` (a ``.pt`` file or its run directory);
* ``most-frequent`` — the most frequent moving (not all-stop) label sequence of the *train* split,
  for every sample (the paper's prior baseline);
* ``nearest-neighbour`` — the labels of the nearest *train* sample. Candidates are the train
  samples of the same object type (all train samples when the type never occurs there); the
  distance is Euclidean over the force encoding (5 features: point x, y, direction sin, cos, log
  magnitude, each about unit range) and the object mask average-pooled to 8×8 and scaled by ⅛, so
  that the 64 mask cells together weigh about as much as one force feature: the force decides,
  the object's place and shape in the image breaks near-ties. Ties go to the first train sample;
* ``random`` — classes drawn uniformly per step (``seed``): chance.

Outputs in ``out_dir``: ``metrics.json`` (``thorgym.tasks.forces.score``: sequence accuracy over
moving samples, per-step accuracy, both per object type; plus agent, split, checkpoint, seed,
samples), ``predictions.jsonl`` (per sample: scene, object_id, object_type, labels, prediction,
correct) and with ``video=K`` ``contact_sheet.png`` and ``forces.mp4`` of the first K samples
(see :mod:`.video`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thorgym.atomic import atomic_writer, write_json_atomic
from thorgym.datasets.forces import ForceArrays, load_split
from thorgym.tasks.forces import (
    NUM_CLASSES,
    STEPS,
    force_encoding,
    is_all_stop,
    most_frequent_sequence,
    score,
)

__all__ = [
    "AGENTS",
    "MASK_GRID",
    "ForcesEvalArgs",
    "evaluate_forces",
    "most_frequent_predictions",
    "nearest_neighbour_predictions",
    "random_predictions",
    "run_forces_eval",
]

AGENTS = ("model", "most-frequent", "nearest-neighbour", "random")
MASK_GRID = 8  # the nearest-neighbour baseline's mask feature: the mask pooled to 8×8
MASK_WEIGHT = 1.0 / MASK_GRID


def most_frequent_predictions(train: ForceArrays, k: int) -> np.ndarray:
    """(k, STEPS): the train split's most frequent moving sequence, k times."""
    return np.tile(most_frequent_sequence(train.labels), (k, 1))


def random_predictions(k: int, seed: int) -> np.ndarray:
    """(k, STEPS) classes drawn uniformly."""
    return np.random.default_rng(seed).integers(0, NUM_CLASSES, size=(k, STEPS), dtype=np.int64)


def _nn_features(data: ForceArrays) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    force = force_encoding(data.point, data.angle, data.magnitude)
    m = torch.from_numpy(np.ascontiguousarray(data.mask)).float()[:, None]
    pooled = F.adaptive_avg_pool2d(m, MASK_GRID).reshape(len(data), -1).numpy()
    return np.concatenate([force, MASK_WEIGHT * pooled], 1).astype(np.float32)


def nearest_neighbour_predictions(train: ForceArrays, data: ForceArrays, chunk: int = 512) -> np.ndarray:
    """(K, STEPS): each sample gets the labels of its nearest train sample (module docstring)."""
    if len(train) == 0:
        raise ValueError("the nearest-neighbour baseline needs train samples")
    ft, fq = _nn_features(train), _nn_features(data)
    types_t = np.asarray(train.object_type).astype(str)
    types_q = np.asarray(data.object_type).astype(str)
    out = np.empty((len(data), STEPS), dtype=np.int64)
    norm_t = (ft.astype(np.float64) ** 2).sum(1)
    for t in np.unique(types_q):
        q_idx = np.nonzero(types_q == t)[0]
        cand = np.nonzero(types_t == t)[0]
        if len(cand) == 0:
            cand = np.arange(len(train))
        for a in range(0, len(q_idx), chunk):
            qi = q_idx[a : a + chunk]
            q = fq[qi].astype(np.float64)
            d2 = norm_t[cand][None, :] - 2 * q @ ft[cand].astype(np.float64).T + (q**2).sum(1)[:, None]
            out[qi] = train.labels[cand[np.argmin(d2, axis=1)]]  # argmin: first of equals
    return out


def _model_predictions(
    checkpoint: str | Path, data: ForceArrays, device: str, batch_size: int
) -> tuple[np.ndarray, Path, dict[str, Any]]:
    from thorgym.rundir import resolve_checkpoint, resolve_device

    from .trainer import load_model, predict

    path = resolve_checkpoint(checkpoint, (".pt",))
    dev = resolve_device(device)
    model, ckpt = load_model(path, dev)
    preds, _ = predict(model, data, dev, batch_size)
    return preds, path, ckpt


@dataclass(frozen=True)
class ForcesEvalArgs:
    """Arguments of `thorgym eval forces` (those of :func:`evaluate_forces`)."""

    agent: str = "model"
    checkpoint: str | Path | None = None
    data_root: str | Path | None = None  # None: the shipped test split
    split: str = "test"
    out_dir: str | Path = "runs/forces_eval"
    video: int = 0
    seed: int = 0
    device: str = "auto"
    batch_size: int = 256
    threads: int = 1


def run_forces_eval(args: ForcesEvalArgs) -> dict[str, Any]:
    """:func:`evaluate_forces` of typed arguments (for the agent registry's evaluator)."""
    return evaluate_forces(**asdict(args))


def evaluate_forces(
    checkpoint: str | Path | None,
    agent: str = "model",
    data_root: str | Path | None = None,
    split: str = "test",
    out_dir: str | Path = "runs/forces_eval",
    video: int = 0,
    seed: int = 0,
    *,
    device: str = "auto",
    batch_size: int = 256,
    threads: int = 1,
) -> dict[str, Any]:
    """Score ``agent`` on ``split`` of ``data_root`` (None: the shipped test split); writes and
    returns the metrics. ``checkpoint`` (a file or run directory) is needed by ``model`` only; the
    baselines ``most-frequent`` and ``nearest-neighbour`` read the train split of ``data_root``."""
    from thorgym.device import set_threads

    if agent not in AGENTS:
        raise ValueError(f"unknown forces agent {agent!r}: choose from {list(AGENTS)}")
    if agent == "model" and checkpoint is None:
        raise ValueError("--agent model needs --checkpoint (a forces .pt file or its run directory)")
    if agent in ("most-frequent", "nearest-neighbour") and data_root is None:
        raise ValueError(
            f"the {agent} baseline is fitted on the train split: pass --data DIR "
            "(a `thorgym data forces --out DIR` folder)"
        )
    if video < 0:
        raise ValueError(f"--video must be >= 0, got {video}")
    set_threads(threads)
    data = load_split(data_root, split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved: Path | None = None
    extra: dict[str, Any] = {}
    if agent == "model":
        preds, resolved, ckpt = _model_predictions(checkpoint, data, device, batch_size)  # type: ignore[arg-type]
        extra = {"checkpoint_step": int(ckpt.get("step", -1)), "backbone": ckpt["config"]["backbone"]}
    elif agent == "random":
        preds = random_predictions(len(data), seed)
    else:
        train = load_split(data_root, "train")
        if agent == "most-frequent":
            preds = most_frequent_predictions(train, len(data))
        else:
            preds = nearest_neighbour_predictions(train, data)
    types = np.asarray(data.object_type).astype(str).tolist()
    metrics = score(preds, data.labels, types)
    metrics.update(
        {
            "agent": agent,
            "split": split,
            "data_root": None if data_root is None else str(data_root),
            "checkpoint": None if resolved is None else str(resolved),
            "seed": int(seed),
            "samples": len(data),
            **extra,
        }
    )
    write_json_atomic(out / "metrics.json", metrics, indent=1)
    correct = (preds == data.labels).all(axis=1)
    moving = ~is_all_stop(data.labels)
    with atomic_writer(out / "predictions.jsonl") as f:
        for i in range(len(data)):
            rec = {
                "index": i,
                "scene": str(data.scene[i]),
                "object_id": str(data.object_id[i]),
                "object_type": types[i],
                "labels": data.labels[i].tolist(),
                "prediction": preds[i].tolist(),
                "correct": bool(correct[i]),
                "moving": bool(moving[i]),
            }
            f.write((json.dumps(rec) + "\n").encode())
    if video > 0:
        _write_visuals(out, data, preds, min(video, len(data)))
    return metrics


def _write_visuals(out: Path, data: ForceArrays, preds: np.ndarray, k: int) -> None:
    """``contact_sheet.png`` of the first k samples and ``forces.mp4``: each sample's trajectories
    grow step by step (7 frames), then hold."""
    from .video import draw_sample, write_contact_sheet, write_video

    tiles, frames = [], []
    for i in range(k):

        def tile(upto: int, i: int = i) -> np.ndarray:
            return draw_sample(
                data.image[i], data.mask[i], data.point[i], float(data.angle[i]), float(data.magnitude[i]),
                data.camera[i], data.point3d[i], data.trajectory[i], int(data.traj_len[i]),
                data.labels[i], preds[i], title=f"{i}: {data.object_type[i]}", upto=upto,
            )  # fmt: skip

        frames += [tile(s) for s in range(STEPS + 1)]
        frames += [frames[-1]] * 2
        tiles.append(frames[-1])
    write_contact_sheet(out / "contact_sheet.png", tiles)
    write_video(out / "forces.mp4", frames, fps=3)
