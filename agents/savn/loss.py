"""SAVN's learned interaction loss (Wortsman et al. 2019, Sec. 3.3).

The input of one environment is the matrix of its last ``window`` (6) steps of
``[LSTM hidden (512); policy (6)]``, shape ``(window, 518)``. As in the authors' code
(``TemporalConvNet(num_inputs=6, [10, 1], kernel_size=2)`` applied to ``H.unsqueeze(0)``) the
*steps are the channels* (6 → 10 → 1) and the dilated causal convolutions (kernel 2, dilations
1 and 2) run along the 518 feature positions; the loss is the L2 norm of the ``(1, 518)`` output.
Each level is a temporal block as in Bai et al.'s TCN: two causal dilated convolutions with a
leaky ReLU after each and a residual connection (1×1 convolution when the channel count
changes). The authors' blocks also use weight norm and dropout 0; both are left out here (weight
norm only reparametrises, and does not change what the loss can express).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InteractionLoss", "InteractionLossConfig"]


@dataclass(frozen=True)
class InteractionLossConfig:
    """Shape of the interaction-loss network (the paper's values by default)."""

    window: int = 6  # steps per inner update = input channels
    channels: tuple[int, ...] = (10, 1)  # output channels of the temporal blocks
    kernel_size: int = 2
    negative_slope: float = 0.01  # leaky ReLU


class _CausalConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class _TemporalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, slope: float) -> None:
        super().__init__()
        self.conv1 = _CausalConv(cin, cout, kernel, dilation)
        self.conv2 = _CausalConv(cout, cout, kernel, dilation)
        self.down = nn.Conv1d(cin, cout, 1) if cin != cout else None
        self.slope = slope
        for c in (self.conv1.conv, self.conv2.conv):
            nn.init.normal_(c.weight, 0.0, 0.01)  # as the TCN reference initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), self.slope)
        y = F.leaky_relu(self.conv2(y), self.slope)
        res = x if self.down is None else self.down(x)
        return F.leaky_relu(y + res, self.slope)


class InteractionLoss(nn.Module):
    """``forward(history) -> (N,)`` loss per environment from ``history`` ``(N, window, D)``."""

    def __init__(self, config: InteractionLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or InteractionLossConfig()
        c = self.config
        blocks = []
        cin = c.window
        for level, cout in enumerate(c.channels):
            blocks.append(_TemporalBlock(cin, cout, c.kernel_size, 2**level, c.negative_slope))
            cin = cout
        self.blocks = nn.Sequential(*blocks)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        if history.dim() != 3 or history.shape[1] != self.config.window:
            raise ValueError(
                f"interaction loss expects (N, {self.config.window}, D) histories, got {tuple(history.shape)}"
            )
        out = self.blocks(history)  # (N, 1, D)
        return out.flatten(1).norm(dim=1)
