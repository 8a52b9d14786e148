"""The module every registered backbone is wrapped in: input convention + optional head.

Input convention (the same for every backbone):

* layout NCHW, 3 channels, RGB; any ``H, W >= 64`` (rectangular allowed). Channels-last memory
  format is fine (and faster); an NHWC tensor viewed as NCHW with ``x.permute(0, 3, 1, 2)`` costs
  no copy.
* ``torch.uint8`` in 0..255, or a floating dtype already scaled to [0, 1].
* normalisation ``(x - mean) / std`` with the family's fixed per-channel mean/std happens inside,
  in float32 (or the parameters' dtype if the module was cast to a lower precision).

Output: ``(N, out_dim)``; pooled features when ``num_classes == 0``, logits otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class ImageBackbone(nn.Module):
    """Normalise inputs, run a feature network, optionally classify.

    Sub-modules: ``features`` (image → pooled ``(N, num_features)``) and ``head`` (dropout +
    linear, only when ``num_classes > 0``). A checkpoint of a classification model therefore
    loads into a feature model by dropping the ``head.*`` keys.

    Attributes:
        name: registered name (``""`` when built by hand).
        num_features: feature dimension of ``features``.
        num_classes: classes of the head (0: no head).
        out_dim: ``num_classes`` if > 0 else ``num_features``.
        build_kwargs: the builder keyword arguments it was built with (kept in checkpoints).
    """

    def __init__(
        self,
        features: nn.Module,
        *,
        num_features: int,
        num_classes: int = 0,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        drop_rate: float = 0.0,
        name: str = "",
        build_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.num_features = int(num_features)
        self.num_classes = int(num_classes)
        self.out_dim = self.num_classes if self.num_classes > 0 else self.num_features
        self.build_kwargs = dict(build_kwargs or {})
        self.drop_rate = float(drop_rate)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        # x01 * scale + shift == (x01 - mean) / std ; fixed constants, not part of checkpoints.
        self.register_buffer("scale", 1.0 / std_t, persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)
        self.features = features
        if self.num_classes > 0:
            self.head: nn.Module = nn.Sequential(
                nn.Dropout(self.drop_rate), nn.Linear(self.num_features, self.num_classes)
            )
        else:
            self.head = nn.Identity()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (0..255) or float ([0, 1]) NCHW → normalised float NCHW."""
        if x.dim() != 4 or x.shape[1] != 3:
            hint = ""
            if x.dim() == 4 and x.shape[-1] == 3:
                hint = " (looks like NHWC: pass x.permute(0, 3, 1, 2))"
            raise ValueError(
                f"expected an (N, 3, H, W) RGB batch, got shape {tuple(x.shape)}{hint}"
            )
        dtype = self.scale.dtype
        if x.dtype == torch.uint8:
            return x.to(dtype) * (self.scale / 255.0) + self.shift
        if x.is_floating_point():
            return x.to(dtype) * self.scale + self.shift
        raise TypeError(f"expected uint8 (0..255) or floating ([0, 1]) input, got {x.dtype}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ``(N, num_features)`` features of an image batch (see module docstring)."""
        return self.features(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, out_dim)``: features, or logits when the module has a head."""
        return self.head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_dim={self.out_dim}"
