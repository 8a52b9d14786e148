"""Backbone compression benchmark (what ``thorgym bench compress`` runs).

For one backbone it builds the variants of :mod:`thorgym.agents.backbones.compress` — the float32
reference, bf16 autocast (the engine's default on CPUs with native bf16), structured channel
pruning, low-rank factorisation, int8 post-training quantization and pruning + int8 — and times
them all in the same run through :class:`~thorgym.agents.engine.InferenceEngine` on uint8 NHWC
batches, in interleaved rounds (best round kept), so ratios to the reference are honest on a
shared machine.

With ``task_dir`` it also reports the task metric: multi-label object-presence mAP on held-out
scenes. The presence data set (frames of train scenes FloorPlan*1–20 vs test scenes 21–30 of all
four room types, labels = object types covering at least ``min_pixels`` pixels of the instance
segmentation) and a trained base model are created in ``task_dir`` the first time (cached after:
``presence.pt``, ``backbone-<name>.pt``; the fine-tuned variants too, as
``<name>-<variant>-ft<steps>-seed<seed>.pt``). Pruned and factorised models are fine-tuned for
``finetune_steps`` steps on the train frames; their mAP before fine-tuning is recorded too.

Usage::

    thorgym bench compress --task-dir runs/compress            # mAP + throughput, 128 and 64 px
    thorgym bench compress --json                              # throughput only, JSON records

Record keys: name, variant, batch, height, width, device, dtype, images_per_s, speedup (vs the
fp32 variant at the same size), params, macs (per image; int8 variants: the float model's, the
same operations in int8), model_bytes (serialised weights), compile, and with a task: map,
map_before_finetune (pruned / low-rank only).
"""

from __future__ import annotations

import copy
import io
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from thorgym.agents.backbones import build_backbone, count_macs, count_params, list_backbones
from thorgym.agents.backbones.checkpoint import load_backbone, save_backbone
from thorgym.agents.backbones.compress import (
    _check_ratio,
    factorize_lowrank,
    finetune,
    load_compressed,
    mean_average_precision,
    model_bytes,
    prune_channels,
    quantize_int8,
    save_compressed,
)
from thorgym.agents.engine import InferenceEngine, resolve_device
from thorgym.benchmarks.backbones import _device_label, measure, warm_up

DATASET_FORMAT = "thorgym.presence/1"


# --------------------------------------------------------------------------------------------
# Task: object-presence frames from the built-in simulator
# --------------------------------------------------------------------------------------------


def _frames(
    scenes: list[str], size: int, steps: int, every: int, min_pixels: int, seed: int
) -> tuple[torch.Tensor, list[set[str]]]:
    """Random-walk frames (uint8 NCHW) and the object types visible in each."""
    from thorgym.sim.batch import BatchedSimulator

    sim = BatchedSimulator(scenes, width=size, height=size, render_depth=False, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for t in range(steps):
        actions = torch.randint(0, 8, (len(scenes),), generator=gen)  # moves, turns, looks
        step = sim.step(actions)
        if t % every:
            continue
        images.append(step.rgb[:, 0].permute(0, 3, 1, 2).contiguous())
        inst = step.instance[:, 0].reshape(len(scenes), -1).long()
        for i, world in enumerate(sim.worlds):
            codes = inst[i][inst[i] >= 0]
            counts = torch.bincount(codes, minlength=len(world.objects))
            labels.append(
                {world.objects[j].object_type for j in torch.nonzero(counts >= min_pixels).flatten().tolist()}
            )
    return torch.cat(images), labels


def make_presence_dataset(
    size: int = 64,
    train_steps: int = 60,
    test_steps: int = 40,
    every: int = 2,
    min_pixels: int = 8,
    min_train_positives: int = 20,
    seed: int = 0,
) -> dict:
    """Object-presence multi-label frames: train scenes 1–20, test scenes 21–30 (val + test).

    Returns ``{"format", "classes", "train_images", "train_targets", "test_images",
    "test_targets", "size"}``; images uint8 ``(N, 3, size, size)``, targets float 0/1
    ``(N, C)``. Classes are the object types with at least ``min_train_positives`` train frames.
    """
    from thorgym.sim.scenes import scenes_for

    tr_img, tr_lab = _frames(scenes_for("train"), size, train_steps, every, min_pixels, seed)
    te_img, te_lab = _frames(
        scenes_for("val") + scenes_for("test"), size, test_steps, every, min_pixels, seed + 1
    )
    counts: dict[str, int] = {}
    for s in tr_lab:
        for t in s:
            counts[t] = counts.get(t, 0) + 1
    classes = sorted(t for t, c in counts.items() if c >= min_train_positives)

    def encode(labels: list[set[str]]) -> torch.Tensor:
        y = torch.zeros(len(labels), len(classes))
        for i, s in enumerate(labels):
            for j, c in enumerate(classes):
                y[i, j] = float(c in s)
        return y

    return {
        "format": DATASET_FORMAT,
        "classes": classes,
        "size": size,
        "train_images": tr_img,
        "train_targets": encode(tr_lab),
        "test_images": te_img,
        "test_targets": encode(te_lab),
    }


def _save_torch_atomic(path: Path, obj: object) -> None:
    from thorgym.eval.okvqa_io import write_bytes_atomic

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue())


def prepare_task(
    task_dir: str | Path,
    backbone: str = "espnetv2_s0.5",
    train_steps: int = 600,
    seed: int = 0,
    log: TextIO | None = None,
) -> tuple[dict, torch.nn.Module]:
    """Load (or create and cache in ``task_dir``) the presence data set and a trained base model.

    The base model is ``backbone`` with a ``len(classes)`` head, trained with :func:`finetune`
    for ``train_steps`` steps (lr 2e-3) from random initialisation; cached as
    ``backbone-<name>.pt`` (a regular :func:`save_backbone` checkpoint).
    """
    log = sys.stderr if log is None else log
    task_dir = Path(task_dir)
    data_path = task_dir / "presence.pt"
    if data_path.is_file():
        data = torch.load(data_path, weights_only=True)
        if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
            raise ValueError(f"{data_path} is not a presence data set; delete it to regenerate")
    else:
        t = time.perf_counter()
        torch.manual_seed(seed)
        data = make_presence_dataset(seed=seed)
        _save_torch_atomic(data_path, data)
        print(
            f"wrote {data_path}: {len(data['train_images'])} train / {len(data['test_images'])} "
            f"test frames, {len(data['classes'])} classes ({time.perf_counter() - t:.0f} s)",
            file=log,
        )
    ckpt = task_dir / f"backbone-{backbone}.pt"
    if ckpt.is_file():
        model = load_backbone(backbone, ckpt)
        if model.num_classes != len(data["classes"]):
            raise ValueError(
                f"{ckpt} has {model.num_classes} classes, the data set {len(data['classes'])}; delete it"
            )
    else:
        t = time.perf_counter()
        torch.manual_seed(seed)
        model = build_backbone(backbone, len(data["classes"]))
        losses = finetune(
            model, data["train_images"], data["train_targets"], steps=train_steps, lr=2e-3, seed=seed
        )
        save_backbone(model, ckpt)
        print(
            f"trained {backbone} for {train_steps} steps (loss {losses[0]:.3f} → "
            f"{statistics.mean(losses[-50:]):.3f}, {time.perf_counter() - t:.0f} s): {ckpt}",
            file=log,
        )
    return data, model.eval()


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def run(
    backbone: str = "espnetv2_s0.5",
    task_dir: str | Path | None = None,
    keep_ratio: float = 0.5,
    rank_ratio: float = 0.25,
    batch: int = 32,
    sizes: Sequence[tuple[int, int]] = ((128, 128), (64, 64)),
    finetune_steps: int = 200,
    train_steps: int = 600,
    compile: bool = False,
    int8: bool = True,
    rounds: int = 3,
    repeats: int = 5,
    device: str = "cpu",
    seed: int = 0,
    as_json: bool = False,
    out: TextIO | None = None,
    log: TextIO | None = None,
) -> list[dict]:
    """Build every compression variant of ``backbone`` and measure it; one record per
    (variant, size). See the module docstring for the variants and record keys."""
    out = sys.stdout if out is None else out
    log = sys.stderr if log is None else log
    if backbone not in list_backbones():
        raise ValueError(f"unknown backbone {backbone!r}; valid names: {', '.join(list_backbones())}")
    _check_ratio(keep_ratio, "keep_ratio")  # fail before minutes of data generation/training
    _check_ratio(rank_ratio, "rank_ratio")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = None
    if task_dir is not None:
        data, base = prepare_task(task_dir, backbone, train_steps=train_steps, seed=seed, log=log)
        calib = data["train_images"][torch.randperm(len(data["train_images"]))[:256]]
    else:
        base = build_backbone(backbone).eval()
        calib = torch.randint(0, 256, (128, 3, *sizes[0]), dtype=torch.uint8)

    def score(model: torch.nn.Module) -> float | None:
        if data is None:
            return None
        return round(mean_average_precision(model, data["test_images"], data["test_targets"]), 4)

    def recover(model: torch.nn.Module, label: str) -> torch.nn.Module:
        """Fine-tune ``model``; cached in ``task_dir`` (fine-tunes take minutes on 2 cores)."""
        if data is None or finetune_steps <= 0:
            return model
        cache = Path(task_dir) / f"{backbone}-{label}-ft{finetune_steps}-seed{seed}.pt"
        if cache.is_file():
            print(f"loaded fine-tuned {label} from {cache}", file=log)
            return load_compressed(cache)
        t = time.perf_counter()
        finetune(model, data["train_images"], data["train_targets"], steps=finetune_steps, seed=seed)
        print(f"fine-tuned {label} {finetune_steps} steps ({time.perf_counter() - t:.0f} s)", file=log)
        save_compressed(model, cache)
        return model

    # (variant, model, float source for params/MACs, dtype, extra record fields)
    variants: list[tuple[str, torch.nn.Module, torch.nn.Module, str, dict]] = []
    base_map = score(base)
    variants.append(("fp32", base, base, "float32", {"map": base_map}))
    variants.append(("bf16-autocast", base, base, "bfloat16", {"map": base_map}))
    pruned = prune_channels(base, keep_ratio)
    before = score(pruned)
    pruned = recover(pruned, f"pruned-{keep_ratio:g}")
    variants.append(
        (
            f"pruned-{keep_ratio:g}",
            pruned,
            pruned,
            "float32",
            {"map": score(pruned), "map_before_finetune": before},
        )
    )
    lowrank = factorize_lowrank(base, rank_ratio)
    before = score(lowrank)
    lowrank = recover(lowrank, f"lowrank-{rank_ratio:g}")
    variants.append(
        (
            f"lowrank-{rank_ratio:g}",
            lowrank,
            lowrank,
            "float32",
            {"map": score(lowrank), "map_before_finetune": before},
        )
    )
    if int8 and dev.type == "cpu":
        for label, src in (("int8", base), (f"pruned-{keep_ratio:g}+int8", pruned)):
            t = time.perf_counter()
            q = quantize_int8(src, calib)
            print(f"quantized {label} ({time.perf_counter() - t:.1f} s)", file=log)
            variants.append((label, q, src, "float32", {"map": score(q)}))
    elif int8:
        print("int8 variants skipped: post-training int8 here is a CPU path", file=log)

    label_dev = _device_label(dev)
    records: list[dict] = []
    for h, w in sizes:
        obs = rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8)
        group: list[tuple[dict, InferenceEngine]] = []
        compiled = (False, True) if compile else (False,)
        for name, model, src, dtype, extra in variants:
            params, macs = count_params(src), count_macs(src, h, w)
            for comp in compiled:
                if comp and getattr(model, "quantized", False):
                    continue  # compiling the quantized FX graph is not a supported path here
                engine = InferenceEngine(copy.deepcopy(model), dev, dtype=dtype, compile=comp)
                t = time.perf_counter()
                warm_up(engine, obs, warmup=3 + 2 * comp)
                if comp:
                    print(f"compiled {name} at {h}x{w} ({time.perf_counter() - t:.0f} s)", file=log)
                rec = {
                    "name": backbone,
                    "variant": name + ("+compile" if comp else ""),
                    "batch": batch,
                    "height": h,
                    "width": w,
                    "device": label_dev,
                    "dtype": "int8" if getattr(model, "quantized", False) else dtype,
                    "images_per_s": 0.0,
                    "params": params,
                    "macs": macs,
                    "model_bytes": model_bytes(model),
                    "compile": comp,
                    **extra,
                }
                group.append((rec, engine))
        rates: list[list[float]] = [[] for _ in group]
        for _ in range(max(1, rounds)):
            for i, (_, engine) in enumerate(group):
                rates[i].append(measure(engine, obs, repeats=repeats, warmup=1, min_warmup_s=0))
        ref = None
        for (rec, _), r in zip(group, rates, strict=True):
            rec["images_per_s"] = round(max(r), 1)
            if rec["variant"] == "fp32":
                ref = rec["images_per_s"]
        for rec, _ in group:
            rec["speedup"] = round(rec["images_per_s"] / ref, 2) if ref else None
            records.append(rec)
        del group
        if compile:
            torch._dynamo.reset()
    if as_json:
        print(json.dumps(records), file=out)
    else:
        print(format_table(records), file=out)
    return records


def format_table(records: list[dict]) -> str:
    """Plain-text table of compression benchmark records."""
    cols = [
        "variant",
        "size",
        "dtype",
        "images/s",
        "x fp32",
        "params(k)",
        "MMACs/img",
        "KiB",
        "mAP",
        "mAP before ft",
    ]
    rows = []
    for r in records:
        rows.append(
            [
                r["variant"],
                f"{r['height']}x{r['width']}",
                r["dtype"],
                f"{r['images_per_s']:.1f}",
                "" if r.get("speedup") is None else f"{r['speedup']:.2f}",
                f"{r['params'] / 1e3:.1f}",
                f"{r['macs'] / 1e6:.2f}",
                f"{r['model_bytes'] / 1024:.0f}",
                "" if r.get("map") is None else f"{r['map']:.4f}",
                "" if r.get("map_before_finetune") is None else f"{r['map_before_finetune']:.4f}",
            ]
        )
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = [
        "  ".join(c.ljust(wd) for c, wd in zip(cols, widths, strict=True)),
        "  ".join("-" * wd for wd in widths),
    ]
    lines += ["  ".join(v.ljust(wd) for v, wd in zip(row, widths, strict=True)) for row in rows]
    if records:
        lines.append(f"{records[0]['name']}, batch {records[0]['batch']}, device: {records[0]['device']}")
    return "\n".join(lines)
