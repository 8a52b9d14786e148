"""The task-aware agent registry: every (task, agent) entry resolves, the CLI's flags become each
task's typed arguments, unknown combinations are clear errors, and `thorgym train` / `thorgym
eval` of a two-body agent run through it end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thorgym.agents.registry import agent_names, get_agent, get_task, task_names
from thorgym.agents.train_args import TrainArgs, TrainOptions
from thorgym.cli import app

EXPECTED = {
    "objectnav": {"ppo-sb3", "ppo-ff", "ppo", "savn", "nonadaptive", "random", "oracle"},
    "iqa": {"himn", "ppo", "random"},
    "furnlift": {"tbone", "random", "expert"},
    "furnmove": {"tbone", "random", "expert"},
}


def test_every_task_and_agent_resolves():
    assert set(task_names()) >= set(EXPECTED)
    for task, names in EXPECTED.items():
        assert set(agent_names(task)) == names
        spec = get_task(task)
        assert spec.name == task and spec.description
        default = get_agent(spec.default_agent, task)
        assert default.train is not None, f"{task}'s default agent must be trainable"
        for name in agent_names(task):
            agent = get_agent(name, task)
            assert agent.name == name and agent.task == task and agent.description
            assert callable(agent.load_policy) or callable(agent.evaluate)
            assert agent.train is None or callable(agent.train)
            if agent.needs_checkpoint:
                assert agent.checkpoint_suffix == ".pt" or agent.checkpoint_suffix == ".zip"
    # one name, one entry per task: ObjectNav's random is a policy, IQA's an evaluator
    assert get_agent("random").load_policy is not None and get_agent("random", "iqa").evaluate is not None


def test_unknown_tasks_and_agents_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown task 'nope'") as e:
        get_task("nope")
    assert all(t in str(e.value) for t in EXPECTED)
    with pytest.raises(ValueError, match="unknown agent 'savn' for furnlift") as e:
        get_agent("savn", "furnlift")
    assert "tbone, random, expert" in str(e.value)
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_agent("random", "nope")
    with pytest.raises(ValueError, match="no evaluator"):
        get_agent("ppo").run_evaluation(None)


def _options(task: str, agent: str, tmp: Path, **kw) -> TrainOptions:
    return TrainOptions(task=task, agent=agent, out=tmp, **kw)


def test_flags_become_each_tasks_typed_arguments(tmp_path):
    nav = get_task("objectnav").train_args(
        _options("objectnav", "ppo", tmp_path, size=32, rollout=8, steps=64)
    )
    assert isinstance(nav, TrainArgs)
    assert (nav.width, nav.height, nav.n_steps, nav.steps) == (32, 32, 8, 64)
    assert {"width", "height", "n_steps", "steps"} <= nav.explicit
    preset = get_task("objectnav").train_args(_options("objectnav", "ppo", tmp_path, preset="cpu30", envs=4))
    assert preset.envs == 4 and preset.steps == 5_000_000  # the flag beats the preset, the preset the default

    from thorgym.agents.himn.trainer import IQATrainArgs

    q = str(tmp_path / "train.csv")
    iqa = get_task("iqa").train_args(_options("iqa", "himn", tmp_path, questions=q, size=32, epochs=2))
    assert isinstance(iqa, IQATrainArgs)
    assert (iqa.agent, iqa.questions, iqa.size, iqa.epochs) == ("himn", q, 32, 2)
    assert iqa.steps == IQATrainArgs().steps  # not given: the trainer's default
    with pytest.raises(ValueError, match="needs --questions"):
        get_task("iqa").train_args(_options("iqa", "ppo", tmp_path))

    from thorgym.agents.tbone.trainer import FurnitureTrainArgs

    fur = get_task("furnmove").train_args(
        _options("furnmove", "tbone", tmp_path, comm="both", policy="sync", hidden=16, top_down_map=True)
    )
    assert isinstance(fur, FurnitureTrainArgs)
    assert (fur.task, fur.comm, fur.policy, fur.hidden, fur.top_down_map) == (
        "furnmove",
        "both",
        "sync",
        16,
        True,
    )
    with pytest.raises(ValueError, match="--comm must be one of"):
        get_task("furnlift").train_args(_options("furnlift", "tbone", tmp_path, comm="telepathy"))


def test_cli_names_unknown_combinations(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "forces-nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown task 'forces-nope'" in res.output and "furnmove" in res.output
    res = runner.invoke(app, ["train", "furnlift", "--agent", "savn", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown agent 'savn' for furnlift" in res.output and "tbone" in res.output
    res = runner.invoke(app, ["train", "furnmove", "--agent", "expert", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "nothing to train" in res.output
    res = runner.invoke(app, ["eval", "iqa", "--agent", "tbone", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown agent 'tbone' for iqa" in res.output and "himn" in res.output
    res = runner.invoke(app, ["eval", "furnmove", "--agent", "oracle", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "choose one of tbone, random, expert" in res.output
    assert not list(tmp_path.iterdir())


def test_cli_trains_and_evaluates_tbone_through_the_registry(tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["train", "furnlift", "--envs", "2", "--steps", "20", "--size", "32", "--hidden", "16",
         "--rollout", "10", "--checkpoint-every", "20", "--out", str(run), "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"wrote {run / 'final.pt'}" in res.output and (run / "final.pt").is_file()
    args = json.loads((run / "args.json").read_text())
    assert (args["task"], args["size"], args["hidden"], args["steps"]) == ("furnlift", 32, 16, 20)
    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        ["eval", "furnlift", "--checkpoint", str(run), "--episodes", "2", "--envs", "2", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "tbone on 2 test furnlift episodes: success" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["agent"] == "tbone" and metrics["episodes"] == 2
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 2
