"""The agent registry: lookups, loaders, lazy imports, and the CLI's use of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from thorgym.agents.policy import EvalContext
from thorgym.agents.registry import AgentSpec, agent_names, get_agent, register_agent
from thorgym.cli import app

EXPECTED = {"ppo-sb3", "ppo-ff", "ppo", "savn", "nonadaptive", "random", "oracle"}


def test_unknown_agent_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown agent 'nope'") as e:
        get_agent("nope")
    for name in EXPECTED:
        assert name in str(e.value)


def test_every_agent_has_a_loader_and_checkpoint_formats():
    assert EXPECTED <= set(agent_names())
    for name in agent_names():
        spec = get_agent(name)
        assert spec.name == name and callable(spec.load_policy) and spec.description
        if spec.needs_checkpoint:
            assert spec.checkpoint_suffix in (".zip", ".pt") and spec.train is not None
    assert get_agent("ppo-sb3").checkpoint_suffix == ".zip"
    assert get_agent("savn").checkpoint_suffix == ".pt"
    assert ".zip" in get_agent("ppo").checkpoint_suffixes  # older --agent ppo runs still load
    assert get_agent("random").train is None and not get_agent("oracle").needs_checkpoint


def test_duplicate_or_incomplete_registration_is_refused():
    spec = get_agent("random")
    with pytest.raises(ValueError, match="already registered"):
        register_agent(spec)
    with pytest.raises(ValueError, match="checkpoint_suffixes"):
        register_agent(AgentSpec("x-no-format", "d", None, spec.load_policy, needs_checkpoint=True))


def test_importing_the_registry_imports_neither_torch_nor_sb3():
    code = (
        "import sys, thorgym.agents.registry as r; r.agent_names(); "
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'sb3_contrib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_baseline_policies_are_batched():
    ctx = EvalContext(seed=0)
    rnd = get_agent("random").load_policy(None, ctx)
    rnd.reset(3)
    a = rnd.act({}, np.ones(3, dtype=bool), None)
    assert a.shape == (3,) and ((a >= 0) & (a < 6)).all()
    # a batch of one draws what the single-env policy drew: same metrics as before the batching
    one = get_agent("random").load_policy(None, ctx)
    ref = np.random.default_rng(0)
    assert [int(one.act({}, np.zeros(1, bool), None)[0]) for _ in range(50)] == [
        int(ref.integers(6)) for _ in range(50)
    ]
    oracle = get_agent("oracle").load_policy(None, ctx)
    with pytest.raises(ValueError, match="reads the environment"):
        oracle.act({}, np.ones(1, dtype=bool), None)
    with pytest.raises(ValueError, match="one env per row"):
        oracle.act({}, np.ones(2, dtype=bool), [object()])


def test_checkpoint_agents_need_a_checkpoint():
    for name in ("ppo-sb3", "savn", "ppo"):
        with pytest.raises(ValueError, match="--checkpoint"):
            get_agent(name).load_policy(None, EvalContext())


def test_cli_rejects_unknown_and_untrainable_agents(tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "objectnav", "--agent", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown agent 'nope'" in res.output and "ppo-sb3" in res.output
    res = runner.invoke(app, ["train", "objectnav", "--agent", "random", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "nothing to train" in res.output
    res = runner.invoke(app, ["train", "objectnav", "--env-version", "v9", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "thorgym/ObjectNav-v9 is not registered" in res.output
    res = runner.invoke(app, ["eval", "objectnav", "--agent", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown agent" in res.output
    assert not list(tmp_path.iterdir())
