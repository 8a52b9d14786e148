"""Throughput of the ObjectNav environments against the raw simulator (``thorgym bench env``).

For each batch size N, in the same process and interleaved (rounds of raw, env, raw, env …, the
median of each kept) so that machine load affects both alike:

- ``raw_steps_per_s``: ``BatchedSimulator.step`` (navigation + one batched render, frames to
  numpy) of the vector env's own simulator, same worlds, random MoveAhead / RotateLeft /
  RotateRight;
- ``env_steps_per_s``: ``ObjectNavVectorEnv.step`` with the same actions (no episode ends),
  numpy observations and infos included; ``overhead_pct`` = 100 × (raw / env − 1);
- ``make_vec_steps_per_s``: ``gymnasium.make_vec("thorgym/ObjectNav-v0", num_envs=N)`` with
  uniformly random actions (Done included, so episodes end and auto-reset);
- for N = 1 also ``single_env_steps_per_s``: ``gymnasium.make`` (with its wrappers) likewise.

Steps are environment steps (N per batched call). Pose graphs of the scenes are built before
timing (they are cached per process and on disk).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["run", "format_table"]

DEFAULT_SCENES = ("FloorPlan1", "FloorPlan201", "FloorPlan301", "FloorPlan401")


def _rate(fn: Callable[[], None], min_seconds: float, max_calls: int = 10_000) -> float:
    """Calls per second of fn (after one warm-up call)."""
    fn()
    n, t0 = 0, time.perf_counter()
    while n < max_calls and (n < 2 or time.perf_counter() - t0 < min_seconds):
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def run(
    num_envs: Sequence[int] | int = (1, 16, 64),
    size: int = 64,
    scenes: Sequence[str] = DEFAULT_SCENES,
    min_seconds: float = 0.5,
    rounds: int = 7,
    device: str = "cpu",
    seed: int = 0,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Measure env vs raw simulator throughput; one record per batch size.

    Args:
        num_envs: batch sizes N.
        size: frame width and height.
        scenes: the scenes episodes are drawn from (and the raw simulator renders).
        min_seconds, rounds: each figure is the median of ``rounds`` timings of at least
            ``min_seconds``; raw, env and make_vec timings alternate within a round.
        device: simulator device; ``threads``: torch CPU threads (default: torch's).
    """
    import gymnasium as gym
    import torch

    import thorgym  # noqa: F401  (registers the environments)
    from thorgym.sim import NAV_ACTIONS
    from thorgym.tasks import objectnav as task

    from .vector import ObjectNavVectorEnv

    if isinstance(num_envs, int):
        num_envs = (num_envs,)
    if threads is not None:
        torch.set_num_threads(threads)
    kw = {"scenes": list(scenes), "width": size, "height": size, "device": device}
    rng = np.random.default_rng(seed)
    # MoveAhead, RotateLeft, RotateRight for both raw and env steps: the same simulator work
    # (looks are left out as the raw simulator's horizon range differs from the task's).
    moves = (task.MOVE_AHEAD, task.ROTATE_LEFT, task.ROTATE_RIGHT)
    nav_moves = [NAV_ACTIONS.index(task.ACTIONS[a]) for a in moves]
    for s in scenes:  # pose graphs and every target's visibility, before any timing
        g = task.build_pose_graph(s, aspect=1.0)
        for t in task.TARGETS[task.room_type(s)]:
            g.distances(t)
    records = []
    for n in num_envs:
        venv = ObjectNavVectorEnv(n, **kw, max_steps=10**9)
        venv.reset(seed=seed)
        sim = venv.sim

        def raw_step(n: int = n, sim: Any = sim) -> None:
            a = torch.as_tensor(rng.choice(nav_moves, size=n))
            out = sim.step(a)
            out.rgb.cpu().numpy()  # what any consumer does with the frames

        def env_step(n: int = n, venv: Any = venv) -> None:
            venv.step(rng.choice(moves, size=n))

        mvec = gym.make_vec("thorgym/ObjectNav-v0", num_envs=n, **kw)
        mvec.reset(seed=seed + 1)

        def mvec_step(n: int = n, mvec: Any = mvec) -> None:
            mvec.step(rng.integers(0, len(task.ACTIONS), size=n))

        raw, env, mv = [], [], []
        for _ in range(rounds):
            raw.append(_rate(raw_step, min_seconds) * n)
            env.append(_rate(env_step, min_seconds) * n)
            mv.append(_rate(mvec_step, min_seconds) * n)
        rec: dict[str, Any] = {
            "num_envs": n,
            "size": size,
            "device": device,
            "threads": torch.get_num_threads(),
            "raw_steps_per_s": round(statistics.median(raw), 1),
            "env_steps_per_s": round(statistics.median(env), 1),
        }
        # Paired per round (raw and env measured back to back), then the median.
        ratios = [r / e for r, e in zip(raw, env, strict=True)]
        rec["overhead_pct"] = round(100.0 * (statistics.median(ratios) - 1), 1)
        rec["make_vec_steps_per_s"] = round(statistics.median(mv), 1)
        venv.close()
        mvec.close()
        if n == 1:
            single = gym.make("thorgym/ObjectNav-v0", **kw)
            single.reset(seed=seed)

            def single_step(single: Any = single) -> None:
                _, _, term, trunc, _ = single.step(int(rng.integers(0, len(task.ACTIONS))))
                if term or trunc:
                    single.reset()

            rec["single_env_steps_per_s"] = round(
                statistics.median(_rate(single_step, min_seconds) for _ in range(rounds)), 1
            )
            single.close()
        records.append(rec)
    return records


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :func:`run`'s records."""
    cols = [
        "num_envs",
        "size",
        "raw_steps_per_s",
        "env_steps_per_s",
        "overhead_pct",
        "make_vec_steps_per_s",
        "single_env_steps_per_s",
    ]
    rows = [[str(r.get(c, "")) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(run()))
