"""``thorgym bench iqa``: the IQA hot paths, measured in one run.

- ``env``: ``IQAVectorEnv`` steps/s (random primitive actions) against the raw batched simulator
  rendering the same frames (RGB + depth + instance segmentation) in the same run: the ratio is
  what the task layer costs (visibility, coverage, evidence).
- ``map``: HIMN's semantic-map update (depth + classes → top-down grid) per environment step.
- ``himn``: the HIMN driver's primitive steps/s (planner forward, navigator, map, env) with an
  untrained planner and answerer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .table import text_table


def _rate(fn: Callable[[], int], min_seconds: float) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def _interleaved(
    a: Callable[[], int], b: Callable[[], int], min_seconds: float, rounds: int = 3
) -> tuple[float, float]:
    ra, rb = [], []
    for _ in range(rounds):
        ra.append(_rate(a, min_seconds / rounds))
        rb.append(_rate(b, min_seconds / rounds))
    return float(np.median(ra)), float(np.median(rb))


def run(size: int = 64, envs: tuple[int, ...] = (1, 16), min_seconds: float = 2.0) -> list[dict[str, Any]]:
    from thorgym.agents.himn.driver import IQADriver
    from thorgym.agents.himn.models import Answerer, Planner
    from thorgym.agents.himn.semantic_map import SemanticMap
    from thorgym.datasets.iqa import shipped_questions
    from thorgym.envs.iqa import IQAVectorEnv
    from thorgym.tasks import iqa

    torch.set_num_threads(1)
    qs = shipped_questions("unseen")[:64]
    out: list[dict[str, Any]] = []
    for n in envs:
        venv = IQAVectorEnv(num_envs=n, split="train", questions=qs, width=size, height=size, depth=True,
                            classes=True, sample=True, autoreset_mode="SameStep")  # fmt: skip
        venv.reset(seed=0)
        rng = np.random.default_rng(0)

        def env_step(venv: Any = venv, n: int = n, rng: Any = rng) -> int:
            venv.step(rng.integers(0, 7, size=n))
            return n

        def raw_step(sim: Any = venv.sim, n: int = n) -> int:
            sim.observe()
            return n

        # interleaved in three rounds each, so that a slow patch of the machine hits both alike
        env_rate, raw_rate = _interleaved(env_step, raw_step, min_seconds)
        m = SemanticMap(n, 64)
        obs, _ = venv.reset(seed=1)
        depth = torch.as_tensor(obs["depth"][..., 0])
        classes = torch.as_tensor(obs["classes"]).long()
        poses = torch.as_tensor(obs["pose"], dtype=torch.float32)
        m.reset(
            torch.arange(n),
            torch.stack([poses[:, 0] - 7, poses[:, 1] - 7, poses[:, 0] + 7, poses[:, 1] + 7], -1),
        )

        def map_step(m: Any = m, n: int = n, d: Any = depth, c: Any = classes, p: Any = poses) -> int:
            m.update(d, c, p, iqa.FIELD_OF_VIEW)
            return n

        map_rate = _rate(map_step, min_seconds)
        drv = IQADriver(venv, Planner(), hierarchical=True, answerer=Answerer())
        drv.reset(seed=2)

        def himn_step(drv: Any = drv, n: int = n) -> int:
            drv.tick()
            drv.take_decisions()
            return n

        himn_rate = _rate(himn_step, min_seconds)
        venv.close()
        out.append({
            "envs": n, "size": size, "env_steps_per_s": env_rate, "raw_sim_steps_per_s": raw_rate,
            "env_vs_raw": env_rate / raw_rate, "map_updates_per_s": map_rate, "himn_steps_per_s": himn_rate,
            "himn_vs_env": himn_rate / env_rate, "threads": 1,
        })  # fmt: skip
    return out


def format_table(records: list[dict[str, Any]]) -> str:
    cols = [
        "envs",
        "size",
        "env steps/s",
        "raw sim steps/s",
        "env/raw",
        "map updates/s",
        "HIMN steps/s",
        "HIMN/env",
    ]
    rows = [
        [str(r["envs"]), str(r["size"]), f"{r['env_steps_per_s']:.0f}", f"{r['raw_sim_steps_per_s']:.0f}",
         f"{r['env_vs_raw']:.2f}", f"{r['map_updates_per_s']:.0f}", f"{r['himn_steps_per_s']:.0f}",
         f"{r['himn_vs_env']:.2f}"]
        for r in records
    ]  # fmt: skip
    return "\n".join(text_table(cols, rows))
