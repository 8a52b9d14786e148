"""HIMN: the navigator's geometry, and train → checkpoint → resume → eval on a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from thorgym.agents.himn import navigator as nav
from thorgym.agents.himn.evaluate import evaluate_iqa
from thorgym.agents.himn.models import NUM_HIGH_LEVEL, Answerer, Planner
from thorgym.agents.himn.trainer import IQATrainArgs, load_checkpoint, train_iqa
from thorgym.atomic import write_text_atomic
from thorgym.datasets.iqa import shipped_questions
from thorgym.tasks import iqa


def test_goal_cells_follow_the_heading():
    # yaw 0 faces +z (row + 1), the right is +x (column + 1)
    g = nav.goal_cells((10, 10), 0.0)
    assert tuple(g[2]) == (11, 10)  # straight ahead, one cell
    assert tuple(g[3]) == (11, 11)  # one to the right
    g = nav.goal_cells((10, 10), 90.0)  # facing +x: the right is -z
    assert tuple(g[2]) == (10, 11) and tuple(g[3]) == (9, 11)


def test_path_actions_turn_then_move_and_respect_obstacles():
    free = np.zeros((7, 7), dtype=bool)
    free[3, 1:6] = True  # a corridor along +x
    free[1:4, 5] = True
    dist = nav.distances(free, (3, 1))
    assert dist[3, 5] == 4 and dist[1, 5] == 6 and dist[0, 0] == -1
    acts = nav.path_actions(dist, (3, 5), yaw=0.0)
    assert acts == ["RotateRight", "MoveAhead", "MoveAhead", "MoveAhead", "MoveAhead"]
    acts = nav.path_actions(dist, (1, 5), yaw=90.0)
    assert acts[:4] == ["MoveAhead"] * 4 and acts[4] == "RotateRight" and acts.count("MoveAhead") == 6
    assert nav.path_actions(dist, (0, 0), 0.0) == []
    assert len(nav.plan(free, (3, 1), 90.0)) == nav.NUM_GOALS


def test_networks_mask_and_shapes():
    p = Planner()
    mask = torch.zeros(2, NUM_HIGH_LEVEL, dtype=torch.bool)
    mask[:, 25] = True
    logits, v, h = p(
        torch.zeros(2, 28, 33, 33), torch.zeros(2, 50), torch.zeros(2, 4), torch.zeros(2, 64), mask
    )
    assert logits.argmax(-1).tolist() == [25, 25] and v.shape == (2,) and h.shape == (2, 64)
    a = Answerer()
    out = a(
        torch.zeros(3, 24, 64, 64), torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([0, 0, 19])
    )
    assert out.shape == (3, 4) and (out[[0, 2], 2:] < -1e8).all() and (out[1] > -1e8).all()


@pytest.fixture(scope="module")
def questions_csv(tmp_path_factory) -> str:
    qs = shipped_questions("seen")[:24]
    path = tmp_path_factory.mktemp("iqa") / "train.csv"
    write_text_atomic(path, iqa.questions_csv(qs))
    return str(path)


def _args(agent: str, questions: str, out: Path, steps: int) -> IQATrainArgs:
    return IQATrainArgs(agent=agent, questions=questions, out=out, envs=3, steps=steps, size=32, rollout=16,
                        epochs=1, answerer_steps=150, answerer_epochs=1, checkpoint_every=48,
                        progress=False)  # fmt: skip


@pytest.mark.parametrize("agent", ["himn", "ppo"])
def test_train_checkpoint_resume_and_eval(agent, questions_csv, tmp_path):
    out = tmp_path / agent
    final = train_iqa(_args(agent, questions_csv, out, 96))
    state = load_checkpoint(final)
    assert state["agent"] == agent and state["steps"] >= 96
    assert (state["answerer"] is not None) == (agent == "himn")
    # resume continues from the newest checkpoint (a killed run loses at most the last interval)
    final2 = train_iqa(_resume(agent, questions_csv, out))
    assert load_checkpoint(final2)["steps"] >= 192
    m = evaluate_iqa(agent=agent, checkpoint=out, split="seen", questions=questions_csv, limit=3, envs=3,
                     size=32, out=tmp_path / "eval", video=1)  # fmt: skip
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["questions"] == 3 and saved["episodes"] == 3 and 0 <= saved["accuracy"] <= 100
    lines = (tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(x)["seed"] for x in lines] == [q.seed for q in iqa.read_questions(questions_csv)[:3]]
    assert (tmp_path / "eval" / "episode_0.mp4").stat().st_size > 0
    assert m["agent"] == agent


def _resume(agent: str, questions: str, out: Path) -> IQATrainArgs:
    a = _args(agent, questions, out, 192)
    a.resume = True
    return a


def test_bad_checkpoints_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable thorgym IQA checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a thorgym IQA checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(ValueError, match="needs --questions"):
        train_iqa(IQATrainArgs(agent="himn", questions=""))
    with pytest.raises(ValueError, match="unknown IQA agent"):
        train_iqa(IQATrainArgs(agent="savn", questions="x.csv"))


def test_training_resumes_after_sigkill(questions_csv, tmp_path):
    """`thorgym train iqa` killed with SIGKILL after its first checkpoint continues with --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    exe = str(Path(sys.executable).parent / "thorgym")
    cmd = [exe, "train", "iqa", "--agent", "ppo", "--questions", questions_csv, "--out", str(out),
           "--steps", "400", "--envs", "2", "--size", "32", "--rollout", "16", "--epochs", "1",
           "--checkpoint-every", "32", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while (
        not list((out / "checkpoints").glob("ckpt_*.pt")) and time.time() < deadline and proc.poll() is None
    ):
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "final.pt").exists()
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout
    assert load_checkpoint(out / "final.pt")["steps"] >= 400
    assert not [p for p in out.rglob(".*.tmp")]  # no temporary left behind
