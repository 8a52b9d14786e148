"""MobileViT v1 (Mehta & Rastegari, ICLR 2022) and v2 (TMLR 2023) through timm.

Always ``pretrained=False`` (nothing is downloaded). timm builds the trunk with ``num_classes=0``
(pooled features); the classifier head, when asked for, is the uniform one of
:class:`~thorgym.agents.backbones.base.ImageBackbone` (dropout + linear, the same parameters as
timm's own head).

Input sizes: timm's MobileViT blocks resize a feature map whose size is not a multiple of the
2×2 patch to the next multiple internally (bilinear), so any input ``H, W >= 64`` works,
rectangular and odd sizes included (checked: 64×96, 65×97, 100×70); no padding or resizing is
done by the wrapper. timm's MobileViT expects RGB in [0, 1] (mean 0, std 1), and so do we.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .registry import register

# --------------------------------------------------------------------------------------------
# Architecture as data: registered name → timm model (the layer tables live in timm's
# mobilevit.py: MobileViT v1 xxs/xs/s, v2 width multipliers 0.5 … 2.0).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MobileViTVariant:
    """One registered MobileViT variant."""

    timm_name: str
    version: int
    width: str


MOBILEVIT_VARIANTS: dict[str, MobileViTVariant] = {
    "mobilevit_xxs": MobileViTVariant("mobilevit_xxs", 1, "xxs"),
    "mobilevit_xs": MobileViTVariant("mobilevit_xs", 1, "xs"),
    "mobilevit_s": MobileViTVariant("mobilevit_s", 1, "s"),
    "mobilevitv2_050": MobileViTVariant("mobilevitv2_050", 2, "0.5"),
    "mobilevitv2_075": MobileViTVariant("mobilevitv2_075", 2, "0.75"),
    "mobilevitv2_100": MobileViTVariant("mobilevitv2_100", 2, "1.0"),
    "mobilevitv2_125": MobileViTVariant("mobilevitv2_125", 2, "1.25"),
    "mobilevitv2_150": MobileViTVariant("mobilevitv2_150", 2, "1.5"),
    "mobilevitv2_175": MobileViTVariant("mobilevitv2_175", 2, "1.75"),
    "mobilevitv2_200": MobileViTVariant("mobilevitv2_200", 2, "2.0"),
}

MOBILEVIT_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
MOBILEVIT_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)

# --------------------------------------------------------------------------------------------
# Builder and registry entries
# --------------------------------------------------------------------------------------------


def _create_mobilevit(name: str, drop_path_rate: float) -> tuple[nn.Module, int]:
    import timm  # imported lazily: `import thorgym.agents.backbones` stays light

    model = timm.create_model(
        MOBILEVIT_VARIANTS[name].timm_name,
        pretrained=False,
        num_classes=0,
        drop_path_rate=drop_path_rate,
    )
    return model, int(model.num_features)


def _register_variant(name: str) -> None:
    v = MOBILEVIT_VARIANTS[name]

    @register(
        name,
        family="mobilevit",
        mean=MOBILEVIT_MEAN,
        std=MOBILEVIT_STD,
        description=f"MobileViT v{v.version} {v.width} (timm {v.timm_name}, pretrained=False)",
    )
    def builder(*, drop_path_rate: float = 0.0) -> tuple[nn.Module, int]:
        """timm MobileViT trunk (pretrained=False); ``drop_path_rate``: stochastic depth."""
        return _create_mobilevit(name, drop_path_rate)


for _name in MOBILEVIT_VARIANTS:
    _register_variant(_name)
