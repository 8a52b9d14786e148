"""SB3 features extractor around a backbone: shapes, freezing, checkpoints, PPO smoke test."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from thorgym.agents.backbones import build_backbone
from thorgym.agents.extractors import BackboneExtractor, save_backbone


class TinyDictEnv(gym.Env):
    """Dict observations like the navigation tasks': rgb + target embedding + target id."""

    metadata = {"render_modes": []}

    def __init__(self, size: int = 64, horizon: int = 8) -> None:
        self.observation_space = spaces.Dict(
            {
                "rgb": spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
                "target_embedding": spaces.Box(-1.0, 1.0, (50,), dtype=np.float32),
                "target": spaces.Discrete(5),
            }
        )
        self.action_space = spaces.Discrete(3)
        self.horizon = horizon
        self.t = 0

    def _obs(self) -> dict:
        return {
            "rgb": self.np_random.integers(0, 256, (64, 64, 3), dtype=np.uint8),
            "target_embedding": self.np_random.uniform(-1, 1, 50).astype(np.float32),
            "target": int(self.np_random.integers(5)),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: int):
        self.t += 1
        reward = 1.0 if action == 0 else 0.0
        return self._obs(), reward, self.t >= self.horizon, False, {}


def _batch(space: spaces.Dict, n: int = 3) -> dict[str, torch.Tensor]:
    return {
        "rgb": torch.rand(n, *space["rgb"].shape),
        "target_embedding": torch.rand(n, 50),
        "target": torch.nn.functional.one_hot(torch.arange(n) % 5, 5).float(),
    }


def test_extractor_shapes_and_layouts() -> None:
    space = TinyDictEnv().observation_space
    ext = BackboneExtractor(space, backbone="espnetv2_s0.5", image_dim=32, vector_hidden=16)
    assert ext.features_dim == 48
    assert ext(_batch(space)).shape == (3, 48)
    # Channels-first rgb (after SB3's VecTransposeImage) and no vector entries.
    chw = spaces.Dict({"rgb": spaces.Box(0, 255, (3, 64, 96), dtype=np.uint8)})
    ext2 = BackboneExtractor(chw, backbone="mobilevit_xxs", image_dim=8, channels_last=False)
    assert ext2.features_dim == 8
    assert ext2({"rgb": torch.rand(2, 3, 64, 96)}).shape == (2, 8)
    with pytest.raises(ValueError, match="rgb"):
        BackboneExtractor(spaces.Dict({"x": spaces.Box(0, 1, (3,))}))
    with pytest.raises(ValueError, match="unknown backbone"):
        BackboneExtractor(space, backbone="nope")


def test_frozen_backbone_gets_no_gradient() -> None:
    space = TinyDictEnv().observation_space
    ext = BackboneExtractor(space, backbone="espnetv2_s0.5", frozen=True)
    ext.train()
    assert not ext.backbone.training
    ext(_batch(space)).sum().backward()
    assert all(p.grad is None for p in ext.backbone.parameters())
    assert all(p.grad is not None for p in ext.image_proj.parameters())


def test_backbone_checkpoint(tmp_path: Path) -> None:
    space = TinyDictEnv().observation_space
    torch.manual_seed(1)
    net = build_backbone("espnetv2_s0.5", num_classes=10)
    path = save_backbone(net, tmp_path / "bb.pt")
    ext = BackboneExtractor(space, backbone="espnetv2_s0.5", backbone_ckpt=path)
    for k, v in ext.backbone.state_dict().items():
        torch.testing.assert_close(v, net.state_dict()[k])
    with pytest.raises(FileNotFoundError):
        BackboneExtractor(space, backbone_ckpt=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="holds"):
        BackboneExtractor(space, backbone="espnetv2_s1.0", backbone_ckpt=path)


def test_ppo_learns_with_extractor() -> None:
    from stable_baselines3 import PPO

    env = TinyDictEnv()
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs=dict(
            features_extractor_class=BackboneExtractor,
            features_extractor_kwargs=dict(backbone="espnetv2_s0.5", image_dim=32),
        ),
    )
    before = [p.detach().clone() for p in model.policy.features_extractor.backbone.parameters()]
    model.learn(64)
    assert model.num_timesteps == 64
    after = list(model.policy.features_extractor.backbone.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
