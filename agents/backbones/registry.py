"""Backbone registry: names → builders, in the style of timm's model registry.

A family module (``espnetv2.py``, ``mobilevit.py``, ``resnet.py``) decorates one small function per
model name with :func:`register`. The function takes only explicit keyword arguments and returns
``(features, num_features)``: a module mapping a normalised float NCHW batch to pooled
``(N, num_features)`` features. :func:`build_backbone` wraps it in
:class:`~thorgym.agents.backbones.base.ImageBackbone`, which adds the input convention (uint8 or
float in [0, 1], normalised inside) and, when ``num_classes > 0``, a linear classifier head.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, ImageBackbone

Builder = Callable[..., tuple[nn.Module, int]]


@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about one backbone name.

    Attributes:
        name: registered name, e.g. ``"espnetv2_s1.0"``.
        family: model family (the module it comes from), e.g. ``"espnetv2"``.
        builder: ``builder(**kw) -> (features_module, num_features)``.
        mean, std: per-channel RGB normalisation applied to inputs scaled to [0, 1].
        drop_rate: default dropout before the classifier head (only used when num_classes > 0).
        description: one line for listings.
    """

    name: str
    family: str
    builder: Builder
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    drop_rate: float = 0.0
    description: str = ""

    def builder_kwargs(self) -> list[str]:
        """Names of the keyword arguments the builder accepts."""
        params = inspect.signature(self.builder).parameters.values()
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


_REGISTRY: dict[str, BackboneSpec] = {}


def register(
    name: str,
    *,
    family: str,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    drop_rate: float = 0.0,
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name``.

    The builder must accept keyword arguments only (no ``**kwargs``), so that typos in
    :func:`build_backbone` calls are rejected instead of silently ignored.
    """

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        for p in inspect.signature(builder).parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                raise TypeError(f"builder for {name!r} must not take *args/**kwargs ({p.name})")
        _REGISTRY[name] = BackboneSpec(
            name=name,
            family=family,
            builder=builder,
            mean=tuple(mean),
            std=tuple(std),
            drop_rate=drop_rate,
            description=description,
        )
        return builder

    return decorator


def list_backbones(family: str | None = None) -> list[str]:
    """Registered backbone names (optionally of one family), in registration order."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of ``name``; ValueError listing the valid names if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(list_backbones())
        raise ValueError(f"unknown backbone {name!r}; valid names: {valid}") from None


def build_backbone(
    name: str, num_classes: int = 0, *, drop_rate: float | None = None, **kw: object
) -> ImageBackbone:
    """Build a registered backbone (always randomly initialised; no weights are downloaded).

    Args:
        name: a name from :func:`list_backbones`, e.g. ``"espnetv2_s1.0"``.
        num_classes: 0 → the module returns pooled features, ``out_dim == num_features``;
            > 0 → a dropout + linear classifier head, ``out_dim == num_classes``.
        drop_rate: dropout before the classifier head (default: the family's, e.g. 0.2 for
            ESPNetv2 as in the paper). Ignored when ``num_classes == 0``.
        **kw: family-specific builder options; they are checked against the builder's explicit
            keyword parameters and unknown ones raise TypeError naming the accepted ones.

    Returns:
        An :class:`ImageBackbone`. Input: ``(N, 3, H, W)`` uint8 in 0..255 or floating in
        [0, 1], any ``H, W >= 64`` (rectangular allowed); it is normalised inside with the
        family's fixed mean/std. Output: ``(N, out_dim)``.
    """
    spec = get_spec(name)
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an int >= 0, got {num_classes!r}")
    accepted = spec.builder_kwargs()
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise TypeError(
            f"backbone {name!r} got unexpected keyword argument(s) {unknown}; accepted: "
            f"num_classes, drop_rate{', ' if accepted else ''}{', '.join(accepted)}"
        )
    features, num_features = spec.builder(**kw)
    return ImageBackbone(
        features,
        num_features=num_features,
        num_classes=num_classes,
        mean=spec.mean,
        std=spec.std,
        drop_rate=spec.drop_rate if drop_rate is None else drop_rate,
        name=name,
        build_kwargs=dict(kw),
    )
