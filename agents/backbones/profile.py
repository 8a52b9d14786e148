"""Parameter and multiply-add counting for backbones (a small forward-hook counter).

Counted: ``nn.Conv2d`` — ``output elements × in_channels / groups × kh × kw`` — and
``nn.Linear`` — ``output elements × in_features`` (``in × out`` for a plain 2-D input). Not
counted: normalisation, activations, pooling, element-wise additions, and matrix products done
outside ``nn.Linear`` (e.g. the attention ``q·k`` and ``attn·v`` products of MobileViT), the usual
convention of the papers' tables. The ESPNetv2 paper's figures count convolutions only
(``include_linear=False`` reproduces them to 0.1%); the classifier adds ``in × classes`` more.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those requiring grad if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(
    model: nn.Module, h: int, w: int, in_chans: int = 3, include_linear: bool = True
) -> int:
    """Multiply-adds of one forward pass of a single ``in_chans × h × w`` image.

    The model is run once in eval mode, without gradients, on a zero float image (so that
    wrapped backbones see a valid [0, 1] input) on the device of its parameters; its training
    mode is restored afterwards.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear) and include_linear:
            handles.append(m.register_forward_hook(linear_hook))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_chans, h, w, device=device))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return int(total)
