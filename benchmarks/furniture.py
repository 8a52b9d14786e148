"""``thorgym bench furniture``: the FurnLift / FurnMove hot paths, measured in one run.

- ``env``: the batched two-agent vector env's joint steps/s (random joint actions) against the raw
  batched simulator rendering the same frames (both agents, RGB) in the same run, interleaved:
  the ratio is what the task layer costs (visibility, rules, episode resets with their planners).
- ``tbone``: the communicating model's forward passes/s for the same batch (both agents, explicit
  messages, SYNC policy), which is what the trainer adds per step before the backward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .iqa import _interleaved, _rate
from .table import text_table


def run(
    size: int = 64, envs: tuple[int, ...] = (1, 8), tasks: tuple[str, ...] = ("furnlift", "furnmove"),
    min_seconds: float = 2.0,
) -> list[dict[str, Any]]:  # fmt: skip
    from thorgym.agents.tbone import TBone
    from thorgym.agents.tbone.trainer import model_config, to_obs
    from thorgym.envs.furniture import make_furniture_vec

    torch.set_num_threads(1)
    out: list[dict[str, Any]] = []
    for task in tasks:
        for n in envs:
            venv = make_furniture_vec(n, task, width=size, height=size)
            venv.reset(seed=0)
            rng = np.random.default_rng(0)
            k = len(venv.task.action_names)

            def env_step(venv: Any = venv, n: int = n, rng: Any = rng, k: int = k) -> int:
                venv.step(rng.integers(0, k, size=(n, 2)))
                return n

            def raw_step(sim: Any = venv.worlds.sim, n: int = n) -> int:
                sim.render()  # frames and visibility of all agents, as one env step renders
                return n

            env_rate, raw_rate = _interleaved(env_step, raw_step, min_seconds)
            model = TBone(model_config(task, "explicit", "sync", size, 128))
            obs = to_obs(venv.observe_stacked(), torch.device("cpu"))
            state = model.initial_state(n)

            def model_step(model: Any = model, obs: Any = obs, state: Any = state, n: int = n) -> int:
                with torch.no_grad():
                    model(obs, state)
                return n

            model_rate = _rate(model_step, min_seconds)
            venv.close()
            out.append({
                "task": task, "envs": n, "size": size, "env_steps_per_s": env_rate,
                "raw_sim_steps_per_s": raw_rate, "env_vs_raw": env_rate / raw_rate,
                "tbone_forwards_per_s": model_rate, "threads": 1,
            })  # fmt: skip
    return out


def format_table(records: list[dict[str, Any]]) -> str:
    cols = ["task", "envs", "size", "env steps/s", "raw sim steps/s", "env/raw", "tbone forwards/s"]
    rows = [
        [r["task"], str(r["envs"]), str(r["size"]), f"{r['env_steps_per_s']:.0f}",
         f"{r['raw_sim_steps_per_s']:.0f}", f"{r['env_vs_raw']:.2f}", f"{r['tbone_forwards_per_s']:.0f}"]
        for r in records
    ]  # fmt: skip
    return "\n".join(text_table(cols, rows))
