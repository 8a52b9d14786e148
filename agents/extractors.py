"""Stable-Baselines3 features extractor around any registered backbone.

:class:`BackboneExtractor` reads a Dict observation with an ``"rgb"`` image and optional vector
entries (e.g. ``"target_embedding"`` Box(50,), ``"target"`` Discrete, ``"depth"``); the image
goes through the backbone and a linear projection, the other entries (flattened, Discrete
one-hot as SB3 preprocesses them) through a small MLP, and the two are concatenated::

    policy_kwargs = dict(
        features_extractor_class=BackboneExtractor,
        features_extractor_kwargs=dict(backbone="espnetv2_s0.5", frozen=False),
    )
    PPO("MultiInputPolicy", env, policy_kwargs=policy_kwargs)

Also re-exports the checkpoint helpers :func:`save_backbone` / :func:`load_backbone`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import gymnasium as gym
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from .backbones import build_backbone, load_backbone, load_backbone_state, save_backbone

__all__ = ["BackboneExtractor", "load_backbone", "save_backbone"]


def _image_layout(space: gym.Space, key: str) -> str:
    """``"hwc"`` or ``"chw"`` for an RGB Box (SB3 may have transposed it to channels-first)."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 3:
        raise ValueError(f"observation {key!r} must be an (H, W, 3) or (3, H, W) Box, got {space}")
    if space.shape[-1] == 3:
        return "hwc"
    if space.shape[0] == 3:
        return "chw"
    raise ValueError(f"observation {key!r} must have 3 channels, got shape {space.shape}")


class BackboneExtractor(BaseFeaturesExtractor):
    """Backbone (+ projection) for ``rgb`` ⊕ MLP of the other (vector) observation entries.

    Args:
        observation_space: a ``spaces.Dict`` with key ``rgb_key`` (uint8 Box ``(H, W, 3)``, or
            ``(3, H, W)`` after SB3's ``VecTransposeImage``) and any number of other entries
            (Box, Discrete, MultiDiscrete, MultiBinary), all fed to the vector MLP.
        backbone: a registered backbone name (see ``list_backbones()``).
        frozen: freeze the backbone (no gradients, BatchNorm statistics kept in eval mode).
        backbone_ckpt: optional checkpoint written by :func:`save_backbone` (loaded with
            ``torch.load(weights_only=True)``); FileNotFoundError if missing, ValueError if
            corrupt or of another backbone / shape.
        image_dim: width of the projected image features.
        vector_hidden: width of the two-layer vector MLP (its output width too).
        normalize_images: must match the policy's ``normalize_images`` (SB3's default True:
            the image arrives as float in [0, 1]; False: float 0..255, scaled here).
        channels_last: run the backbone in channels-last memory format (faster on CPU/GPU).
        rgb_key: the observation entry holding the image.

    ``features_dim = image_dim + (vector_hidden if there are vector entries else 0)``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        backbone: str = "espnetv2_s0.5",
        frozen: bool = False,
        backbone_ckpt: str | os.PathLike | None = None,
        image_dim: int = 256,
        vector_hidden: int = 64,
        normalize_images: bool = True,
        channels_last: bool = True,
        rgb_key: str = "rgb",
    ) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise TypeError(
                f"BackboneExtractor needs a Dict observation space, got {observation_space}"
            )
        if rgb_key not in observation_space.spaces:
            keys = list(observation_space.spaces)
            raise ValueError(f"observation space has no {rgb_key!r} entry (keys: {keys})")
        layout = _image_layout(observation_space[rgb_key], rgb_key)
        vector_keys = sorted(k for k in observation_space.spaces if k != rgb_key)
        vector_in = sum(get_flattened_obs_dim(observation_space[k]) for k in vector_keys)
        vector_out = vector_hidden if vector_keys else 0
        super().__init__(observation_space, features_dim=image_dim + vector_out)

        self.rgb_key = rgb_key
        self.layout = layout
        self.vector_keys = vector_keys
        self.frozen = frozen
        self.normalize_images = normalize_images
        self.channels_last = channels_last
        self.backbone = build_backbone(backbone)
        if backbone_ckpt is not None:
            load_backbone_state(self.backbone, backbone_ckpt)
        if channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)
        if frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.image_proj = nn.Sequential(nn.Linear(self.backbone.out_dim, image_dim), nn.ReLU())
        self.vector_mlp: nn.Module | None = None
        if vector_keys:
            self.vector_mlp = nn.Sequential(
                nn.Linear(vector_in, vector_hidden),
                nn.ReLU(),
                nn.Linear(vector_hidden, vector_hidden),
                nn.ReLU(),
            )

    def apply(self, fn: Callable[[nn.Module], None]) -> BackboneExtractor:
        """Like ``nn.Module.apply``, but skips the backbone.

        SB3 policies re-initialise their features extractor with ``apply`` (``ortho_init``),
        which would overwrite the backbone's own initialisation and a loaded
        ``backbone_ckpt``; the backbone keeps its weights (apply to ``self.backbone`` directly
        if that is really wanted).
        """
        for name, module in self.named_children():
            if name != "backbone":
                module.apply(fn)
        fn(self)
        return self

    def train(self, mode: bool = True) -> BackboneExtractor:
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "hwc":
            x = x.permute(0, 3, 1, 2)
        if x.is_floating_point() and not self.normalize_images:
            x = x / 255.0
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(N, features_dim)`` features of a (SB3-preprocessed) observation batch."""
        x = self._image(observations[self.rgb_key])
        if self.frozen:
            with torch.no_grad():
                feats = self.backbone(x)
        else:
            feats = self.backbone(x)
        out = [self.image_proj(feats)]
        if self.vector_mlp is not None:
            n = feats.shape[0]
            vec = torch.cat(
                [observations[k].reshape(n, -1).float() for k in self.vector_keys], dim=1
            )
            out.append(self.vector_mlp(vec))
        return torch.cat(out, dim=1)
