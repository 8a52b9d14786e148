"""ESPNetv2 (Mehta et al., CVPR 2019), implemented in thorgym.

Architecture, following the paper and the structure of the public EdgeNets code (own code):

* stem: 3×3 stride-2 conv + BN + PReLU;
* four stages (output strides 4, 8, 16, 32), each a strided EESP down-sampler followed by
  ``reps = [0, 3, 7, 3]`` EESP units;
* EESP unit: grouped 1×1 reduce (K=4 groups) to ``n = out/K`` channels → K depthwise 3×3
  branches whose dilations come from the stage's receptive-field limit ``r_lim`` → hierarchical
  feature fusion (running sum over the branches, in order of growing receptive field) → concat
  → BN + PReLU → grouped 1×1 expand (K groups) + BN → residual → PReLU;
* strided EESP (down-sampler): a 3×3 stride-2 average pool of the input concatenated with a
  stride-2 EESP producing the remaining channels; for the first three stages plus an "input
  reinforcement" from the RGB image average-pooled to the same resolution (3×3 conv + BN + PReLU,
  1×1 conv + BN), then PReLU;
* last stage ends with a depthwise 3×3 CBR and a grouped (K) 1×1 CBR to the final width, then
  global average pooling (dropout 0.2 + linear in the classification model).

With a 1000-class head the five scales have 1.24M / 1.67M / 1.96M / 2.31M / 3.49M parameters and
28.4M / 85.7M / 123.4M / 168.6M / 284.8M multiply-adds at 224×224, as in the paper (checked in
``tests/agents``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

# --------------------------------------------------------------------------------------------
# Architecture as data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ESPNetv2Config:
    """One ESPNetv2 scale.

    Attributes:
        channels: widths of the stem, the four stages, and the final 1×1 expansion.
        reps: EESP units after the down-sampler of each of the four stages.
        r_lim: receptive-field limits of the 3×3 branches; stage ``i`` down-samples with
            ``r_lim[i]`` and its units use ``r_lim[i + 1]``.
        branches: K, parallel branches (and groups of the 1×1 convolutions).
        reinforce: which of the four down-samplers receive the input reinforcement.
    """

    channels: tuple[int, int, int, int, int, int]
    reps: tuple[int, int, int, int] = (0, 3, 7, 3)
    r_lim: tuple[int, int, int, int, int] = (13, 11, 9, 7, 5)
    branches: int = 4
    reinforce: tuple[bool, bool, bool, bool] = (True, True, True, False)


ESPNETV2_CONFIGS: dict[str, ESPNetv2Config] = {
    "0.5": ESPNetv2Config(channels=(16, 32, 64, 128, 256, 1024)),
    "1.0": ESPNetv2Config(channels=(32, 64, 128, 256, 512, 1024)),
    "1.25": ESPNetv2Config(channels=(32, 80, 160, 320, 640, 1024)),
    "1.5": ESPNetv2Config(channels=(32, 96, 192, 384, 768, 1024)),
    "2.0": ESPNetv2Config(channels=(32, 128, 256, 512, 1024, 1280)),
}


def branch_dilations(branches: int, r_lim: int) -> list[int]:
    """Dilation rates of the K depthwise 3×3 branches for a receptive-field limit.

    Branch ``i`` would see a ``(3 + 2i)``-wide field (dilation ``i + 1``); a branch over the
    limit falls back to a plain 3×3 (dilation 1). Sorted ascending, so that hierarchical fusion
    adds fields in growing order: 13/11/9 → [1, 2, 3, 4], 7 → [1, 1, 2, 3], 5 → [1, 1, 1, 2].
    """
    fields = [3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(branches)]
    return sorted((f - 1) // 2 for f in fields)


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------


class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm, optionally followed by PReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.PReLU(cout))
        super().__init__(*layers)


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid unit (reduce → split → transform → merge).

    With ``stride == 1`` (and ``cin == cout``) it is a residual unit ending in PReLU. With
    ``stride == 2`` it returns the expanded, un-activated map for :class:`StridedEESP` to merge.
    """

    def __init__(self, cin: int, cout: int, stride: int, branches: int, r_lim: int) -> None:
        super().__init__()
        if cout % branches:
            raise ValueError(f"EESP output width {cout} is not divisible by K={branches}")
        n = cout // branches
        self.stride = stride
        self.residual = stride == 1 and cin == cout
        self.reduce = ConvBN(cin, n, 1, groups=branches)
        self.branches = nn.ModuleList(
            nn.Conv2d(n, n, 3, stride, padding=d, dilation=d, groups=n, bias=False)
            for d in branch_dilations(branches, r_lim)
        )
        self.merge_act = nn.Sequential(nn.BatchNorm2d(cout), nn.PReLU(cout))
        self.expand = ConvBN(cout, cout, 1, groups=branches, act=False)
        self.act = nn.PReLU(cout) if stride == 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.reduce(x)
        outs = []
        fused = None
        for branch in self.branches:
            y = branch(z)
            fused = y if fused is None else fused + y  # hierarchical feature fusion
            outs.append(fused)
        y = self.expand(self.merge_act(torch.cat(outs, 1)))
        if self.stride != 1:
            return y
        if self.residual:
            y = y + x
        return self.act(y)


class StridedEESP(nn.Module):
    """Down-sampler: [avg-pool(x), EESP_stride2(x)] concatenated (+ input reinforcement), PReLU."""

    def __init__(self, cin: int, cout: int, branches: int, r_lim: int, reinforce: bool) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.eesp = EESP(cin, cout - cin, stride=2, branches=branches, r_lim=r_lim)
        self.reinforce = (
            nn.Sequential(ConvBN(3, 3, 3), ConvBN(3, cout, 1, act=False)) if reinforce else None
        )
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        y = torch.cat([self.pool(x), self.eesp(x)], 1)
        if self.reinforce is not None:
            if image is None:
                raise ValueError("this down-sampler needs the down-sampled input image")
            y = y + self.reinforce(image)
        return self.act(y)


class ESPNetv2Stage(nn.Module):
    """A strided EESP followed by ``reps`` EESP units."""

    def __init__(
        self,
        cin: int,
        cout: int,
        reps: int,
        branches: int,
        r_lim_down: int,
        r_lim_units: int,
        reinforce: bool,
    ) -> None:
        super().__init__()
        self.down = StridedEESP(cin, cout, branches, r_lim_down, reinforce)
        self.units = nn.Sequential(
            *(EESP(cout, cout, 1, branches, r_lim_units) for _ in range(reps))
        )

    def forward(self, x: torch.Tensor, image: torch.Tensor | None) -> torch.Tensor:
        return self.units(self.down(x, image))


class ESPNetv2Features(nn.Module):
    """ESPNetv2 trunk: normalised float NCHW → pooled ``(N, channels[-1])`` features."""

    def __init__(self, cfg: ESPNetv2Config) -> None:
        super().__init__()
        ch, k = cfg.channels, cfg.branches
        self.cfg = cfg
        self.stem = ConvBN(3, ch[0], 3, stride=2)
        self.stages = nn.ModuleList(
            ESPNetv2Stage(
                ch[i], ch[i + 1], cfg.reps[i], k, cfg.r_lim[i], cfg.r_lim[i + 1], cfg.reinforce[i]
            )
            for i in range(4)
        )
        self.final = nn.Sequential(
            ConvBN(ch[4], ch[4], 3, groups=ch[4]),  # depthwise 3x3
            ConvBN(ch[4], ch[5], 1, groups=k),  # grouped point-wise expansion
        )
        self.num_features = ch[5]
        self._last_reinforced = max((i for i, r in enumerate(cfg.reinforce) if r), default=-1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # RGB pyramid for the input reinforcement: 3x3/2 average pooling gives exactly the
        # ceil(H/2) x ceil(W/2) grid of the stride-2 convolutions, for any (rectangular) size.
        image = F.avg_pool2d(x, 3, stride=2, padding=1)
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i <= self._last_reinforced:
                image = F.avg_pool2d(image, 3, stride=2, padding=1)
            x = stage(x, image if stage.down.reinforce is not None else None)
        x = self.final(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


# --------------------------------------------------------------------------------------------
# Builder and registry entries
# --------------------------------------------------------------------------------------------


def _create_espnetv2(scale: str, input_reinforcement: bool = True) -> tuple[nn.Module, int]:
    cfg = ESPNETV2_CONFIGS[scale]
    if not input_reinforcement:
        cfg = replace(cfg, reinforce=(False, False, False, False))
    net = ESPNetv2Features(cfg)
    return net, net.num_features


def _register_scale(scale: str) -> None:
    cfg = ESPNETV2_CONFIGS[scale]

    @register(
        f"espnetv2_s{scale}",
        family="espnetv2",
        drop_rate=0.2,
        description=f"ESPNetv2 s={scale} (EESP, K={cfg.branches}), {cfg.channels[-1]}-d features",
    )
    def builder(*, input_reinforcement: bool = True) -> tuple[nn.Module, int]:
        """ESPNetv2 trunk; ``input_reinforcement=False`` drops the RGB shortcuts (ablation)."""
        return _create_espnetv2(scale, input_reinforcement)


for _scale in ESPNETV2_CONFIGS:
    _register_scale(_scale)
