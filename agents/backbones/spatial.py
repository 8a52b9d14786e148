"""A frozen registry backbone as a spatial feature map: ``(N, C, G, G)`` from uint8 frames.

SAVN's model consumes such a grid (the paper: ResNet-18's 512×7×7), and the per-pose feature
cache of static scenes (``thorgym.envs.feature_cache``) stores it, flattened C-major.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SpatialBackbone"]


class SpatialBackbone(nn.Module):
    """A frozen registry backbone giving a ``(N, C, G, G)`` feature map of uint8 NHWC frames.

    The map is taken before the backbone's global pooling — ``features`` up to its first
    pooling/flatten layer for sequential trunks (``cnn_small``), ``layer4`` for ResNets, the
    ``final`` block for ESPNetv2, ``forward_features`` for timm models — then adaptive-average
    pooled to ``grid × grid``.
    """

    def __init__(self, backbone: nn.Module, grid: int) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.grid = int(grid)
        self._trunk = self._find_trunk(backbone.features)
        with torch.no_grad():
            probe = torch.zeros(1, 3, 64, 64, dtype=torch.uint8, device=_device_of(backbone))
            self.channels = int(self._map(probe).shape[1])

    @staticmethod
    def _find_trunk(features: nn.Module):
        if isinstance(features, nn.Sequential):
            layers = []
            for m in features:
                if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d | nn.Flatten):
                    break
                layers.append(m)
            return nn.Sequential(*layers)
        if hasattr(features, "layer4"):  # torchvision ResNet
            f = features

            def resnet(x: torch.Tensor) -> torch.Tensor:
                x = f.maxpool(f.relu(f.bn1(f.conv1(x))))
                return f.layer4(f.layer3(f.layer2(f.layer1(x))))

            return resnet
        if hasattr(features, "forward_features"):  # timm
            return features.forward_features
        if hasattr(features, "final"):  # ESPNetv2: capture the map before its global pooling
            store: dict[str, torch.Tensor] = {}
            features.final.register_forward_hook(lambda m, i, o: store.__setitem__("map", o))

            def espnet(x: torch.Tensor) -> torch.Tensor:
                features(x)
                return store.pop("map")

            return espnet
        raise ValueError(
            f"cannot find a spatial feature map in backbone {type(features).__name__}; use "
            "cnn_small, resnet18, espnetv2_* or a timm model (or add a case to SpatialBackbone)"
        )

    def _map(self, images: torch.Tensor) -> torch.Tensor:
        return self._trunk(self.backbone.normalize(images))

    def train(self, mode: bool = True) -> SpatialBackbone:
        super().train(mode)
        self.backbone.eval()  # frozen: batch-norm statistics never update
        return self

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """``rgb`` ``(N, H, W, 3)`` uint8 → ``(N, C, grid, grid)`` float features."""
        x = self._map(rgb.permute(0, 3, 1, 2))
        return F.adaptive_avg_pool2d(x, self.grid)


def _device_of(m: nn.Module) -> torch.device:
    p = next(m.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
