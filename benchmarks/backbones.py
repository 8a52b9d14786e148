"""Backbone throughput benchmark (what ``thorgym bench backbones`` runs).

Every backbone is measured through :class:`thorgym.agents.engine.InferenceEngine` on uint8 NHWC
observations (as environments give them; on CUDA the host → device copy is included), side by
side with ``resnet18`` — SAVN's reference backbone — in the same run. For each (batch, size) the
engine is warmed up, then ``repeats`` forwards are timed; ``images_per_s`` is the batch size
divided by the median forward time (with ``rounds > 1``: of the best of the interleaved
rounds, which filters out background load on a shared machine).

Usage::

    python -m thorgym.benchmarks.backbones --quick            # CPU-sized: batch 32, 128x128
    python -m thorgym.benchmarks.backbones --json             # one JSON list on stdout
    python -m thorgym.benchmarks.backbones --quick --paths    # compare CPU/GPU execution paths

Record keys: name, batch, height, width, device, dtype, images_per_s, params, macs (per image,
feature model; conv + linear) and also compile, channels_last, vs_resnet18 (throughput ratio to
resnet18 at the same batch and size) and, with ``--paths``, path.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import numpy as np
import torch

from thorgym.agents.backbones import build_backbone, count_macs, count_params, list_backbones
from thorgym.agents.engine import InferenceEngine, resolve_device, resolve_dtype
from thorgym.benchmarks.table import text_table

DEFAULT_NAMES: tuple[str, ...] = (
    "espnetv2_s0.5",
    "espnetv2_s1.0",
    "espnetv2_s2.0",
    "mobilevit_xxs",
    "mobilevitv2_050",
    "resnet18",
)
REFERENCE = "resnet18"
QUICK = {"batches": (32,), "sizes": ((128, 128),)}

# Execution paths compared by ``--paths``: (label, dtype, channels_last, compile).
PATHS: tuple[tuple[str, str, bool, bool], ...] = (
    ("eager-fp32", "float32", False, False),
    ("eager-fp32-channels_last", "float32", True, False),
    ("eager-bf16-channels_last", "bfloat16", True, False),
    ("compile-fp32-channels_last", "float32", True, True),
    ("compile-bf16-channels_last", "bfloat16", True, True),
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(
    engine: InferenceEngine, obs: np.ndarray, warmup: int = 3, min_warmup_s: float = 0.5
) -> None:
    """Run at least ``warmup`` forwards and ``min_warmup_s`` seconds (compilation, caches)."""
    t0 = time.perf_counter()
    n = 0
    while n < warmup or time.perf_counter() - t0 < min_warmup_s:
        engine(obs)
        n += 1
    _sync(engine.device)


def measure(
    engine: InferenceEngine,
    obs: np.ndarray,
    repeats: int = 10,
    warmup: int = 3,
    min_warmup_s: float = 0.5,
) -> float:
    """Images/s of ``engine`` on ``obs``: median of ``repeats`` timed forwards after
    :func:`warm_up`."""
    warm_up(engine, obs, warmup, min_warmup_s)
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        engine(obs)
        _sync(engine.device)
        times.append(time.perf_counter() - t)
    return obs.shape[0] / statistics.median(times)


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})"


def run(
    names: list[str] | None = None,
    batches: Sequence[int] = (1, 32, 128),
    sizes: Sequence[tuple[int, int]] = ((128, 128), (224, 224)),
    device: str = "auto",
    dtype: str = "auto",
    as_json: bool = False,
    repeats: int = 10,
    rounds: int = 1,
    compile: bool = False,
    channels_last: bool = True,
    paths: bool = False,
    quick: bool = False,
    seed: int = 0,
    out: TextIO | None = None,
) -> list[dict]:
    """Measure backbone throughput; returns one record per (name, batch, size[, path]).

    ``resnet18`` is always measured too (added if missing). With ``paths=True`` each backbone
    is measured along every execution path of :data:`PATHS` (ignoring dtype/compile/
    channels_last). Each (name, path) engine is timed ``rounds`` times, interleaved with the
    others; ``images_per_s`` is the best round (``rounds > 1`` also records the median round
    as ``images_per_s_median_round``): use several rounds on a shared machine.
    ``quick=True`` replaces batches/sizes by :data:`QUICK` (batch 32, 128×128: CPU-sized).
    Prints a table — or, when ``as_json``, one JSON list — to ``out`` (default stdout).
    """
    if quick:
        batches, sizes = QUICK["batches"], QUICK["sizes"]
    out = sys.stdout if out is None else out
    names = list(DEFAULT_NAMES if names is None else names)
    valid = list_backbones()
    for n in names:
        if n not in valid:
            raise ValueError(f"unknown backbone {n!r}; valid names: {', '.join(valid)}")
    if REFERENCE not in names:
        names.append(REFERENCE)
    dev = resolve_device(device)
    if paths:
        variants = list(PATHS)
    else:
        dt = resolve_dtype(dtype, dev)
        variants = [(None, str(dt).removeprefix("torch."), channels_last, compile)]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    label_dev = _device_label(dev)
    records: list[dict] = []
    for h, w in sizes:
        for batch in batches:
            obs = rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8)
            # Build and warm every (name, path) engine of this group first, then time them in
            # interleaved rounds, so that background load hits all of them alike.
            group: list[tuple[dict, InferenceEngine]] = []
            for name in names:
                model = build_backbone(name)
                params = count_params(model)
                macs = count_macs(model, h, w)
                for label, dt_name, cl, comp in variants:
                    engine = InferenceEngine(
                        copy.deepcopy(model), dev, dtype=dt_name, compile=comp, channels_last=cl
                    )
                    warm_up(engine, obs, warmup=3 + 2 * comp)
                    rec = {
                        "name": name,
                        "batch": batch,
                        "height": h,
                        "width": w,
                        "device": label_dev,
                        "dtype": str(engine.dtype).removeprefix("torch."),
                        "images_per_s": 0.0,
                        "params": params,
                        "macs": macs,
                        "compile": comp,
                        "channels_last": cl,
                    }
                    if label is not None:
                        rec["path"] = label
                    group.append((rec, engine))
            rates: list[list[float]] = [[] for _ in group]
            for _ in range(max(1, rounds)):
                for i, (_, engine) in enumerate(group):
                    rates[i].append(measure(engine, obs, repeats=repeats, warmup=1, min_warmup_s=0))
            for (rec, _), r in zip(group, rates, strict=True):
                rec["images_per_s"] = round(max(r), 1)  # best round: least disturbed
                if rounds > 1:
                    rec["images_per_s_median_round"] = round(statistics.median(r), 1)
                records.append(rec)
            del group
            if any(v[3] for v in variants):
                torch._dynamo.reset()  # free compiled graphs
    _add_ratios(records)
    if as_json:
        print(json.dumps(records), file=out)
    else:
        print(format_table(records), file=out)
    return records


def _add_ratios(records: list[dict]) -> None:
    ref = {
        (r["batch"], r["height"], r["width"], r.get("path")): r["images_per_s"]
        for r in records
        if r["name"] == REFERENCE
    }
    for r in records:
        base = ref.get((r["batch"], r["height"], r["width"], r.get("path")))
        r["vs_resnet18"] = round(r["images_per_s"] / base, 2) if base else None


def format_table(records: list[dict]) -> str:
    """Plain-text table of benchmark records."""
    has_path = any("path" in r for r in records)
    cols = ["name", "batch", "size", "dtype"] + (["path"] if has_path else [])
    cols += ["images/s", "vs resnet18", "params(M)", "MMACs/img"]
    rows = []
    for r in records:
        row = [r["name"], str(r["batch"]), f"{r['height']}x{r['width']}", r["dtype"]]
        if has_path:
            row.append(r.get("path", ""))
        ratio = r.get("vs_resnet18")
        row += [
            f"{r['images_per_s']:.1f}",
            "" if ratio is None else f"{ratio:.2f}x",
            f"{r['params'] / 1e6:.2f}",
            f"{r['macs'] / 1e6:.1f}",
        ]
        rows.append(row)
    lines = text_table(cols, rows)
    if records:
        lines.append(f"device: {records[0]['device']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Command-line entry point (``python -m thorgym.benchmarks.backbones --help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", nargs="+", default=None, help="backbones (default: a selection)")
    p.add_argument("--batches", nargs="+", type=int, default=None)
    p.add_argument("--sizes", nargs="+", default=None, help="HxW, e.g. 128x128 224x224")
    p.add_argument("--quick", action="store_true", help="batch 32, 128x128 only (CPU-sized)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbones")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--paths", action="store_true", help="compare execution paths")
    p.add_argument("--repeats", type=int, default=10, help="timed forwards per round")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds (best is kept)")
    p.add_argument("--json", action="store_true", help="print one JSON list of records")
    a = p.parse_args(argv)
    kw: dict = dict(QUICK) if a.quick else {}
    if a.batches:
        kw["batches"] = tuple(a.batches)
    if a.sizes:
        kw["sizes"] = tuple(tuple(int(v) for v in s.lower().split("x")) for s in a.sizes)
    return run(
        a.names,
        device=a.device,
        dtype=a.dtype,
        as_json=a.json,
        repeats=a.repeats,
        rounds=a.rounds,
        compile=a.compile,
        channels_last=not a.no_channels_last,
        paths=a.paths,
        **kw,
    )


if __name__ == "__main__":
    main()
