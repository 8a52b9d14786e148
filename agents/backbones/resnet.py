"""ResNet-18 (torchvision, ``weights=None``): the reference backbone the SAVN paper used.

The trunk is torchvision's ``resnet18`` with ``fc`` replaced by identity (512-d pooled features);
the classification head, when asked for, is :class:`ImageBackbone`'s linear head, with the same
parameters as torchvision's ``fc`` (11.69M parameters in all with 1000 classes).
"""

from __future__ import annotations

from torch import nn

from .registry import register

# Architecture as data: torchvision constructor name → (feature width, description).
RESNET_VARIANTS: dict[str, tuple[int, str]] = {
    "resnet18": (512, "torchvision ResNet-18 (weights=None), SAVN's reference backbone"),
}


def _create_resnet(name: str, zero_init_residual: bool) -> tuple[nn.Module, int]:
    import torchvision  # imported lazily

    model = getattr(torchvision.models, name)(weights=None, zero_init_residual=zero_init_residual)
    model.fc = nn.Identity()
    return model, RESNET_VARIANTS[name][0]


@register("resnet18", family="resnet", description=RESNET_VARIANTS["resnet18"][1])
def resnet18(*, zero_init_residual: bool = False) -> tuple[nn.Module, int]:
    """torchvision ResNet-18 trunk; ``zero_init_residual`` as in torchvision."""
    return _create_resnet("resnet18", zero_init_residual)
