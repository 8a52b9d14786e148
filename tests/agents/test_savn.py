"""SAVN: inner loop, meta-gradient, batching, limits, checkpoints, training and eval smoke runs."""

from __future__ import annotations

import json
import os

import pytest
import torch
from typer.testing import CliRunner

from thorgym.agents.backbones import build_backbone
from thorgym.agents.savn import FastWeightLearner, SAVNConfig, SAVNNet, SpatialBackbone
from thorgym.cli import app

CFG = SAVNConfig(feature_channels=8, grid=2, hidden=16)


def _net(seed: int = 0) -> SAVNNet:
    torch.manual_seed(seed)
    return SAVNNet(CFG)


def _inputs(n: int, t: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, n, 8, 2, 2, generator=g), torch.randn(t, n, 50, generator=g)


def _run(learner: FastWeightLearner, feats: torch.Tensor, emb: torch.Tensor, active=None):
    out = []
    for t in range(feats.shape[0]):
        logits, value = learner.act(feats[t], emb[t])
        out.append((logits, value))
        mask = torch.ones(learner.num_envs, dtype=torch.bool) if active is None else active
        learner.maybe_adapt(mask)
    return out


def test_inner_step_changes_fast_weights_not_initial_weights():
    net = _net()
    theta = {k: v.detach().clone() for k, v in net.policy_params().items()}
    learner = FastWeightLearner(net, 2, inner_lr=1e-2)
    feats, emb = _inputs(2, 6)
    _run(learner, feats, emb)
    assert learner.updates.tolist() == [1, 1]
    changed = [k for k in theta if not torch.equal(learner.fast_weight(k)[0].detach(), theta[k])]
    assert "lstm.weight_ih" in changed and "actor.weight" in changed
    assert "critic.weight" not in changed  # the critic does not reach the interaction loss
    for k, v in net.policy_params().items():
        assert torch.equal(v.detach(), theta[k])


def test_outer_gradient_reaches_loss_net_second_order_only():
    grads = {}
    for first_order in (False, True):
        net = _net()
        learner = FastWeightLearner(net, 2, inner_lr=1e-2, first_order=first_order)
        feats, emb = _inputs(2, 12)
        out = _run(learner, feats, emb)
        loss = sum(lg.logsumexp(-1).sum() + lg[:, 0].sum() + v.sum() for lg, v in out)
        loss.backward()
        ln = [p.grad for p in net.loss_net.parameters()]
        grads[first_order] = net.lstm.weight_ih.grad.clone()
        if first_order:
            assert all(g is None or float(g.abs().sum()) == 0.0 for g in ln)
        else:
            assert sum(float(g.abs().sum()) for g in ln if g is not None) > 0.0
    assert grads[True].abs().sum() > 0  # first order still trains the policy
    assert not torch.allclose(grads[True], grads[False])  # the second-order term is there


def test_at_most_four_inner_steps_per_episode():
    learner = FastWeightLearner(_net(), 2, inner_lr=1e-2)
    feats, emb = _inputs(2, 40)
    _run(learner, feats, emb)
    assert learner.updates.tolist() == [4, 4]
    assert learner.t == 40


def test_no_leak_between_episodes_or_environments():
    net = _net()
    learner = FastWeightLearner(net, 3, inner_lr=1e-2)
    feats, emb = _inputs(3, 12)
    active = torch.tensor([True, False, True])
    _run(learner, feats, emb, active)
    assert learner.updates.tolist() == [2, 0, 2]
    theta = net.policy_params()
    for k, v in theta.items():  # the inactive env kept θ
        assert torch.equal(learner.fast_weight(k)[1].detach(), v.detach())
    learner.reset()
    assert learner.updates.tolist() == [0, 0, 0] and learner.t == 0 and not learner.history
    for k, v in theta.items():
        w = learner.fast_weight(k)
        assert torch.equal(w.detach(), v.detach().expand_as(w))
    assert float(learner.h.abs().sum()) == 0.0 and float(learner.prev.abs().sum()) == 0.0


def test_batched_acting_equals_per_environment_acting():
    net = _net()
    feats, emb = _inputs(3, 14)
    batched = _run(FastWeightLearner(net, 3, inner_lr=1e-2), feats, emb)
    for i in range(3):
        single = _run(FastWeightLearner(net, 1, inner_lr=1e-2), feats[:, i : i + 1], emb[:, i : i + 1])
        for (lb, vb), (ls, vs) in zip(batched, single, strict=True):
            torch.testing.assert_close(lb[i : i + 1], ls, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(vb[i : i + 1], vs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("first_order", [False, True])
def test_lowrank_fast_weights_equal_dense_values_and_meta_gradient(first_order):
    """The low-rank LSTM fast weights are an exact rewrite of the dense inner loop."""
    feats, emb = _inputs(3, 26)
    active = torch.tensor([True, False, True])
    res = {}
    for lowrank in (False, True):
        net = _net()
        learner = FastWeightLearner(net, 3, inner_lr=1e-1, first_order=first_order, lowrank=lowrank)
        outs = []
        for t in range(26):
            logits, value = learner.act(feats[t], emb[t])
            outs += [logits, value[:, None]]
            learner.maybe_adapt(torch.ones(3, dtype=torch.bool) if t < 10 else active)
        sum((o**2).sum() for o in outs).backward()
        grads = {k: p.grad for k, p in net.named_parameters()}
        res[lowrank] = (torch.cat(outs, 1).detach(), grads, learner.fast_weight("lstm.weight_ih").detach())
        assert learner.updates.tolist() == [4, 1, 4]
    (out_d, g_d, w_d), (out_l, g_l, w_l) = res[False], res[True]
    torch.testing.assert_close(out_l, out_d, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w_l, w_d, rtol=1e-5, atol=1e-6)
    assert not torch.equal(w_l[0], _net().lstm.weight_ih.detach())  # the LSTM did adapt
    for k, g in g_d.items():
        if g is None:
            assert g_l[k] is None or float(g_l[k].abs().sum()) == 0.0, k
        else:
            torch.testing.assert_close(g_l[k], g, rtol=1e-4, atol=1e-7, msg=k)


def test_nonadaptive_uses_shared_weights_and_never_adapts():
    net = _net()
    learner = FastWeightLearner(net, 2, adaptive=False)
    feats, emb = _inputs(2, 30)
    _run(learner, feats, emb)
    assert learner.updates.tolist() == [0, 0]
    assert all(learner.fast[k] is v for k, v in net.policy_params().items())


def test_spatial_backbone_grid_and_frozen():
    sb = SpatialBackbone(build_backbone("cnn_small"), 3)
    x = torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)
    assert sb(x).shape == (2, 64, 3, 3)
    assert not any(p.requires_grad for p in sb.parameters())


runner = CliRunner()
SCENES = ["FloorPlan401", "FloorPlan402"]  # small bathrooms: their features build in seconds, once
TINY = ["--envs", "4", "--size", "64", "--max-steps", "30", "--grid", "3", "--hidden", "16", "--no-progress"]
TINY += ["--scenes", ",".join(SCENES)]


@pytest.fixture
def small_env(monkeypatch):
    """`make_savn_env` on SCENES only, for callers that pass no scenes (the bench)."""
    import dataclasses

    from thorgym.agents.savn import trainer

    make = trainer.make_savn_env
    monkeypatch.setattr(
        trainer, "make_savn_env", lambda args, *a: make(dataclasses.replace(args, scenes=tuple(SCENES)), *a)
    )


def _train_cli(out, agent: str, steps: int, *extra: str):
    cwd = os.getcwd()
    os.chdir(out.parent)  # no runs/pretrain_cnn_small/backbone.pt here: the shipped backbone
    try:
        res = runner.invoke(
            app,
            ["train", "objectnav", "--agent", agent, "--steps", str(steps), "--checkpoint-every", "100"]
            + ["--out", str(out), *TINY, *extra],
        )
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def savn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("savn") / "run"
    res = _train_cli(out, "savn", 300)
    assert "frozen cnn_small backbone from" in res.output and "no --preset: savn-cpu" in res.output
    return out


def test_training_smoke_checkpoint_round_trip_and_resume(savn_run):
    from thorgym.agents.savn.checkpoint import load_savn_checkpoint
    from thorgym.agents.savn.policy import SAVNPolicy

    final = savn_run / "final.pt"
    assert final.exists() and (savn_run / "learning_curve.png").exists()
    assert len(sorted((savn_run / "checkpoints").glob("ckpt_*.pt"))) >= 2
    ckpt = load_savn_checkpoint(final)
    assert ckpt["agent"] == "savn" and ckpt["env_steps"] >= 300 and ckpt["mode"] == "cached"
    assert ckpt["backbone"]["name"] == "cnn_small" and ckpt["backbone"]["grid"] == 3
    assert ckpt["backbone"]["size"] == 64 and ckpt["backbone"]["ckpt"].endswith(".pt")
    policy = SAVNPolicy(final)
    assert policy.mode == "cached"
    # evaluation rebuilds the features from the backbone the run resolved (here: the shipped one)
    recorded = json.loads((savn_run / "args.json").read_text())["backbone_ckpt"]
    assert recorded == ckpt["backbone"]["ckpt"] == policy.train_args["backbone_ckpt"]
    assert policy.train_args["mode"] == "cached" and policy.train_args["grid"] == 3
    for k, v in policy.net.state_dict().items():
        assert torch.equal(v, ckpt["model"][k])
    # resume continues from the newest checkpoint to a larger budget
    res = _train_cli(savn_run, "savn", 400, "--resume")
    assert "resuming from" in res.output
    assert load_savn_checkpoint(final)["env_steps"] >= 400


def _args(**kw):
    from thorgym.agents.train_args import TrainArgs

    base = dict(envs=4, width=64, height=64, grid=3, hidden=16, max_steps=30, lr=1e-3, progress=False)
    base["scenes"] = tuple(SCENES)
    base.update(kw)
    return TrainArgs(**base, explicit=set(base))


@pytest.mark.parametrize("agent", ["savn", "nonadaptive"])
def test_trains_on_cached_features_without_a_backbone_forward(agent, tmp_path, monkeypatch):
    from thorgym.agents.savn.checkpoint import load_savn_checkpoint
    from thorgym.agents.savn.trainer import SAVNTrainer, train_savn

    monkeypatch.chdir(tmp_path)
    trainer = SAVNTrainer(_args(agent=agent, seed=1))
    assert trainer.env.single_observation_space["features"].shape == (64 * 3 * 3,)

    def no_backbone(*a):
        raise AssertionError("cached mode must not run the backbone")

    monkeypatch.setattr(trainer.spatial, "forward", no_backbone)
    inner = [trainer.train_batch()["inner_steps"] for _ in range(12)]
    assert trainer.env_steps >= 100
    assert (sum(inner) > 0) == (agent == "savn")  # inner steps on cached features, SAVN only
    trainer.close()
    final = train_savn(_args(agent=agent, steps=300, checkpoint_every=100, out=tmp_path / agent))
    ckpt = load_savn_checkpoint(final)
    assert ckpt["agent"] == agent and ckpt["mode"] == "cached" and ckpt["env_steps"] >= 300
    assert len(list((tmp_path / agent / "checkpoints").glob("ckpt_*.pt"))) >= 2


def test_policy_acts_on_cached_features_and_on_frames_alike(savn_run):
    """The policy takes the cached env's `features`, adapts on them, and its own backbone gives
    the same features from the rendered frame of the same pose."""
    import numpy as np

    from thorgym.agents.savn.policy import SAVNPolicy
    from thorgym.agents.savn.trainer import observation_tensors
    from thorgym.envs.cached import CachedObjectNavVectorEnv
    from thorgym.envs.vector import ObjectNavVectorEnv

    policy = SAVNPolicy(savn_run / "final.pt", seed=0)
    kw = dict(scenes=SCENES, max_steps=30, version="v1")
    env_kw = policy.cached_env_kwargs()
    assert env_kw.pop("cached") and env_kw["backbone_ckpt"] == policy.backbone_info["ckpt"]
    cached = CachedObjectNavVectorEnv(2, **env_kw, **kw)
    online = ObjectNavVectorEnv(2, width=64, height=64, **kw)
    oc, _ = cached.reset(seed=5)
    oo, _ = online.reset(seed=5)
    fc, _ = observation_tensors(oc, policy.spatial, 3, policy.device)
    fo, _ = observation_tensors(oo, policy.spatial, 3, policy.device)
    torch.testing.assert_close(fc, fo, rtol=2e-2, atol=2e-2)  # the cache stores float16
    policy.reset(2)
    walk = np.array([0, 0])  # MoveAhead (the cached env never ends the episode without Done)
    for t in range(24):
        a = policy.act(oc, np.full(2, t == 0), None)
        assert a.shape == (2,) and ((a >= 0) & (a < 6)).all()
        oc, *_ = cached.step(walk)
    assert policy.inner_steps.tolist() == [4, 4]
    with pytest.raises(ValueError, match="match the policy"):
        policy.act({"features": np.zeros((2, 10), np.float32), "target_embedding": oc["target_embedding"]},
                   np.ones(2, dtype=bool), None)  # fmt: skip
    cached.close()
    online.close()


def test_online_mode_trains_on_frames(tmp_path, monkeypatch):
    from thorgym.agents.savn.checkpoint import load_savn_checkpoint
    from thorgym.agents.savn.trainer import SAVNTrainer, train_savn

    monkeypatch.chdir(tmp_path)
    final = train_savn(_args(agent="savn", mode="online", steps=40, envs=2, out=tmp_path / "on"))
    assert load_savn_checkpoint(final)["mode"] == "online"
    with pytest.raises(ValueError, match="--mode"):
        SAVNTrainer(_args(agent="savn", mode="offline"))


def _eval_savn(run, out):
    args = ["eval", "objectnav", "--agent", "savn", "--checkpoint", str(run), "--episodes", "2"]
    return runner.invoke(app, [*args, "--out", str(out)])


def test_eval_of_savn_checkpoint_adapts_at_test_time(savn_run, tmp_path):
    out = tmp_path / "eval"
    res = _eval_savn(savn_run, out)
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["agent"] == "savn" and metrics["episodes"] == 2
    again = tmp_path / "again"
    _eval_savn(savn_run, again)
    assert (out / "episodes.jsonl").read_text() == (again / "episodes.jsonl").read_text()


def test_test_time_adaptation_counts(savn_run):
    import numpy as np

    from thorgym.agents.savn.policy import SAVNPolicy

    policy = SAVNPolicy(savn_run / "final.pt")
    obs = {
        "rgb": torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8).numpy(),
        "target_embedding": np.full((2, 50), 0.1, dtype=np.float32),
    }
    policy.reset(2)
    for t in range(30):
        actions = policy.act(obs, np.full(2, t == 0), None)
        assert actions.shape == (2,)
    assert policy.inner_steps.tolist() == [4, 4]
    policy.act(obs, np.ones(2, dtype=bool), None)  # a new episode starts from the initial weights
    assert policy.inner_steps.tolist() == [0, 0]
    with pytest.raises(ValueError, match="start together"):
        policy.act(obs, np.array([True, False]), None)
    with pytest.raises(ValueError, match="nonadaptive"):
        nonad = savn_run / "na.pt"
        ck = torch.load(savn_run / "final.pt", weights_only=True)
        ck["agent"] = "nonadaptive"
        torch.save(ck, nonad)
        SAVNPolicy(nonad, adapt=True)


def test_training_is_seeded_and_resume_is_exact(tmp_path, monkeypatch):
    from thorgym.agents.savn.checkpoint import load_savn_checkpoint
    from thorgym.agents.savn.trainer import train_savn

    monkeypatch.chdir(tmp_path)
    kw = dict(agent="savn", seed=3, checkpoint_every=100)
    train_savn(_args(steps=300, out=tmp_path / "a", **kw))
    train_savn(_args(steps=150, out=tmp_path / "b", **kw))
    train_savn(_args(steps=300, out=tmp_path / "b", resume=True, **kw))
    a = load_savn_checkpoint(tmp_path / "a" / "final.pt")
    b = load_savn_checkpoint(tmp_path / "b" / "final.pt")
    assert a["env_steps"] == b["env_steps"] and a["batches"] == b["batches"]
    for k, v in a["model"].items():
        torch.testing.assert_close(v, b["model"][k], rtol=0, atol=0)


def test_corrupt_savn_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "final.pt"
    bad.write_bytes(b"not a checkpoint")
    res = runner.invoke(
        app,
        ["eval", "objectnav", "--agent", "savn", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 2 and "not a readable SAVN checkpoint" in res.output


def test_bench_train_measures_both_agents(small_env):
    from thorgym.benchmarks.train import format_table, run

    records = run(("savn", "nonadaptive"), batches=1, envs=2)
    assert [r["agent"] for r in records] == ["savn", "nonadaptive"]
    assert all(r["steps_per_s"] > 0 and r["env_steps"] > 0 for r in records)
    assert "ratio savn/nonadaptive" in format_table(records)
