"""Batched recurrent PPO: learning on a memory task, seeding, checkpoints, exact resume,
autoreset masking, the acting policy, and a smoke run on the real ObjectNav vector env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from thorgym.agents.ppo import (
    PPOConfig,
    RecurrentActorCritic,
    latest_checkpoint,
    load_policy,
    make_spec,
    train,
)
from thorgym.agents.ppo.toy import CueMemoryEnv, SyntheticPoseEnv
from thorgym.agents.ppo.trainer import compute_gae


def _cue_config(**kw) -> PPOConfig:
    base = dict(steps=30_000, rollout=16, epochs=4, minibatches=4, lr=3e-3, hidden=32)
    return PPOConfig(**{**base, **kw})


def _evaluate(policy, env: CueMemoryEnv, episodes: int) -> float:
    obs, _ = env.reset(seed=123)
    starts = np.ones(env.num_envs, dtype=bool)
    needs_reset = np.zeros(env.num_envs, dtype=bool)
    policy.reset(env.num_envs)
    rewards: list[float] = []
    while len(rewards) < episodes:
        action = policy.act(obs, starts, deterministic=True)
        obs, r, term, trunc, _ = env.step(action)
        ended = term | trunc
        rewards += r[ended].tolist()
        starts = needs_reset.copy()  # the step after an autoreset step starts an episode
        needs_reset = ended
    return float(np.mean(rewards[:episodes]))


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_learns_target_and_remembered_cue(tmp_path: Path, rnn: str) -> None:
    """The rewarded action needs the target and a cue seen two steps earlier: chance 0.25,
    0.5 without memory. The trained policy, reloaded, must solve it."""
    returns: list[float] = []
    final = train(
        CueMemoryEnv(32),
        _cue_config(rnn=rnn),
        tmp_path,
        log=lambda s: returns.append(s.get("charts/episode_return", np.nan)),
    )
    assert final == tmp_path / "final.pt" and final.is_file()
    assert np.nanmean(returns[:3]) < 0.45  # starts near chance
    assert np.nanmean(returns[-5:]) > 0.85  # training episodes, sampled actions
    assert _evaluate(load_policy(tmp_path), CueMemoryEnv(16), 400) > 0.9  # > 0.5: it remembers


def test_same_seed_same_parameters(tmp_path: Path) -> None:
    cfg = _cue_config(steps=2048)
    a = _params(train(CueMemoryEnv(8), cfg, tmp_path / "a"))
    b = _params(train(CueMemoryEnv(8), cfg, tmp_path / "b"))
    c = _params(train(CueMemoryEnv(8), _cue_config(steps=2048, seed=1), tmp_path / "c"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


class _Killed(Exception):
    pass


def test_exact_resume_after_kill(tmp_path: Path) -> None:
    """Train K steps straight vs. train, die after the K/2 checkpoint, resume to K."""
    cfg = _cue_config(steps=4096, rollout=8, checkpoint_every=2048, seed=3)
    straight = _params(train(CueMemoryEnv(16), cfg, tmp_path / "straight"))

    def kill_after_half(scalars: dict) -> None:
        if scalars["global_step"] > 2048:
            raise _Killed

    run = tmp_path / "killed"
    with pytest.raises(_Killed):
        train(CueMemoryEnv(16), cfg, run, log=kill_after_half)
    assert latest_checkpoint(run) == run / "checkpoints" / "ckpt_2048.pt"
    assert not (run / "final.pt").exists()
    resumed = _params(train(CueMemoryEnv(16), cfg, run, resume=True))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    with pytest.raises(ValueError, match="same"):
        train(CueMemoryEnv(8), PPOConfig(**{**cfg.__dict__, "minibatches": 2}), run, resume=True)


def test_gae_cuts_at_autoreset_steps_and_bootstraps_truncation() -> None:
    """One env, 4 steps: step 0 truncated (bootstraps from V of its last obs, step 1), step 1 is
    the autoreset step (masked), step 2 terminated, step 3 ordinary (bootstraps next_value)."""
    g, lam = 0.9, 0.5
    r = torch.tensor([[1.0], [7.0], [2.0], [0.5]])
    v = torch.tensor([[0.2], [0.4], [0.3], [0.1]])
    term = torch.tensor([[False], [False], [True], [False]])
    valid = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    adv = compute_gae(r, v, torch.tensor([0.6]), term, valid, g, lam)
    expected = [1.0 + g * 0.4 - 0.2, 0.0, 2.0 - 0.3, 0.5 + g * 0.6 - 0.1]
    assert torch.allclose(adv[:, 0], torch.tensor(expected))


def test_rejects_bad_envs_and_configs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divide"):
        train(CueMemoryEnv(6), _cue_config(minibatches=4), tmp_path)
    env = CueMemoryEnv(4)
    env.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
    with pytest.raises(ValueError, match="NEXT_STEP"):
        train(env, _cue_config(), tmp_path)
    with pytest.raises(ValueError, match="rnn"):
        PPOConfig(rnn="transformer")
    with pytest.raises(ValueError, match="steps"):
        PPOConfig(steps=0)


def test_logs_fixed_metric_names(tmp_path: Path) -> None:
    seen: set[str] = set()
    train(SyntheticPoseEnv(8, dim=16, poses=64, max_steps=10), _cue_config(steps=1024, minibatches=2),
          tmp_path, log=lambda s: seen.update(s))  # fmt: skip
    for name in ("charts/episode_return", "charts/episode_length", "objectnav/success", "objectnav/spl",
                 "losses/policy", "losses/value", "losses/entropy", "charts/steps_per_s"):  # fmt: skip
        assert name in seen
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_objectnav_online_smoke(tmp_path: Path) -> None:
    """The real ObjectNav vector env, rgb 64×64 through a trainable cnn_small: trains, writes
    checkpoints, and the policy acts on its observations."""
    from thorgym.envs.vector import ObjectNavVectorEnv

    env = ObjectNavVectorEnv(2, scenes=["FloorPlan1"], width=64, height=64)
    cfg = PPOConfig(steps=384, rollout=32, epochs=2, minibatches=1, hidden=64, checkpoint_every=128)
    final = train(env, cfg, tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["ckpt_128.pt", "ckpt_256.pt"]
    policy = load_policy(final)
    obs, _ = env.reset(seed=0)
    actions = policy.act(obs, np.ones(2, dtype=bool))
    assert actions.shape == (2,) and actions.dtype == np.int64 and ((0 <= actions) & (actions < 6)).all()
    env.close()


def test_frozen_backbone_from_checkpoint_stays_fixed(tmp_path: Path) -> None:
    """rgb observations through a `thorgym pretrain`-style checkpoint, frozen: the trained
    policy's backbone weights are the checkpoint's, the rest has moved."""
    from thorgym.agents.backbones import build_backbone, save_backbone
    from thorgym.envs.vector import ObjectNavVectorEnv

    torch.manual_seed(5)
    ckpt = save_backbone(build_backbone("cnn_small"), tmp_path / "pre" / "backbone.pt")
    env = ObjectNavVectorEnv(2, scenes=["FloorPlan1"], width=64, height=64)
    cfg = PPOConfig(steps=128, rollout=32, epochs=2, minibatches=1, hidden=32,
                    backbone_ckpt=str(tmp_path / "pre"), freeze_backbone=True)  # fmt: skip
    trained = _params(train(env, cfg, tmp_path / "run"))
    env.close()
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(trained[f"backbone.{k}"], v) for k, v in saved.items())
    torch.manual_seed(cfg.seed)
    init = RecurrentActorCritic(make_spec(env, cfg)).state_dict()
    assert not torch.equal(trained["actor.weight"], init["actor.weight"])


def test_bench_record_on_any_env_factory() -> None:
    from thorgym.benchmarks.train import ppo_env_factory, run_ppo

    rec = run_ppo(ppo_env_factory("synthetic", 8, dim=32), "synthetic", rollouts=1, rollout=8, minibatches=2)
    assert {k: rec[k] for k in ("agent", "mode", "device", "threads", "envs")} == {
        "agent": "ppo", "mode": "synthetic", "device": "cpu", "threads": 1, "envs": 8,
    }  # fmt: skip
    assert rec["env_steps"] == 64 and rec["steps_per_s"] > 0
    with pytest.raises(ValueError, match="mode"):
        ppo_env_factory("nope", 8)


def test_runtime_helpers_single_process() -> None:
    from thorgym.agents.runtime import (
        DistInfo,
        all_reduce_mean,
        init_distributed,
        resolve_device,
        set_threads,
    )

    with pytest.raises(ValueError, match="threads"):
        set_threads(0)
    assert resolve_device("cpu") == torch.device("cpu")
    info = init_distributed("cpu")
    assert info == DistInfo() and info.is_main and not info.enabled
    grads = [torch.ones(3)]
    all_reduce_mean(grads, info)  # one process: unchanged
    assert torch.equal(grads[0], torch.ones(3))


def test_bench_train_cli_prints_the_fixed_record_keys() -> None:
    import json

    from typer.testing import CliRunner

    from thorgym.cli import app

    cmd = ["bench", "train", "--json", "--agent", "ppo", "--modes", "synthetic"]
    cmd += ["--envs", "8", "--rollouts", "1"]
    res = CliRunner().invoke(app, cmd)
    assert res.exit_code == 0, res.output
    (rec,) = json.loads(res.output.strip().splitlines()[-1])
    assert {"agent", "mode", "device", "threads", "envs", "steps_per_s"} <= set(rec)
    assert rec["mode"] == "synthetic" and rec["envs"] == 8 and rec["steps_per_s"] > 0
