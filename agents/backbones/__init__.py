"""Efficient image backbones: ESPNetv2 (own), MobileViT v1/v2 (timm), ResNet-18 (torchvision).

>>> from thorgym.agents.backbones import build_backbone, list_backbones
>>> net = build_backbone("espnetv2_s1.0")          # features: net.out_dim == 1024
>>> feats = net(images)                             # (N, 3, H, W) uint8, or float in [0, 1]

See :mod:`.base` for the input convention and :mod:`.registry` for registering new names.
Importing this package imports torch, but neither timm/torchvision (lazily, when such a backbone
is built) nor any environment or simulator code.
"""

from . import espnetv2, mobilevit, resnet, smallcnn  # noqa: F401  (register the families)
from .base import IMAGENET_MEAN, IMAGENET_STD, ImageBackbone
from .checkpoint import load_backbone, load_backbone_state, save_backbone
from .profile import count_macs, count_params
from .registry import BackboneSpec, build_backbone, get_spec, list_backbones, register

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BackboneSpec",
    "ImageBackbone",
    "build_backbone",
    "count_macs",
    "count_params",
    "get_spec",
    "list_backbones",
    "load_backbone",
    "load_backbone_state",
    "register",
    "save_backbone",
]
