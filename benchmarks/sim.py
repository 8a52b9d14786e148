"""`thorgym bench sim`: steps/s of the single Controller and of the batched simulator."""

from __future__ import annotations

import time

import torch

from thorgym.sim import BatchedSimulator, Controller
from thorgym.sim.scenes import scenes_for

_ACTIONS = ("MoveAhead", "RotateRight", "MoveAhead", "RotateLeft", "LookDown", "LookUp")


def _timed(fn, min_seconds: float, max_steps: int) -> float:
    """Steps per second of fn() (one step per call), after one warm-up call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while n < max_steps and (n < 2 or time.perf_counter() - t0 < min_seconds):
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def bench_single(width: int, height: int, min_seconds: float = 1.0) -> dict:
    with Controller(scene="FloorPlan1", width=width, height=height, renderDepthImage=True) as c:
        k = [0]

        def step() -> None:
            c.step(_ACTIONS[k[0] % len(_ACTIONS)])
            k[0] += 1

        sps = _timed(step, min_seconds, 500)
    return {
        "mode": "single",
        "worlds": 1,
        "width": width,
        "height": height,
        "device": "cpu",
        "steps_per_s": round(sps, 1),
        "compile": False,
    }


def bench_batched(
    worlds: int,
    width: int,
    height: int,
    device: str,
    compile: bool = False,
    min_seconds: float = 1.0,
) -> dict:
    scenes = (scenes_for("train") * (worlds // 80 + 1))[:worlds]
    sim = BatchedSimulator(
        scenes,
        width=width,
        height=height,
        render_depth=True,
        render_instance_segmentation=False,
        device=device,
        compile=compile,
    )
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        sim.step(torch.randint(0, 8, (worlds,), generator=gen).to(sim.device))
        if sim.device.type == "cuda":
            torch.cuda.synchronize()

    if compile:  # compilation happens on the first calls; keep it out of the timing
        for _ in range(3):
            step()
    sps = _timed(step, min_seconds, 1000) * worlds
    return {
        "mode": "batched",
        "worlds": worlds,
        "width": width,
        "height": height,
        "device": str(sim.device),
        "steps_per_s": round(sps, 1),
        "compile": compile,
    }


def run(
    worlds: tuple[int, ...] = (1, 16, 64, 256),
    sizes: tuple[int, ...] = (64, 224),
    devices: tuple[str, ...] | None = None,
    compile: bool = False,
    min_seconds: float = 1.0,
) -> list[dict]:
    """All records: the single Controller per size, then batched per device × size × worlds."""
    if devices is None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    records = [bench_single(s, s, min_seconds) for s in sizes]
    for dev in devices:
        for s in sizes:
            for n in worlds:
                records.append(bench_batched(n, s, s, dev, compile=False, min_seconds=min_seconds))
                if compile:
                    records.append(
                        bench_batched(n, s, s, dev, compile=True, min_seconds=min_seconds)
                    )
    return records


def format_table(records: list[dict]) -> str:
    single = {r["width"]: r["steps_per_s"] for r in records if r["mode"] == "single"}
    lines = [
        f"{'mode':8} {'worlds':>6} {'size':>8} {'device':>6} {'compile':>7} {'steps/s':>10} "
        f"{'x single':>8}"
    ]
    for r in records:
        ratio = r["steps_per_s"] / single[r["width"]] if r["width"] in single else float("nan")
        lines.append(
            f"{r['mode']:8} {r['worlds']:>6} {r['width']:>4}x{r['height']:<3} "
            f"{r['device']:>6} {str(r['compile']):>7} {r['steps_per_s']:>10.1f} {ratio:>8.1f}"
        )
    return "\n".join(lines)
