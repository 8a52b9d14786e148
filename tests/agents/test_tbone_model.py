"""TBONE / Cordial Sync model and losses: shapes, normalisation, communication paths, sampling,
CORDIAL, validation, determinism and a tiny overfit."""

from __future__ import annotations

import math

import pytest
import torch

from thorgym.agents.tbone import (
    COMM_MODES,
    POLICIES,
    TBone,
    TBoneConfig,
    cordial_loss,
    cordial_weight,
    furnlift_valid_pairs,
    furnmove_valid_pairs,
    invalid_mass,
    joint_entropy,
    joint_log_prob,
    sample_joint,
    sample_sync,
    tvd,
)

torch.set_num_threads(1)

B, K, HID, SIZE = 3, 5, 64, 32


def _model(policy: str = "marginal", comm: str = "explicit", seed: int = 0, k: int = K) -> TBone:
    torch.manual_seed(seed)
    return TBone(TBoneConfig(num_actions=k, comm=comm, policy=policy, hidden=HID, image_size=SIZE))


def _obs(seed: int = 1, b: int = B) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 2, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("comm", COMM_MODES)
@pytest.mark.parametrize("policy", POLICIES)
def test_shapes_and_normalisation(policy: str, comm: str) -> None:
    model = _model(policy, comm)
    out = model(_obs(), model.initial_state(B))
    assert out.joint_log_probs.shape == (B, K, K)
    assert out.marginal_log_probs.shape == (B, 2, K)
    assert out.value.shape == (B,)
    assert all(s.shape == (B, 2, HID) for s in out.state)
    torch.testing.assert_close(out.joint_log_probs.flatten(1).logsumexp(1), torch.zeros(B), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.marginal_log_probs.logsumexp(2), torch.zeros(B, 2), atol=1e-5, rtol=0)
    if comm in ("explicit", "both"):
        assert out.talk is not None and out.talk.shape == (B, 2, 2)
        assert out.reply is not None and out.reply.shape == (B, 2, 2)
        torch.testing.assert_close(out.reply.sum(-1), torch.ones(B, 2))
    else:
        assert out.talk is None and out.reply is None
    if policy == "sync":
        assert out.mixture_log_weights is not None and out.mixture_log_weights.shape == (B, K)
        assert out.component_log_probs is not None and out.component_log_probs.shape == (B, 2, K, K)
    else:
        assert out.mixture_log_weights is None and out.component_log_probs is None


def test_extra_channels_and_larger_images() -> None:
    torch.manual_seed(0)
    model = TBone(TBoneConfig(num_actions=K, hidden=HID, image_size=48, extra_channels=2))
    out = model(torch.rand(B, 2, 5, 48, 48), model.initial_state(B))
    assert out.joint_log_probs.shape == (B, K, K)


def test_marginal_is_product_central_and_sync_are_not() -> None:
    obs = _obs()
    for policy in POLICIES:
        model = _model(policy, "explicit")
        out = model(obs, model.initial_state(B))
        d = tvd(out.joint_log_probs)
        if policy == "marginal":
            torch.testing.assert_close(d, torch.zeros(B), atol=1e-5, rtol=0)
        else:
            assert (d > 1e-4).all(), (policy, d)


def test_sample_joint_matches_distribution() -> None:
    model = _model("central")
    lp = model(_obs(b=1), model.initial_state(1)).joint_log_probs.detach()
    n = 40000
    g = torch.Generator().manual_seed(0)
    actions = sample_joint(lp.expand(n, K, K), generator=g)
    assert actions.shape == (n, 2) and actions.dtype == torch.long
    freq = torch.bincount(actions[:, 0] * K + actions[:, 1], minlength=K * K).float() / n
    torch.testing.assert_close(freq, lp[0].exp().flatten(), atol=0.01, rtol=0)


def test_sample_sync_matches_mixture() -> None:
    model = _model("sync")
    out = model(_obs(b=1), model.initial_state(1))
    n = 40000
    g = torch.Generator().manual_seed(0)
    assert out.mixture_log_weights is not None and out.component_log_probs is not None
    actions = sample_sync(
        out.mixture_log_weights.expand(n, -1), out.component_log_probs.expand(n, -1, -1, -1), generator=g
    )
    freq = torch.bincount(actions[:, 0] * K + actions[:, 1], minlength=K * K).float() / n
    torch.testing.assert_close(freq, out.joint_log_probs[0].detach().exp().flatten(), atol=0.01, rtol=0)


def test_reset_zeroes_state_rows() -> None:
    model = _model()
    obs = _obs()
    state = model(obs, model.initial_state(B)).state
    assert all(s.abs().sum() > 0 for s in state)
    reset = torch.tensor([True, False, True])
    fresh = model(obs, model.initial_state(B))
    carried = model(obs, state)
    out = model(obs, state, reset=reset)
    for i in range(B):
        ref = fresh if reset[i] else carried
        torch.testing.assert_close(out.joint_log_probs[i], ref.joint_log_probs[i])
        torch.testing.assert_close(out.state[0][i], ref.state[0][i])


def _agent0_marginal(model: TBone, obs: torch.Tensor) -> torch.Tensor:
    return model(obs, model.initial_state(obs.shape[0])).marginal_log_probs[:, 0]


def test_explicit_comm_carries_partner_image() -> None:
    obs = _obs()
    other = obs.clone()
    other[:, 1] = 0  # a black frame: far from noise after the encoder's average pooling
    with torch.no_grad():
        for comm in ("explicit", "both"):
            model = _model("marginal", comm)
            diff = (_agent0_marginal(model, obs) - _agent0_marginal(model, other)).abs().max()
            assert diff > 1e-6, (comm, diff)  # small at initialisation (near-uniform symbols), not zero
        for comm in ("none", "implicit"):
            model = _model("marginal", comm)
            assert torch.equal(_agent0_marginal(model, obs), _agent0_marginal(model, other))


@pytest.mark.parametrize("comm", COMM_MODES)
def test_partner_image_gradient_only_through_messages(comm: str) -> None:
    model = _model("marginal", comm)
    obs = _obs().float().requires_grad_()
    _agent0_marginal(model, obs)[:, 0].sum().backward()
    assert obs.grad is not None
    partner = obs.grad[:, 1].abs().sum()
    assert obs.grad[:, 0].abs().sum() > 0
    assert (partner > 0) if comm in ("explicit", "both") else (partner == 0)


def test_explicit_and_none_comm_share_everything_but_the_rounds() -> None:
    explicit, none = _model(comm="explicit"), _model(comm="none")
    extra = {n for n, _ in explicit.named_parameters()} - {n for n, _ in none.named_parameters()}
    assert extra and all(n.startswith(("talk.", "reply.")) for n in extra)
    assert none.cfg.comm == "none" and _model(comm="implicit").cfg.comm == "implicit"


def test_joint_log_prob_and_entropy() -> None:
    p = torch.tensor([[0.5, 0.0], [0.25, 0.25]])
    lp = p.log()[None]
    torch.testing.assert_close(joint_log_prob(lp, torch.tensor([[1, 0]])), torch.tensor([math.log(0.25)]))
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    torch.testing.assert_close(joint_entropy(lp), torch.tensor([h]))


def test_tvd_and_invalid_mass_by_hand() -> None:
    # Perfect coordination on two actions: P = diag(½, ½), marginals uniform, P¹⊗P² = ¼ everywhere.
    coordinated = torch.tensor([[0.5, 0.0], [0.0, 0.5]])
    product = torch.full((2, 2), 0.25)
    lp = torch.stack([coordinated, product]).log()
    torch.testing.assert_close(tvd(lp), torch.tensor([0.5, 0.0]))
    valid = torch.tensor([[True, False], [False, True]])
    torch.testing.assert_close(invalid_mass(lp, valid), torch.tensor([0.0, 0.5]))


def test_furnmove_and_furnlift_valid_pairs() -> None:
    individual, joint = furnmove_valid_pairs()
    assert individual.shape == joint.shape == (13, 13)
    assert individual.sum() == 16 and joint.sum() == 9
    assert individual[0, 3] and not individual[0, 4] and joint[4, 4] and not joint[4, 5] and not joint[0, 0]
    assert not (individual & joint).any()
    individual, joint = furnlift_valid_pairs()
    assert individual.all() and not joint.any() and individual.shape == (5, 5)


def test_cordial_loss_prefers_valid_mass_and_has_gradients() -> None:
    individual, joint = furnmove_valid_pairs()
    uniform = torch.full((1, 13, 13), -math.log(169.0))
    valid = (individual | joint).float()
    lifted = (torch.ones(13, 13) + 9.0 * valid).log()
    lifted = (lifted - lifted.logsumexp((0, 1)))[None]
    assert invalid_mass(lifted, individual | joint) < invalid_mass(uniform, individual | joint)
    assert cordial_loss(lifted, individual, joint) < cordial_loss(uniform, individual, joint)

    model = _model("central", k=13)
    out = model(_obs(), model.initial_state(B))
    loss = cordial_loss(out.joint_log_probs, individual, joint)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert model.encoder.conv[0].weight.grad is not None


def test_cordial_loss_with_one_empty_set_and_weight() -> None:
    lp = torch.full((2, 5, 5), -math.log(25.0))
    individual, joint = furnlift_valid_pairs()
    torch.testing.assert_close(cordial_loss(lp, individual, joint), torch.tensor(math.log(25.0)))
    with pytest.raises(ValueError, match="both empty"):
        cordial_loss(lp, joint, joint)
    assert cordial_weight(0) == 1.0
    assert cordial_weight(2500) == 0.5
    assert cordial_weight(5000) == 0.01 and cordial_weight(10**6) == 0.01


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("comm", "telepathy", "comm must be one of .*explicit.*implicit.*both.*none"),
        ("policy", "joint", "policy must be one of .*marginal.*central.*sync"),
        ("num_actions", 1, "num_actions must be >= 2"),
        ("hidden", 0, "hidden must be >= 1"),
        ("vocab", 1, "vocab must be >= 2"),
        ("message_dim", 0, "message_dim must be >= 1"),
        ("mixture", 0, "mixture must be >= 1"),
        ("image_size", 16, "image_size must be >= 32"),
        ("extra_channels", -1, "extra_channels must be >= 0"),
    ],
)
def test_bad_config_raises(field: str, value: object, match: str) -> None:
    kwargs: dict[str, object] = {"num_actions": K, field: value}
    with pytest.raises(ValueError, match=match):
        TBoneConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs_raise() -> None:
    model = _model()
    with pytest.raises(ValueError, match="obs must be"):
        model(torch.zeros(B, 2, 3, 40, 40), model.initial_state(B))
    with pytest.raises(ValueError, match="state h must be"):
        model(_obs(), model.initial_state(B + 1))
    with pytest.raises(ValueError, match="valid must be"):
        invalid_mass(torch.zeros(1, K, K), torch.ones(K + 1, K + 1, dtype=torch.bool))


def test_determinism_with_fixed_seed() -> None:
    a, b = _model("sync", seed=3), _model("sync", seed=3)
    obs = _obs()
    out_a, out_b = a(obs, a.initial_state(B)), b(obs, b.initial_state(B))
    torch.testing.assert_close(out_a.joint_log_probs, out_b.joint_log_probs, atol=0, rtol=0)
    torch.testing.assert_close(out_a.value, out_b.value, atol=0, rtol=0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(sample_joint(out_a.joint_log_probs, g1), sample_joint(out_b.joint_log_probs, g2))


@pytest.mark.parametrize("policy", ["central", "sync"])
def test_overfits_a_fixed_joint_action(policy: str) -> None:
    model = _model(policy, "explicit")
    obs = _obs()
    target = torch.tensor([[1, 3]]).expand(B, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(100):
        out = model(obs, model.initial_state(B))
        loss = -joint_log_prob(out.joint_log_probs, target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = model(obs, model.initial_state(B))
    assert (joint_log_prob(out.joint_log_probs, target).exp() > 0.9).all()
    assert (out.joint_log_probs.flatten(1).argmax(1) == 1 * K + 3).all()
