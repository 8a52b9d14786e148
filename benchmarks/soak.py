"""``thorgym bench soak --minutes M``: long runs of the two hot loops, watched for drift and leaks.

Two parts, each half of the time:

- ``sim``: a :class:`thorgym.sim.BatchedSimulator` of N worlds stepping random navigation actions
  and rendering every step; every 50 steps one world is reset into another scene (the allocation
  path of episode starts).
- ``thor``: the genuine ``ai2thor`` client through ``thorgym-thor`` (a child process) stepping
  MoveAhead / RotateRight / LookDown / LookUp, with a ``reset`` into another scene every 100 steps.

Each part reports steps/s in its first and last interval (the drift between them), the resident
memory (``VmRSS`` from ``/proc``) of this process and, for ``thor``, of the server at the start
(after warm-up) and at the end, open file descriptors before and after, and the child processes
left after the part has stopped (none expected). Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .table import text_table

_SCENES = ("FloorPlan1", "FloorPlan201", "FloorPlan301", "FloorPlan401")


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process in MiB (``VmRSS``)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def children() -> list[int]:
    """Pids of this process's live child processes (zombies included: they are leaks too)."""
    me = str(os.getpid())
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            out.append(int(d))
    return out


def _loop(step: Any, seconds: float, interval: float) -> list[float]:
    """Run ``step()`` (returns steps done) for ``seconds``; steps/s of each ``interval``."""
    rates: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < interval and time.perf_counter() < end:
            n += step()
        rates.append(n / max(1e-9, time.perf_counter() - t0))
    return rates


def soak_sim(seconds: float, envs: int = 16, size: int = 64, interval: float = 10.0) -> dict[str, Any]:
    import torch

    from thorgym.sim import BatchedSimulator

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    fds0 = open_fds()
    sim = BatchedSimulator([_SCENES[0]] * envs, width=size, height=size, render_depth=False,
                           render_instance_segmentation=False)  # fmt: skip
    count = [0]

    def step() -> int:
        sim.step(torch.as_tensor(rng.integers(0, 6, size=envs)))
        count[0] += 1
        if count[0] % 50 == 0:
            sim.reset_world(int(rng.integers(envs)), _SCENES[int(rng.integers(len(_SCENES)))])
        return envs

    _loop(step, min(5.0, seconds / 4), interval)  # warm-up: caches, scenes, allocator
    rss0 = rss_mb()
    rates = _loop(step, seconds, interval)
    rss1 = rss_mb()
    return {"part": "sim", "envs": envs, "size": size, "seconds": seconds, "steps": count[0] * envs,
            "first_steps_per_s": rates[0], "last_steps_per_s": rates[-1],
            "drift": rates[-1] / rates[0] - 1.0, "rss_start_mb": rss0, "rss_end_mb": rss1,
            "rss_growth_mb": rss1 - rss0, "fds_start": fds0, "fds_end": open_fds(),
            "children_left": len(children())}  # fmt: skip


def soak_thor(seconds: float, size: int = 64, interval: float = 10.0) -> dict[str, Any]:
    from thorgym.sim.fifo_server import ai2thor_controller

    fds0 = open_fds()
    kids0 = set(children())
    client = ai2thor_controller(scene=_SCENES[0], width=size, height=size)
    server = [p for p in children() if p not in kids0]
    actions = ("MoveAhead", "RotateRight", "LookDown", "LookUp")
    count = [0]

    def step() -> int:
        client.step(action=actions[count[0] % len(actions)])
        count[0] += 1
        if count[0] % 100 == 0:
            client.reset(_SCENES[(count[0] // 100) % len(_SCENES)])
        return 1

    try:
        _loop(step, min(5.0, seconds / 4), interval)
        rss0 = rss_mb()
        srv0 = sum(rss_mb(p) for p in server)
        rates = _loop(step, seconds, interval)
        rss1 = rss_mb()
        srv1 = sum(rss_mb(p) for p in server)
    finally:
        client.stop()
    time.sleep(0.5)
    left = [p for p in children() if p not in kids0]
    return {"part": "thor", "envs": 1, "size": size, "seconds": seconds, "steps": count[0],
            "first_steps_per_s": rates[0], "last_steps_per_s": rates[-1],
            "drift": rates[-1] / rates[0] - 1.0, "rss_start_mb": rss0, "rss_end_mb": rss1,
            "rss_growth_mb": rss1 - rss0, "server_rss_start_mb": srv0, "server_rss_end_mb": srv1,
            "server_rss_growth_mb": srv1 - srv0, "fds_start": fds0, "fds_end": open_fds(),
            "children_left": len(left)}  # fmt: skip


def run(
    minutes: float = 10.0, envs: int = 16, size: int = 64, interval: float = 10.0
) -> list[dict[str, Any]]:
    """Both parts, each for half of ``minutes``; ``interval`` seconds per steps/s sample."""
    if minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {minutes}")
    half = 30.0 * minutes
    interval = min(interval, half / 2)
    return [soak_sim(half, envs, size, interval), soak_thor(half, size, interval)]


def format_table(records: list[dict[str, Any]]) -> str:
    cols = ["part", "seconds", "steps", "steps/s first", "steps/s last", "drift", "RSS start→end MiB",
            "server RSS MiB", "fds", "children left"]  # fmt: skip
    rows = []
    for r in records:
        server = (f"{r['server_rss_start_mb']:.0f}→{r['server_rss_end_mb']:.0f}"
                  if "server_rss_start_mb" in r else "—")  # fmt: skip
        rows.append([r["part"], f"{r['seconds']:.0f}", str(r["steps"]), f"{r['first_steps_per_s']:.0f}",
                     f"{r['last_steps_per_s']:.0f}", f"{100 * r['drift']:+.1f}%",
                     f"{r['rss_start_mb']:.0f}→{r['rss_end_mb']:.0f}", server,
                     f"{r['fds_start']}→{r['fds_end']}", str(r["children_left"])])  # fmt: skip
    return "\n".join(text_table(cols, rows))
