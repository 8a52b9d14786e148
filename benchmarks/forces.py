"""``thorgym bench forces``: the hot paths of the forces task, measured in one run per scene.

- ``push``: MuJoCo pushes/s on one world (the generator's pushes, cycled: random object, point,
  direction and magnitude from the dataset's sets) and the real-time factor (simulated seconds
  per wall-clock second); the reference in the same run is rendering one frame of that world
  (``render_vs_push``: how many frames cost what one push costs).
- ``model``: building the scene's MuJoCo model (ms), which happens once per world state.
- ``samples``: dataset samples/s of :func:`thorgym.datasets.forces.scene_samples` (views,
  renders and pushes together).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .iqa import _rate
from .table import text_table

SCENES = ("FloorPlan1", "FloorPlan201", "FloorPlan301", "FloorPlan401")


def run(size: int = 64, scenes: tuple[str, ...] = SCENES, min_seconds: float = 2.0) -> list[dict[str, Any]]:
    import torch

    from thorgym.datasets.forces import scene_samples, scene_simulator
    from thorgym.sim.physics import ScenePhysics, max_push_magnitude, push_direction
    from thorgym.tasks.forces import MAGNITUDES, PUSH_ANGLES

    torch.set_num_threads(1)
    out: list[dict[str, Any]] = []
    for scene in scenes:
        sim = scene_simulator(scene, size)
        world = sim.worlds[0]
        t0 = time.perf_counter()
        physics = ScenePhysics(world)
        build_ms = 1000 * (time.perf_counter() - t0)
        rng = np.random.default_rng(0)
        simulated = [0.0]

        def push(
            physics: Any = physics, rng: Any = rng, simulated: list = simulated, world: Any = world
        ) -> int:
            j = int(rng.choice(physics.dynamic))
            allowed = [m for m in MAGNITUDES if m <= max_push_magnitude(world, j)] or [1.0]
            r = physics.push(
                j, push_direction(0.0, float(rng.choice(PUSH_ANGLES))), float(rng.choice(allowed)),
                world.objects[j].center + rng.uniform(-0.02, 0.02, 3),
            )  # fmt: skip
            simulated[0] += float(r.times[-1])
            return 1

        t0 = time.perf_counter()
        push_rate = _rate(push, min_seconds)
        wall = time.perf_counter() - t0

        def render(sim: Any = sim) -> int:
            sim.render()
            return 1

        def samples(scene: str = scene, rng: Any = rng, sim: Any = sim) -> int:
            return len(scene_samples(scene, 4, int(rng.integers(1 << 30)), size, sim)[0])

        render_rate = _rate(render, min_seconds)
        sample_rate = _rate(samples, min_seconds)
        out.append({
            "scene": scene, "bodies": len(physics.dynamic), "model_build_ms": build_ms,
            "pushes_per_s": push_rate, "real_time_factor": simulated[0] / wall,
            "renders_per_s": render_rate, "render_vs_push": render_rate / push_rate,
            "samples_per_s": sample_rate, "size": size,
        })  # fmt: skip
    return out


def format_table(records: list[dict[str, Any]]) -> str:
    cols = ["scene", "bodies", "model build ms", "pushes/s", "real-time x", "renders/s", "render/push",
            "samples/s"]  # fmt: skip
    rows = [
        [
            r["scene"],
            str(r["bodies"]),
            f"{r['model_build_ms']:.1f}",
            f"{r['pushes_per_s']:.1f}",
            f"{r['real_time_factor']:.1f}",
            f"{r['renders_per_s']:.0f}",
            f"{r['render_vs_push']:.1f}",
            f"{r['samples_per_s']:.2f}",
        ]  # fmt: skip
        for r in records
    ]
    return "\n".join(text_table(cols, rows))
