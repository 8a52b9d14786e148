"""`thorgym bench train`: training throughput of SAVN against its non-adaptive baseline.

Both agents train in the same process on the same envs, backbone and frame size, one after the
other, for the same number of synchronous episode batches after one warm-up batch; the record
is environment steps (of running episodes) per second of wall time, everything included
(simulation, frozen backbone, acting, inner steps, meta-gradient). The ratio is the price of
adaptation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def run(
    agents: Sequence[str] = ("savn", "nonadaptive"),
    preset: str = "savn-cpu",
    batches: int = 5,
    envs: int | None = None,
    device: str | None = None,
    first_order: bool = False,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One record per agent: env steps/s of training under ``preset`` (overridable envs/device)."""
    from thorgym.train import TrainArgs
    from thorgym.train_savn import SAVNTrainer

    records = []
    for agent in agents:
        explicit = {k: v for k, v in {"envs": envs, "device": device}.items() if v is not None}
        args = TrainArgs(
            agent=agent,
            preset=preset,
            seed=seed,
            first_order=first_order,
            out=Path("runs/bench_train"),
            explicit=set(explicit),
            **explicit,
        ).with_preset()
        trainer = SAVNTrainer(args)
        try:
            trainer.train_batch()  # warm-up: scene loading, allocator
            steps0, t0 = trainer.env_steps, time.perf_counter()
            inner = 0.0
            for _ in range(batches):
                inner += trainer.train_batch()["inner_steps"]
            seconds = time.perf_counter() - t0
            steps = trainer.env_steps - steps0
        finally:
            trainer.close()
        records.append(
            {
                "agent": agent,
                "preset": preset,
                "envs": args.envs,
                "size": args.width,
                "backbone": args.backbone,
                "grid": args.grid,
                "hidden": args.hidden,
                "first_order": bool(first_order) if agent == "savn" else None,
                "device": trainer.device,
                "batches": batches,
                "env_steps": steps,
                "seconds": round(seconds, 3),
                "steps_per_s": round(steps / seconds, 2),
                "inner_steps_per_episode": round(inner / batches, 2),
                "args": {k: v for k, v in dataclasses.asdict(args).items() if k in ("lr", "max_steps")},
            }
        )
    return records


def format_table(records: Sequence[dict[str, Any]]) -> str:
    head = f"{'agent':12} {'envs':>4} {'size':>4} {'backbone':>12} {'grid':>4} {'steps/s':>9} {'inner/ep':>8}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(
            f"{r['agent']:12} {r['envs']:>4} {r['size']:>4} {r['backbone']:>12} {r['grid']:>4} "
            f"{r['steps_per_s']:>9.1f} {r['inner_steps_per_episode']:>8.2f}"
        )
    if len(records) == 2 and records[1]["steps_per_s"] > 0:
        lines.append(
            f"ratio {records[0]['agent']}/{records[1]['agent']}: "
            f"{records[0]['steps_per_s'] / records[1]['steps_per_s']:.2f}"
        )
    return "\n".join(lines)
