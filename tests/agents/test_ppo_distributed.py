"""DD-PPO style training under torchrun: 2 CPU processes (gloo), each with its own seeded
environments; after training every rank holds the same parameters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import torch
    import thorgym.agents.ppo.trainer as trainer
    from thorgym.agents.ppo import PPOConfig
    from thorgym.agents.ppo.toy import CueMemoryEnv

    models = []

    class Recorded(trainer.RecurrentActorCritic):  # keep a handle on this rank's network
        def __init__(self, spec):
            super().__init__(spec)
            models.append(self)

    trainer.RecurrentActorCritic = Recorded
    out = Path(sys.argv[1])
    env = CueMemoryEnv(8)
    cfg = PPOConfig(steps=4096, rollout=16, minibatches=2, hidden=32, lr=3e-3, checkpoint_every=2048)
    trainer.train(env, cfg, out)
    rank = int(os.environ["RANK"])
    torch.save({"model": models[0].state_dict(), "cue": torch.from_numpy(env.cue)}, out / f"rank{rank}.pt")
    """
)


def _torchrun(code: str, out: Path) -> None:
    """Run ``code`` as 2 CPU processes under torchrun, with ``out`` as its argument."""
    script = out / "script.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torchrun_two_processes_keep_identical_parameters(tmp_path: Path) -> None:
    _torchrun(SCRIPT, tmp_path)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"])
    assert not torch.equal(r0["cue"], r1["cue"])  # each rank stepped its own episodes
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    assert final["world"] == 2 and final["global_step"] == 4096
    assert all(torch.equal(final["model"][k], r0["model"][k]) for k in r0["model"])
    assert (tmp_path / "checkpoints" / "ckpt_2048.pt").is_file()  # written by rank 0 only


STRAGGLER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import thorgym.agents.ppo.trainer as trainer
    from thorgym.agents.ppo import PPOConfig
    from thorgym.agents.ppo.toy import CueMemoryEnv

    class Slow(CueMemoryEnv):  # rank 0 is the straggler
        def step(self, actions):
            time.sleep(0.02)
            return super().step(actions)

    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    env = Slow(8) if rank == 0 else CueMemoryEnv(8)
    fractions = []
    cfg = PPOConfig(steps=8 * 32 * 2 * 3, rollout=32, minibatches=2, hidden=16, straggler=0.5)
    trainer.train(env, cfg, out, log=lambda s: fractions.append(s["charts/rollout_fraction"]))
    if rank == 0:
        (out / "fractions.txt").write_text(" ".join(map(str, fractions)))
    """
)


def test_straggler_preemption_ends_the_slow_rollout_early(tmp_path: Path) -> None:
    _torchrun(STRAGGLER, tmp_path)
    fractions = [float(x) for x in (tmp_path / "fractions.txt").read_text().split()]
    assert len(fractions) == 3
    # the slow rank stops once the other has finished, after at least a quarter of its rollout
    assert all(0.25 <= f < 1.0 for f in fractions), fractions
