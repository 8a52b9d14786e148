"""Backbone compression benchmark (what ``thorgym bench compress`` runs).

For one backbone it builds the variants of :mod:`thorgym.agents.backbones.compress` — the float32
reference, bf16 autocast (the engine's default on CPUs with native bf16), structured channel
pruning, low-rank factorisation, int8 post-training quantization and pruning + int8 — and times
them all in the same run through :class:`~thorgym.agents.engine.InferenceEngine` on uint8 NHWC
batches, in interleaved rounds (best round kept), so ratios to the reference are honest on a
shared machine.

With ``task_dir`` it also reports the task metric, and the model compressed is the
simulator-pretrained one: ``task_dir`` is the ``--out`` folder of a ``thorgym pretrain`` run of
the same backbone (``metrics.json``, ``classifier.pt``, the cached ``frames_*.npz`` of
:mod:`thorgym.datasets.pretrain_frames`). The base model is that run's ``classifier.pt``
(backbone + object-presence head over :data:`~thorgym.datasets.pretrain_frames.LABEL_TYPES`),
the mAP is multi-label object-presence mAP (:mod:`thorgym.agents.metrics`) on the run's
held-out frames (val + test scenes), so the fp32 mAP equals the run's ``map_pretrained``; pruned
and factorised models are fine-tuned for ``finetune_steps`` steps on the run's train frames
(their mAP before fine-tuning is recorded too; the fine-tuned models are cached in
``task_dir/compress/``, keyed by a hash of ``classifier.pt``). When ``task_dir`` holds no
pretraining run yet, one is made there first through :func:`thorgym.pretrain.pretrain` with the
small settings of :data:`AUTO_PRETRAIN` (a few minutes on a CPU); a full ``thorgym pretrain``
run into the folder beforehand gives the better-trained base model.

Usage::

    thorgym pretrain --backbone espnetv2_s0.5                  # → runs/pretrain_espnetv2_s0.5
    thorgym bench compress --task-dir runs/pretrain_espnetv2_s0.5  # mAP + throughput, 128, 64 px
    thorgym bench compress --json                              # throughput only, JSON records

Record keys: name, variant, batch, height, width, device, dtype, images_per_s, speedup (vs the
fp32 variant at the same size), params, macs (per image; int8 variants: the float model's, the
same operations in int8), model_bytes (serialised weights), compile, and with a task: map,
map_before_finetune (pruned / low-rank only).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from thorgym.agents.backbones import build_backbone, count_macs, count_params, list_backbones
from thorgym.agents.backbones.checkpoint import load_backbone
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
from thorgym.benchmarks.table import text_table

# Settings of the `thorgym pretrain` run made in an empty --task-dir (about as much training as
# a few minutes of CPU allow: 6 epochs of 4000 frames); other PretrainArgs keep their defaults.
AUTO_PRETRAIN: dict[str, Any] = {"train_frames": 4000, "heldout_frames": 1000, "epochs": 6}


# --------------------------------------------------------------------------------------------
# Task: a `thorgym pretrain` run (its classifier and its cached frames)
# --------------------------------------------------------------------------------------------


def _nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC frames → uint8 NCHW tensor."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def prepare_task(
    task_dir: str | Path,
    backbone: str = "espnetv2_s0.5",
    seed: int = 0,
    pretrain: Mapping[str, Any] | None = None,
    log: TextIO | None = None,
) -> tuple[dict, torch.nn.Module]:
    """The presence task of ``task_dir`` (a ``thorgym pretrain --out`` folder) and its base model.

    When ``task_dir`` holds no finished pretraining run (no ``metrics.json``), one is run there
    with :data:`AUTO_PRETRAIN` updated by ``pretrain`` (any :class:`~thorgym.pretrain.PretrainArgs`
    field) and ``seed``; an interrupted one is resumed. Returns ``(data, model)``: ``data`` has
    ``classes``, ``size``, ``train_images`` / ``test_images`` (uint8 ``(N, 3, size, size)``: the
    run's train frames and held-out val + test frames), ``train_targets`` / ``test_targets``
    (float 0/1 ``(N, C)``), ``metrics`` (the run's metrics.json) and ``base_ckpt``; ``model`` is
    the run's ``classifier.pt`` in eval mode.
    """
    from thorgym.datasets.pretrain_frames import LABEL_TYPES, load_or_generate
    from thorgym.pretrain import PretrainArgs
    from thorgym.pretrain import pretrain as run_pretrain

    log = sys.stderr if log is None else log
    task_dir = Path(task_dir)
    metrics_path = task_dir / "metrics.json"
    if not metrics_path.is_file():
        if (task_dir / "presence.pt").is_file():
            raise ValueError(
                f"{task_dir} holds presence.pt from an older `bench compress`; pass an empty folder "
                "or the --out folder of a `thorgym pretrain` run as --task-dir"
            )
        settings = {**AUTO_PRETRAIN, "seed": seed, **(pretrain or {})}
        args = PretrainArgs(backbone=backbone, out=task_dir, resume=True, progress=False, **settings)
        print(f"no pretraining run in {task_dir}: running `thorgym pretrain` there ({settings})", file=log)
        t = time.perf_counter()
        with contextlib.redirect_stdout(log):  # keep stdout for the results (--json)
            run_pretrain(args)
        print(f"pretrained {backbone} in {time.perf_counter() - t:.0f} s", file=log)
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("backbone") != backbone:
        raise ValueError(
            f"{task_dir} holds a pretraining run of {metrics.get('backbone')!r}, not {backbone!r}; "
            f"pass --backbone {metrics.get('backbone')} or another --task-dir"
        )
    ckpt = task_dir / "classifier.pt"
    if not ckpt.is_file():
        raise ValueError(f"{ckpt} is missing: rerun `thorgym pretrain --out {task_dir}`")
    a = metrics["args"]
    frames = {}
    for split in ("train", "heldout"):
        frames[split], cached = load_or_generate(
            task_dir,
            split,
            a[f"{split}_frames"],
            size=a["size"],
            seed=a["seed"],
            min_pixels=a["min_pixels"],
        )
        if not cached:
            print(f"re-rendered the {split} frames of {task_dir} (cache missing or stale)", file=log)
    model = load_backbone(backbone, ckpt)
    if model.num_classes != len(LABEL_TYPES):
        raise ValueError(f"{ckpt} has {model.num_classes} classes, the presence labels {len(LABEL_TYPES)}")
    tr, ho = frames["train"], frames["heldout"]
    data = {
        "classes": list(LABEL_TYPES),
        "size": a["size"],
        "train_images": _nchw(tr.images),
        "train_targets": torch.from_numpy(tr.labels.astype(np.float32)),
        "test_images": _nchw(ho.images),
        "test_targets": torch.from_numpy(ho.labels.astype(np.float32)),
        "metrics": metrics,
        "base_ckpt": ckpt,
    }
    print(
        f"base model {ckpt} (pretraining run: held-out mAP {metrics['map_pretrained']:.4f}); "
        f"{len(tr)} train / {len(ho)} held-out frames of {a['size']} px",
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
    pretrain: Mapping[str, Any] | None = None,
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
    (variant, size). See the module docstring for the variants and record keys. ``pretrain``
    overrides :data:`AUTO_PRETRAIN` for the pretraining run made in an empty ``task_dir``."""
    out = sys.stdout if out is None else out
    log = sys.stderr if log is None else log
    if backbone not in list_backbones():
        raise ValueError(f"unknown backbone {backbone!r}; valid names: {', '.join(list_backbones())}")
    _check_ratio(keep_ratio, "keep_ratio")  # fail before minutes of pretraining
    _check_ratio(rank_ratio, "rank_ratio")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = None
    if task_dir is not None:
        settings = {"device": str(dev), **(pretrain or {})}  # a pretraining run uses --device too
        data, base = prepare_task(task_dir, backbone, seed=seed, pretrain=settings, log=log)
        base_hash = hashlib.sha256(Path(data["base_ckpt"]).read_bytes()).hexdigest()[:10]
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
        # Keyed by the base checkpoint, so a new pretraining run in task_dir is never paired
        # with fine-tunes of the previous one.
        cache = (
            Path(task_dir) / "compress" / f"{backbone}-{label}-ft{finetune_steps}-seed{seed}-{base_hash}.pt"
        )
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
    structured = {
        f"pruned-{keep_ratio:g}": lambda: prune_channels(base, keep_ratio),
        f"lowrank-{rank_ratio:g}": lambda: factorize_lowrank(base, rank_ratio),
    }
    compressed: dict[str, torch.nn.Module] = {}
    for label, compress_base in structured.items():
        model = compress_base()
        before = score(model)
        model = compressed[label] = recover(model, label)
        maps = {"map": score(model), "map_before_finetune": before}
        variants.append((label, model, model, "float32", maps))
    pruned = compressed[f"pruned-{keep_ratio:g}"]  # also quantized below
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
    lines = text_table(cols, rows)
    if records:
        lines.append(f"{records[0]['name']}, batch {records[0]['batch']}, device: {records[0]['device']}")
    return "\n".join(lines)
