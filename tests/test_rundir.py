"""thorgym.rundir: run layout, checkpoint lookup, atomic checkpoint writes, device and threads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thorgym.agents.train_args import TrainArgs
from thorgym.rundir import (
    RunDir,
    checkpoint_steps,
    last_line,
    resolve_checkpoint,
    resolve_device,
    set_threads,
)


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_layout_and_latest_checkpoint_by_steps(tmp_path):
    run = RunDir(tmp_path, ".pt")
    assert run.checkpoint(1280) == tmp_path / "checkpoints" / "ckpt_0000001280.pt"
    assert run.final == tmp_path / "final.pt" and run.args_file == tmp_path / "args.json"
    assert run.latest_checkpoint() is None
    _touch(tmp_path / "checkpoints" / "ckpt_9.pt")
    _touch(tmp_path / "checkpoints" / "ckpt_10.pt")  # unpadded names sort by steps, not text
    _touch(tmp_path / "checkpoints" / "ckpt_99.zip")  # another format is not this run's
    assert run.latest_checkpoint() == tmp_path / "checkpoints" / "ckpt_10.pt"
    assert checkpoint_steps(run.checkpoint(42)) == 42
    assert run.next_checkpoint(0, 128) == 128 and run.next_checkpoint(128, 128) == 256
    with pytest.raises(ValueError, match="--checkpoint-every"):
        run.next_checkpoint(0, 0)
    with pytest.raises(ValueError, match="dot"):
        RunDir(tmp_path, "pt")


def test_resume_from(tmp_path, capsys):
    run = RunDir(tmp_path, ".zip")
    assert run.resume_from(False) is None
    assert run.resume_from(True) is None and "starting from scratch" in capsys.readouterr().out
    ck = _touch(run.checkpoint(256))
    assert run.resume_from(True) == ck


def test_write_checkpoint_is_atomic_with_meta(tmp_path):
    run = RunDir(tmp_path, ".zip")
    path = run.write_checkpoint(run.checkpoint(5), lambda f: f.write(b"payload"), {"num_timesteps": 5})
    assert path.read_bytes() == b"payload"
    assert json.loads(path.with_suffix(".json").read_text()) == {"num_timesteps": 5}

    def broken(f):
        f.write(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run.write_checkpoint(path, broken)
    assert path.read_bytes() == b"payload"
    names = sorted(p.name for p in run.checkpoints.iterdir())
    assert names == sorted([path.name, path.with_suffix(".json").name])


def test_resolve_checkpoint(tmp_path):
    f = _touch(tmp_path / "a.zip")
    assert resolve_checkpoint(f) == f
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing.zip")
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint in run directory"):
        resolve_checkpoint(run)
    ck = _touch(run / "checkpoints" / "ckpt_0000000128.pt")
    assert resolve_checkpoint(run) == ck
    with pytest.raises(FileNotFoundError, match=r"final\.zip"):
        resolve_checkpoint(run, (".zip",))
    final = _touch(run / "final.pt")
    assert resolve_checkpoint(run) == final


def test_resolve_device_and_threads():
    import torch

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="--threads"):
        set_threads(0)


def test_train_args_round_trip_and_env_id(tmp_path):
    args = TrainArgs(agent="savn", out=tmp_path, room_types=("Kitchen",), threads=2, env_version="v1")
    back = TrainArgs.from_json(json.loads(json.dumps(args.to_json())))
    assert back.to_json() == args.to_json() and back.env_id == "thorgym/ObjectNav-v1"
    with pytest.raises(ValueError, match="unknown TrainArgs fields"):
        TrainArgs.from_json({"nope": 1})
    with pytest.raises(ValueError, match="--env-version"):
        _ = TrainArgs(env_version="latest").env_id


def test_last_line(tmp_path):
    log = tmp_path / "train.log"
    assert last_line(log) == ""
    log.write_text("a\n 50%|##\r100%|###\nseed 0: wrote x\n\n")
    assert last_line(log) == "seed 0: wrote x"
