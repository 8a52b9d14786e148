"""A small convolutional trunk for fast RL on CPU (the "small CNN" of the training issue).

Nature-DQN-like: three strided convolutions then global average pooling, so any H, W >= 64
works. 76k parameters and 7.4M multiply-adds per 64×64 image, two orders of magnitude
below ResNet-18, which is what makes 2-core training runs of minutes possible.
"""

from __future__ import annotations

from torch import nn

from .registry import register

# Architecture as data: (out channels, kernel, stride) per conv layer.
SMALL_CNN_LAYERS: dict[str, list[tuple[int, int, int]]] = {
    "cnn_small": [(32, 8, 4), (64, 4, 2), (64, 3, 1)],
}


def _create(name: str) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    cin = 3
    for cout, k, s in SMALL_CNN_LAYERS[name]:
        layers += [nn.Conv2d(cin, cout, k, s, padding=k // 2), nn.ReLU(inplace=True)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
    return nn.Sequential(*layers), cin * 4


@register("cnn_small", family="smallcnn", description="3-layer strided CNN (Nature-DQN-like)")
def cnn_small() -> tuple[nn.Module, int]:
    """Three strided convolutions, 2×2 average pooling: 256 features."""
    return _create("cnn_small")
