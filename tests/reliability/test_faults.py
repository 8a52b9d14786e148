"""Faults (#16): SIGTERM during training then ``--resume``; SIGKILL at random points of every data
generator that writes files, then a rerun; a full disk (ENOSPC) during checkpoint and dataset
writes.

What must hold: SIGTERM costs at most the update in progress (a checkpoint is saved, the process
exits with status 143 and ``--resume`` continues from it); a killed generator leaves under the
final names only files identical to an uninterrupted run's, and a rerun produces the same bytes
(and removes the temporary files the killed process could not); a failed write leaves the
previous file intact, no temporary file, and an ``OSError`` (errno kept) naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from thorgym.cli import app
from thorgym.rundir import EXIT_TERMINATED, RunDir

runner = CliRunner()
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY_PPO = ["--envs", "2", "--size", "64", "--max-steps", "20", "--no-progress", "--backbone", "cnn_small"]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the process exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def _no_temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def _sigterm_then_resume(tmp: Path, train: list[str], ext: str, more: int) -> tuple[Path, dict[str, Any]]:
    """Run ``thorgym train ...`` (with a budget it will not reach), SIGTERM it as soon as it is
    set up, check the checkpoint it leaves, then ``--resume`` with ``more`` steps beyond it."""
    out = tmp / "run"
    cmd = [*train, "--steps", "100000", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "thorgym.cli", *cmd], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(out / "args.json", proc)  # written once the SIGTERM handler is in place
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("training did not stop within 240 s of SIGTERM")
    assert proc.returncode == EXIT_TERMINATED, f"exit {proc.returncode}\n{stdout}\n{stderr[-3000:]}"
    assert "stopped by SIGTERM" in stdout and "--resume" in stdout, stdout
    assert "Traceback" not in stderr, stderr[-3000:]
    ckpts = sorted((out / "checkpoints").glob(f"ckpt_*{ext}"))
    assert len(ckpts) == 1 and not (out / f"final{ext}").exists(), sorted(out.rglob("*"))
    assert not _no_temp_files(out)
    steps = int(ckpts[0].stem.split("_")[1])
    assert steps > 0
    cmd[cmd.index("--steps") + 1] = str(steps + more)
    res = runner.invoke(app, [*cmd, "--resume"])
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    assert (out / f"final{ext}").exists()
    return ckpts[0], {"steps": steps, "output": res.output, "out": out}


def _objectnav(agent: str, *extra: str) -> list[str]:
    return ["train", "objectnav", "--agent", agent, "--checkpoint-every", "100000", *TINY_PPO, *extra]


def test_sigterm_during_ppo_training_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    train = _objectnav("ppo", "--scenes", "FloorPlan401,FloorPlan402")
    ckpt, r = _sigterm_then_resume(tmp_path, train, ".pt", 256)
    saved = torch.load(ckpt, weights_only=True)
    final = torch.load(r["out"] / "final.pt", weights_only=True)
    assert saved["global_step"] == r["steps"]
    assert final["iteration"] == saved["iteration"] + 1, "resume restarted instead of continuing"
    assert final["global_step"] == r["steps"] + 256


@pytest.mark.slow
def test_sigterm_during_sb3_training_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    ckpt, r = _sigterm_then_resume(tmp_path, _objectnav("ppo-ff"), ".zip", 256)
    assert f"resuming from {ckpt}" in r["output"]
    meta = json.loads((r["out"] / "final.json").read_text())
    assert r["steps"] < meta["num_timesteps"] <= r["steps"] + 256 + 256


@pytest.mark.slow
def test_sigterm_during_tbone_training_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    from thorgym.agents.tbone.trainer import load_model

    train = ["train", "furnlift", "--envs", "2", "--size", "32", "--hidden", "32", "--rollout", "10",
             "--checkpoint-every", "100000", "--no-progress"]  # fmt: skip
    ckpt, r = _sigterm_then_resume(tmp_path, train, ".pt", 40)
    assert "resumed from" in r["output"]
    assert load_model(r["out"] / "final.pt")[1]["state"]["steps"] >= r["steps"] + 40


@pytest.mark.slow
def test_sigterm_during_iqa_training_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    from thorgym.agents.himn.trainer import load_checkpoint
    from thorgym.atomic import write_text_atomic
    from thorgym.datasets.iqa import shipped_questions
    from thorgym.tasks import iqa

    questions = write_text_atomic(tmp_path / "train.csv", iqa.questions_csv(shipped_questions("seen")[:24]))
    train = ["train", "iqa", "--agent", "ppo", "--questions", str(questions), "--envs", "2", "--size", "32",
             "--rollout", "16", "--epochs", "1", "--checkpoint-every", "100000", "--no-progress"]  # fmt: skip
    ckpt, r = _sigterm_then_resume(tmp_path, train, ".pt", 32)
    assert "resumed from" in r["output"]
    assert load_checkpoint(r["out"] / "final.pt")["steps"] >= r["steps"] + 32


def test_second_sigterm_ends_the_process_at_once(tmp_path: Path) -> None:
    """A trainer stuck before its next safe point can still be stopped."""
    code = ("import time; from thorgym.rundir import stop_on_sigterm\n"
            "with stop_on_sigterm():\n    print('ready', flush=True)\n    time.sleep(60)\n")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None, "the first SIGTERM should only request a stop"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM


# -- SIGKILL during data generation ---------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file, temporary files excluded."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".tmp" not in p.name}  # fmt: skip


# name -> (command writing into OUT, the output folder within OUT)
GENERATORS: dict[str, Callable[[Path], list[str]]] = {
    "thorgym data kqa": lambda out: [sys.executable, "-m", "thorgym.cli", "data", "kqa", "--out", str(out),
                                     "--train-scenes", "1", "--test-scenes", "1", "--images-per-scene", "2",
                                     "--size", "64", "--no-baselines"],
    "thorgym data iqa": lambda out: [sys.executable, "-m", "thorgym.cli", "data", "iqa", "--out", str(out),
                                     "--per-type", "4", "--splits", "seen,unseen"],
    "objectnav episodes": lambda out: [sys.executable, "-m", "thorgym.datasets.objectnav", "val", "10",
                                       "--out", str(out / "val.json.gz")],
    "furniture episodes": lambda out: [sys.executable, "-m", "thorgym.datasets.furniture", "furnlift", "test",
                                       "4", "--out", str(out / "test.json.gz")],
}  # fmt: skip


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[dict[str, str], float]]]:
    """Uninterrupted runs, made on demand: name -> (tree, seconds)."""
    cache: dict[str, tuple[dict[str, str], float]] = {}

    class Lazy(dict):
        def __missing__(self, name: str) -> tuple[dict[str, str], float]:
            out = tmp_path_factory.mktemp("ref")
            t0 = time.monotonic()
            subprocess.run(GENERATORS[name](out), env=ENV, check=True, capture_output=True, timeout=600)
            cache[name] = (_tree(out), time.monotonic() - t0)
            assert cache[name][0], f"{name} wrote nothing"
            return cache[name]

    yield Lazy()


def _rerun(cmd: list[str]) -> None:
    """Run a generator command again, in this process (saves an interpreter start-up)."""
    if cmd[1:3] == ["-m", "thorgym.cli"]:
        res = runner.invoke(app, cmd[3:])
        assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
        return
    import importlib

    assert importlib.import_module(cmd[2]).main(cmd[3:]) == 0


def _kill_then_rerun(name: str, reference: tuple[dict[str, str], float], tmp: Path, when: float) -> None:
    tree, seconds = reference
    out = tmp / "out"
    out.mkdir()
    proc = subprocess.Popen(
        GENERATORS[name](out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(when * seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = _tree(out)
    for rel, digest in left.items():  # whatever is under a final name is complete and right
        assert tree.get(rel) == digest, f"{name} killed at {when:.2f}: partial or wrong file {rel}"
    _rerun(GENERATORS[name](out))
    assert _tree(out) == tree, (
        f"{name}: the rerun after a kill at {when:.2f} differs from an uninterrupted run"
    )
    assert not _no_temp_files(out), f"{name}: temporary files left: {_no_temp_files(out)}"


def test_sigkill_during_kqa_generation_then_rerun(references: Any, tmp_path: Path) -> None:
    when = float(np.random.default_rng(16).uniform(0.5, 0.95))
    _kill_then_rerun("thorgym data kqa", references["thorgym data kqa"], tmp_path, when)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_points_of_every_generator(
    references: Any, tmp_path: Path, name: str, seed: int
) -> None:
    when = float(np.random.default_rng(seed).uniform(0.2, 1.0))
    _kill_then_rerun(name, references[name], tmp_path, when)


# -- a full disk ------------------------------------------------------------------------------------
class _FullDisk(io.BufferedWriter):
    """A file whose writes fail with ENOSPC once ``room`` bytes are written (as a full disk does)."""

    def __init__(self, fd: int, room: int) -> None:
        super().__init__(io.FileIO(fd, "wb"))
        self.room = room

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= size
        return super().write(data)


@pytest.fixture(params=[0, 100], ids=["no room", "100 bytes of room"])
def full_disk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call the returned function to make thorgym.atomic's writes run out of space."""
    import thorgym.atomic as atomic

    def start() -> None:
        monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode="wb": _FullDisk(fd, request.param))

    return start


def _check_enospc(path: Path, write: Callable[[], object], start: Callable[[], None]) -> None:
    before = path.read_bytes()
    start()
    with pytest.raises(OSError) as err:
        write()
    assert err.value.errno == errno.ENOSPC
    assert str(path) in str(err.value) and "unchanged" in str(err.value), err.value
    assert path.read_bytes() == before, "the previous file was damaged"
    assert not _no_temp_files(path.parent), _no_temp_files(path.parent)


def test_enospc_during_a_torch_checkpoint_write(tmp_path: Path, full_disk: Callable[[], None]) -> None:
    from thorgym.agents.backbones.checkpoint import save_torch_atomic

    path = save_torch_atomic({"format": "x", "w": torch.ones(100)}, tmp_path / "checkpoints" / "ckpt_1.pt")
    _check_enospc(path, lambda: save_torch_atomic({"format": "x", "w": torch.zeros(10_000)}, path), full_disk)
    assert torch.load(path, weights_only=True)["w"].sum() == 100


def test_enospc_during_an_sb3_checkpoint_write(tmp_path: Path, full_disk: Callable[[], None]) -> None:
    import gymnasium as gym
    from stable_baselines3 import PPO

    run = RunDir(tmp_path, ".zip")
    model = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=16, batch_size=16, device="cpu")
    path = run.write_checkpoint(run.checkpoint(16), model.save, {"num_timesteps": 16})
    _check_enospc(path, lambda: run.write_checkpoint(path, model.save, {"num_timesteps": 32}), full_disk)
    assert json.loads(path.with_suffix(".json").read_text())["num_timesteps"] == 16


def test_enospc_during_a_run_checkpoint_written_by_torch_save(
    tmp_path: Path, full_disk: Callable[[], None]
) -> None:
    """How the HIMN/IQA and SAVN trainers write (``RunDir.write_checkpoint`` + ``torch.save``)."""
    run = RunDir(tmp_path, ".pt")
    path = run.write_checkpoint(run.checkpoint(1), lambda f: torch.save({"w": torch.ones(10)}, f))
    _check_enospc(path, lambda: run.write_checkpoint(path, lambda f: torch.save({"w": torch.zeros(9999)}, f)),
                  full_disk)  # fmt: skip
    assert torch.load(path, weights_only=True)["w"].sum() == 10


def test_enospc_during_dataset_writes(tmp_path: Path, full_disk: Callable[[], None]) -> None:
    from thorgym.atomic import write_text_atomic
    from thorgym.datasets.episode_files import read_episodes, save_episodes
    from thorgym.tasks.iqa import read_questions

    episodes = tmp_path / "val.json.gz"
    save_episodes([{"scene": "FloorPlan401", "target": "Towel", "position": [0, 0.9, 0]}], episodes)
    csv = tmp_path / "unseen.csv"
    header = "question_type,scene_number,seed,question,answer,object_id,container_id"
    write_text_atomic(csv, f"{header}\nexistence,1,0,Is there an apple?,1,1,-1\n")
    big = [{"scene": "FloorPlan401", "target": "Towel", "position": [i, 0.9, 0]} for i in range(2000)]
    _check_enospc(episodes, lambda: save_episodes(big, episodes), full_disk)
    _check_enospc(
        csv, lambda: write_text_atomic(csv, header + "\n" + "existence,1,0,q,1,1,-1\n" * 500), lambda: None
    )
    assert len(read_episodes(episodes)) == 1 and len(read_questions(str(csv))) == 1


def test_enospc_during_kqa_generation_is_a_clear_cli_error(
    tmp_path: Path, full_disk: Callable[[], None]
) -> None:
    full_disk()
    small = ["--train-scenes", "1", "--test-scenes", "1", "--images-per-scene", "1", "--size", "32"]
    res = runner.invoke(app, ["data", "kqa", "--out", str(tmp_path), *small, "--no-baselines"])
    assert res.exit_code == 1 and "Traceback" not in res.output, f"{res.output}\n{res.exception!r}"
    assert "No space left on device" in res.output and str(tmp_path) in res.output, res.output
    assert not _no_temp_files(tmp_path)


def test_the_next_write_removes_temporaries_of_dead_writers_only(tmp_path: Path) -> None:
    """What a writer killed mid-write leaves behind is cleaned up; a live writer's file is not."""
    from thorgym.atomic import write_text_atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".data.json.{dead.pid}.k3x9q.tmp"
    live = tmp_path / f".data.json.{os.getppid()}.a8b7c.tmp"  # our parent: alive, maybe writing
    other = tmp_path / f".other.json.{dead.pid}.zz1.tmp"  # another target: left for its own write
    for p in (stale, live, other):
        p.write_text("partial")
    write_text_atomic(tmp_path / "data.json", "{}")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "data.json").read_text() == "{}"


def test_sigterm_during_forces_training_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    from thorgym.agents.forces.trainer import load_checkpoint
    from thorgym.datasets.forces import generate_forces

    data = tmp_path / "data"
    generate_forces(data, scenes=["FloorPlan1", "FloorPlan221"], n=4, seed=0, size=64, progress=False)
    train = ["train", "forces", "--data", str(data), "--batch-size", "4", "--checkpoint-every", "100000",
             "--no-progress"]  # fmt: skip
    ckpt, r = _sigterm_then_resume(tmp_path, train, ".pt", 5)
    assert load_checkpoint(ckpt)["step"] == r["steps"]
    resumed = r["out"] / "checkpoints" / f"ckpt_{r['steps'] + 5:010d}.pt"
    assert load_checkpoint(resumed)["step"] == r["steps"] + 5  # continued, not restarted
