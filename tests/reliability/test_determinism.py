"""Same seed, two processes: bit-identical frames, metadata, episode sets and metrics (#16)."""

from __future__ import annotations

import os
import subprocess
import sys

_SNIPPET = r"""
import hashlib, json, sys, tempfile
import numpy as np, torch
torch.set_num_threads(1)
from thorgym.sim import BatchedSimulator, Controller
from thorgym.datasets.furniture import generate_episodes
from thorgym.agents.tbone.evaluate import evaluate_furniture

h = hashlib.sha256()
sim = BatchedSimulator(["FloorPlan1", "FloorPlan201"], width=48, height=48)
rng = np.random.default_rng(7)
for _ in range(20):
    out = sim.step(torch.as_tensor(rng.integers(0, 8, size=2)))
    for t in (out.rgb, out.depth, out.instance, out.visible):
        h.update(t.numpy().tobytes())
with Controller(scene="FloorPlan301", width=48, height=48) as c:
    for a in ("MoveAhead", "RotateRight", "LookDown", "MoveAhead"):
        ev = c.step(a)
        h.update(json.dumps(ev.metadata, sort_keys=True, default=str).encode())
        h.update(ev.frame.tobytes())
h.update(json.dumps(generate_episodes("furnlift", "test", per_scene=1), sort_keys=True).encode())
with tempfile.TemporaryDirectory() as d:
    m = evaluate_furniture(task="furnlift", agent="random", episodes=2, envs=2, size=32, max_steps=20, out=d)
    h.update(json.dumps(m, sort_keys=True).encode())
print(h.hexdigest())
"""


def _digest() -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _SNIPPET], env=env, capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def test_two_processes_give_bit_identical_results():
    a, b = _digest(), _digest()
    assert len(a) == 64 and a == b
