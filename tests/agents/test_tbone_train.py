"""The tbone trainer and evaluator on tiny budgets: CLI train/eval, checkpoints, resume after a
kill, reproducibility, random and expert baselines, videos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from thorgym.agents.tbone.evaluate import evaluate_furniture
from thorgym.agents.tbone.trainer import FurnitureTrainArgs, load_model, train_furniture

S = 32


def _args(tmp: Path, **kw) -> FurnitureTrainArgs:
    base = dict(
        envs=2, steps=200, size=S, hidden=32, rollout=10, out=tmp, progress=False, checkpoint_every=100
    )
    base.update(kw)
    return FurnitureTrainArgs(**base)


@pytest.mark.parametrize(
    ("task", "comm", "policy", "top_down_map"),
    [("furnlift", "both", "marginal", False), ("furnmove", "explicit", "sync", True)],
)
def test_tiny_train_then_eval_writes_metrics_and_video(tmp_path, task, comm, policy, top_down_map):
    args = _args(tmp_path / "run", task=task, comm=comm, policy=policy, top_down_map=top_down_map)
    final = train_furniture(args)
    assert final.is_file() and (tmp_path / "run" / "checkpoints").is_dir()
    model, ckpt = load_model(final)
    assert ckpt["state"]["steps"] == 200 and model.cfg.policy == policy
    assert model.cfg.extra_channels == (4 if top_down_map else 0)
    m = evaluate_furniture(
        task=task,
        agent="tbone",
        checkpoint=tmp_path / "run",
        episodes=2,
        envs=2,
        out=tmp_path / "eval",
        video=1,
        max_steps=30,
    )
    assert m["episodes"] == 2 and 0.0 <= m["success"] <= 100.0
    assert 0.0 <= m["invalid_mass"] <= 1.0 and m["tvd"] >= 0.0
    lines = (tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(x)["episode"] for x in lines] == [0, 1]
    assert list((tmp_path / "eval").glob("*.mp4"))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["agent"] == "tbone"


def test_training_is_reproducible(tmp_path):
    a = train_furniture(_args(tmp_path / "a", steps=60))
    b = train_furniture(_args(tmp_path / "b", steps=60))
    sa, sb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_expert_and_random_baselines_on_the_same_episodes(tmp_path):
    kw = {"task": "furnlift", "episodes": 4, "envs": 2, "size": S, "max_steps": 120}
    e = evaluate_furniture(agent="expert", out=tmp_path / "e", **kw)
    r = evaluate_furniture(agent="random", out=tmp_path / "r", **kw)
    assert e["success"] == 100.0 and e["episodes"] == r["episodes"] == 4
    assert r["success"] <= e["success"]


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match="--comm must be one of"):
        train_furniture(_args(tmp_path, comm="telepathy"))
    with pytest.raises(ValueError, match="needs --checkpoint"):
        evaluate_furniture(task="furnlift", agent="tbone", out=tmp_path)
    with pytest.raises(ValueError, match="not a tbone checkpoint"):
        bad = tmp_path / "x.pt"
        torch.save({"format": "other"}, bad)
        load_model(bad)


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "thorgym",
        "train",
        "furnlift",
        "--envs",
        "2",
        "--steps",
        "100000",
        "--size",
        str(S),
        "--hidden",
        "32",
        "--rollout",
        "10",
        "--checkpoint-every",
        "40",
        "--out",
        str(out),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list((out / "checkpoints").glob("ckpt_*.pt"))) < 2:
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ckpts = sorted((out / "checkpoints").glob("ckpt_*.pt"))
    assert len(ckpts) >= 2, "no checkpoints written before the kill"
    last = load_model(ckpts[-1])[1]["state"]["steps"]
    cmd[cmd.index("100000")] = str(last + 40)
    subprocess.run([*cmd, "--resume"], env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    assert load_model(out / "final.pt")[1]["state"]["steps"] >= last + 40
