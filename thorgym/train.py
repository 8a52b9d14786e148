"""`thorgym train`: look the agent up in the registry and run its trainer; several seeds in
parallel processes (``--seeds``), each with its own run directory ``OUT/seed_<s>``.

The trainers live with their agents (:mod:`thorgym.agents.registry` lists them); the run layout,
resume, logs, curves and device/thread choice are :mod:`thorgym.rundir`'s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from thorgym.agents.registry import get_agent
from thorgym.agents.sb3_ppo import build_model, make_vec_env
from thorgym.agents.train_args import PRESETS, TrainArgs
from thorgym.rundir import last_line, read_scalars

__all__ = ["PRESETS", "SeedResult", "TrainArgs", "build_model", "make_vec_env", "train", "train_seeds"]

TASKS = ("objectnav",)


def _check(args: TrainArgs) -> TrainArgs:
    if args.task not in TASKS:
        raise ValueError(f"unknown task {args.task!r}: thorgym train supports {', '.join(TASKS)}")
    return args.checked()


def _trainer(args: TrainArgs) -> Callable[[TrainArgs], Path]:
    spec = get_agent(args.agent, args.task)
    if spec.train is None:
        raise ValueError(f"agent {args.agent!r} has nothing to train: it is an evaluation baseline")
    return spec.train


def train(args: TrainArgs) -> Path:
    """Train (or resume) ``args.agent`` and return the final checkpoint path."""
    args = _check(args)
    return _trainer(args)(args)


@dataclass(frozen=True)
class SeedResult:
    """How one seed's process ended: its run directory, exit code and final output line."""

    seed: int
    out: Path
    returncode: int
    final_line: str


def train_seeds(args: TrainArgs, seeds: Sequence[int]) -> list[SeedResult]:
    """Train ``args`` once per seed, all seeds at once in separate processes (each with
    ``args.threads`` threads) into ``OUT/seed_<s>``; waits for all and returns how each ended.
    Each process's output goes to ``OUT/seed_<s>/train.log``."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct seeds, e.g. 0,1,2; got {list(seeds)}")
    args = _check(args)
    _trainer(args)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    procs: list[tuple[int, Path, subprocess.Popen[bytes]]] = []
    try:
        for s in seeds:
            out = args.out / f"seed_{s}"
            out.mkdir(parents=True, exist_ok=True)
            one = dataclasses.replace(args, seed=s, out=out, progress=False)
            # which fields were given travels along: the agent's own defaults apply to the others
            given = sorted(k for k in one.to_json() if one.given(k))
            cmd = [sys.executable, "-m", "thorgym.train", json.dumps({**one.to_json(), "explicit": given})]
            with open(out / "train.log", "wb") as log:
                procs.append((s, out, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)))
        for _, _, p in procs:
            p.wait()
    finally:
        for _, _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [SeedResult(s, out, p.returncode, last_line(out / "train.log")) for s, out, p in procs]


def summary_line(args: TrainArgs, final: Path) -> str:
    """One line on a finished run: seed, final checkpoint, last logged success and SPL."""
    parts = [f"seed {args.seed}: wrote {final}"]
    for tag, label in (("objectnav/success", "success"), ("objectnav/spl", "spl")):
        steps, values = read_scalars(args.out, tag)
        if len(values):
            parts.append(f"{label} {values[-1]:.3f} at {int(steps[-1])} steps")
    return ", ".join(parts)


def _main(argv: Sequence[str]) -> int:
    """One seed of :func:`train_seeds`: ``python -m thorgym.train ARGS_JSON``."""
    if len(argv) != 1:
        print("usage: python -m thorgym.train '<TrainArgs JSON>'", file=sys.stderr)
        return 2
    args = TrainArgs.from_json(json.loads(argv[0]))
    try:
        final = train(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}")
        return 2
    print(summary_line(args, final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
