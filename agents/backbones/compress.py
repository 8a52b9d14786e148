"""Backbone compression: structured channel pruning, low-rank factorisation, int8 quantization.

Every method returns a new :class:`~thorgym.agents.backbones.base.ImageBackbone` (same input
convention, same ``out_dim``), so a compressed model drops into ``InferenceEngine`` and the
policies unchanged. The structured methods physically shrink tensors — nothing is masked — so
:func:`~thorgym.agents.backbones.profile.count_params` / ``count_macs`` and the measured
throughput all see the smaller network.

* :func:`prune_channels` — L1-norm structured pruning of *inner* channels (the ones no other
  block sees, so widths between blocks and ``out_dim`` stay): the ``n = out/K`` reduced channels
  of every ESPNetv2 EESP unit (kept in equal numbers per group, since the reduce 1×1 is grouped),
  the hidden convolutions of ``cnn_small``, and the first convolution of every ResNet basic
  block. A channel's score is the L1 norm of the weights it feeds, scaled by its BatchNorm
  gain where one follows (Li et al. 2017's criterion, BN-aware as in network slimming).
* :func:`factorize_lowrank` — truncated-SVD factorisation of 1×1 convolutions (grouped ones
  per group) and linear layers into two thinner layers; a layer is only replaced where the
  chosen rank lowers its multiply-adds.
* :func:`quantize_int8` — post-training static int8 quantization of the feature trunk on CPU
  with ``torch.ao.quantization`` FX graph mode (x86 backend, per-channel weights, calibrated on
  a few batches). Input normalisation and the classifier head stay float32.
* :func:`finetune` and :func:`mean_average_precision` — the short recovery fine-tune after
  pruning and the task metric of a model (multi-label presence mAP over its outputs, computed by
  :mod:`thorgym.agents.metrics`), so a speed-up is always reported next to what it costs.
* :func:`save_compressed` / :func:`load_compressed` — checkpoints of pruned / factorised models
  (the recipe is replayed on a freshly built backbone, then the weights loaded); int8 models
  are not checkpointed (re-quantize from the float checkpoint: calibration takes seconds).
"""

from __future__ import annotations

import copy
import io
import math
import os
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import mean_average_precision as _map
from .base import ImageBackbone
from .checkpoint import _unwrap, backbone_payload, save_torch_atomic
from .espnetv2 import EESP, ESPNetv2Features
from .registry import build_backbone, get_spec

COMPRESSED_FORMAT = "thorgym.compressed_backbone/1"

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _check_ratio(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise ValueError(f"{what} must be a number in (0, 1] (e.g. 0.5 keeps half), got {value!r}")
    return float(value)


def _check_backbone(model: nn.Module, fn: str) -> ImageBackbone:
    model = _unwrap(model)
    if not isinstance(model, ImageBackbone):
        raise TypeError(f"{fn} expects an ImageBackbone built by build_backbone(name, ...)")
    if getattr(model, "quantized", False):
        raise TypeError(f"{fn}: the model is int8-quantized; compress the float model first")
    return model


def _bn_gain(bn: nn.BatchNorm2d) -> torch.Tensor:
    """|γ| / sqrt(running_var + eps): how much BN scales each channel at inference."""
    gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
    return gamma.abs() / torch.sqrt(bn.running_var + bn.eps)


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> nn.Conv2d:
    """A new Conv2d with ``conv``'s geometry and the given (smaller) weight."""
    cout, cin_g = weight.shape[:2]
    new = nn.Conv2d(
        cin_g * groups,
        cout,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        groups=groups,
        bias=bias is not None,
        padding_mode=conv.padding_mode,
    ).to(weight.device, weight.dtype)
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new


def _bn_select(bn: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new = new.to(bn.running_mean.device)
    if bn.affine:
        new.weight.data.copy_(bn.weight.data[idx])
        new.bias.data.copy_(bn.bias.data[idx])
    new.running_mean.copy_(bn.running_mean[idx])
    new.running_var.copy_(bn.running_var[idx])
    new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


def _prelu_select(act: nn.PReLU, idx: torch.Tensor) -> nn.PReLU:
    if act.num_parameters == 1:
        return copy.deepcopy(act)
    new = nn.PReLU(len(idx)).to(act.weight.device)
    new.weight.data.copy_(act.weight.data[idx])
    return new


def _topk_sorted(score: torch.Tensor, k: int) -> torch.Tensor:
    # Stable tie-break by index, so equal scores (e.g. keep_ratio=1) keep the original order.
    return torch.sort(torch.topk(score, k, sorted=False).indices).values


def _keep(n: int, keep_ratio: float) -> int:
    return max(1, min(n, round(n * keep_ratio)))


# --------------------------------------------------------------------------------------------
# Structured channel pruning
# --------------------------------------------------------------------------------------------


def _prune_eesp(unit: EESP, keep_ratio: float) -> None:
    """Keep ``keep_ratio`` of the ``n`` reduced channels of an EESP unit, per reduce group."""
    red_conv, red_bn = unit.reduce[0], unit.reduce[1]
    red_act = unit.reduce[2] if len(unit.reduce) > 2 else None
    exp_conv = unit.expand[0]
    merge_bn, merge_act = unit.merge_act[0], unit.merge_act[1]
    k = len(unit.branches)
    groups = red_conv.groups
    n = red_conv.out_channels
    per_group = n // groups
    m = _keep(per_group, keep_ratio)
    if m == per_group:
        return
    # Score of reduced channel j: its BN gain × Σ over branches i of (merge BN gain of the
    # fused channel i·n + j) × L1 norm of the expand weights reading that channel.
    w_exp = exp_conv.weight.detach().abs().sum(dim=(2, 3))  # (cout, n): per group i rows i·n..
    gain_merge = _bn_gain(merge_bn).view(k, n)
    out_per_group = exp_conv.out_channels // exp_conv.groups
    outgoing = torch.stack(
        [w_exp[i * out_per_group : (i + 1) * out_per_group].sum(0) for i in range(k)]
    )  # (k, n)
    score = _bn_gain(red_bn) * (gain_merge * outgoing).sum(0)
    keep = torch.cat(
        [g * per_group + _topk_sorted(score[g * per_group : (g + 1) * per_group], m) for g in range(groups)]
    )
    fused = torch.cat([i * n + keep for i in range(k)])
    unit.reduce[0] = _conv_like(red_conv, red_conv.weight.data[keep], None, groups)
    unit.reduce[1] = _bn_select(red_bn, keep)
    if red_act is not None:
        unit.reduce[2] = _prelu_select(red_act, keep)
    unit.branches = nn.ModuleList(_conv_like(b, b.weight.data[keep], None, len(keep)) for b in unit.branches)
    unit.merge_act[0] = _bn_select(merge_bn, fused)
    unit.merge_act[1] = _prelu_select(merge_act, fused)
    unit.expand[0] = _conv_like(exp_conv, exp_conv.weight.data[:, keep], None, exp_conv.groups)


def _prune_plain_convs(seq: nn.Sequential, keep_ratio: float) -> None:
    """cnn_small: prune every conv's outputs except the last one's (it fixes ``out_dim``)."""
    idx = [i for i, m in enumerate(seq) if isinstance(m, nn.Conv2d)]
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        conv, nxt = seq[a], seq[b]
        if conv.groups != 1 or nxt.groups != 1:
            raise ValueError("channel pruning of plain conv stacks supports ungrouped convs only")
        n = conv.out_channels
        m = _keep(n, keep_ratio)
        if m == n:
            continue
        score = conv.weight.detach().abs().sum(dim=(1, 2, 3))  # filter L1 norm (Li et al.)
        keep = _topk_sorted(score, m)
        bias = None if conv.bias is None else conv.bias.data[keep]
        seq[a] = _conv_like(conv, conv.weight.data[keep], bias, 1)
        nb = None if nxt.bias is None else nxt.bias.data
        seq[b] = _conv_like(nxt, nxt.weight.data[:, keep], nb, 1)


def _prune_resnet(net: nn.Module, keep_ratio: float) -> None:
    """torchvision ResNet: prune the inner channels (conv1 → bn1 → conv2) of every block."""
    for block in net.modules():
        if not (hasattr(block, "conv1") and hasattr(block, "bn1") and hasattr(block, "conv2")):
            continue
        if hasattr(block, "conv3"):
            raise ValueError("channel pruning supports ResNet basic blocks, not bottlenecks")
        conv1, bn1, conv2 = block.conv1, block.bn1, block.conv2
        n = conv1.out_channels
        m = _keep(n, keep_ratio)
        if m == n:
            continue
        score = _bn_gain(bn1) * conv2.weight.detach().abs().sum(dim=(0, 2, 3))
        keep = _topk_sorted(score, m)
        block.conv1 = _conv_like(conv1, conv1.weight.data[keep], None, 1)
        block.bn1 = _bn_select(bn1, keep)
        block.conv2 = _conv_like(conv2, conv2.weight.data[:, keep], None, 1)


def prune_channels(model: nn.Module, keep_ratio: float) -> ImageBackbone:
    """A copy of ``model`` with ``keep_ratio`` of its inner channels kept (structured pruning).

    Only channels internal to a block are removed, so every block keeps its input/output width
    and the model its ``out_dim``; parameters, multiply-adds and run time drop for real.
    ``keep_ratio=1.0`` returns an exact copy. Supported families: ``espnetv2`` (EESP units,
    including the strided ones), ``smallcnn`` and ``resnet`` (basic blocks). Pruned weights are
    not retrained here: follow with :func:`finetune` (accuracy drops without it).
    """
    keep_ratio = _check_ratio(keep_ratio, "keep_ratio")
    src = _check_backbone(model, "prune_channels")
    out = copy.deepcopy(src)
    feats = out.features
    with torch.no_grad():
        if isinstance(feats, ESPNetv2Features):
            for unit in [m for m in feats.modules() if isinstance(m, EESP)]:
                _prune_eesp(unit, keep_ratio)
        elif isinstance(feats, nn.Sequential) and src.name == "cnn_small":
            _prune_plain_convs(feats, keep_ratio)
        elif get_spec(src.name).family == "resnet" if src.name else False:
            _prune_resnet(feats, keep_ratio)
        else:
            raise ValueError(
                f"prune_channels does not support backbone {src.name or type(feats).__name__!r}; "
                "supported: espnetv2_*, cnn_small, resnet18 (use factorize_lowrank for others)"
            )
    out.compression = [*getattr(src, "compression", []), {"method": "prune", "keep_ratio": keep_ratio}]
    return out


# --------------------------------------------------------------------------------------------
# Low-rank factorisation
# --------------------------------------------------------------------------------------------


class LowRank(nn.Sequential):
    """Two thinner layers replacing one: ``V`` (in → rank) then ``U·S`` (rank → out).

    A subclass of ``nn.Sequential`` of plain ``nn.Conv2d`` / ``nn.Linear`` layers, so the MAC
    counter, FX tracing and int8 quantization handle it with no special case.
    """


def _factor(w: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``w (out, in) ≈ a (out, r) @ b (r, in)`` by truncated SVD (singular values split evenly)."""
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    root = s[:r].sqrt()
    return (u[:, :r] * root).to(w.dtype), (root[:, None] * vh[:r]).to(w.dtype)


def _lowrank_conv(conv: nn.Conv2d, rank_ratio: float, only_if_smaller: bool) -> nn.Module:
    g = conv.groups
    cin_g, cout_g = conv.in_channels // g, conv.out_channels // g
    r = max(1, min(cin_g, cout_g, round(rank_ratio * min(cin_g, cout_g))))
    if only_if_smaller and r * (cin_g + cout_g) >= cin_g * cout_g:
        return conv
    w = conv.weight.detach().reshape(g, cout_g, cin_g)
    firsts, seconds = [], []
    for i in range(g):
        a, b = _factor(w[i], r)
        seconds.append(a)
        firsts.append(b)
    first = nn.Conv2d(conv.in_channels, g * r, 1, conv.stride, 0, groups=g, bias=False)
    second = nn.Conv2d(g * r, conv.out_channels, 1, 1, 0, groups=g, bias=conv.bias is not None)
    first = first.to(conv.weight.device, conv.weight.dtype)
    second = second.to(conv.weight.device, conv.weight.dtype)
    first.weight.data.copy_(torch.cat(firsts).reshape(g * r, cin_g, 1, 1))
    second.weight.data.copy_(torch.cat(seconds).reshape(conv.out_channels, r, 1, 1))
    if conv.bias is not None:
        second.bias.data.copy_(conv.bias.data)
    return LowRank(first, second)


def _lowrank_linear(lin: nn.Linear, rank_ratio: float, only_if_smaller: bool) -> nn.Module:
    cin, cout = lin.in_features, lin.out_features
    r = max(1, min(cin, cout, round(rank_ratio * min(cin, cout))))
    if only_if_smaller and r * (cin + cout) >= cin * cout:
        return lin
    a, b = _factor(lin.weight.detach(), r)
    first = nn.Linear(cin, r, bias=False).to(lin.weight.device, lin.weight.dtype)
    second = nn.Linear(r, cout, bias=lin.bias is not None).to(lin.weight.device, lin.weight.dtype)
    first.weight.data.copy_(b)
    second.weight.data.copy_(a)
    if lin.bias is not None:
        second.bias.data.copy_(lin.bias.data)
    return LowRank(first, second)


def factorize_lowrank(
    model: nn.Module,
    rank_ratio: float,
    *,
    include_head: bool = False,
    only_if_smaller: bool = True,
) -> ImageBackbone:
    """A copy of ``model`` whose 1×1 convolutions (and linears) are truncated-SVD factorised.

    Each (per-group, for grouped convolutions) ``out × in`` weight becomes ``U_r S_r`` after
    ``V_r^T`` with ``r = rank_ratio × min(in, out)``. With ``only_if_smaller`` (default) a layer
    is left alone when rank ``r`` would not lower its multiply-adds (``r (in + out) >= in·out``),
    so ``rank_ratio`` above about 0.5 changes little; ``only_if_smaller=False`` factorises
    everything (at ``rank_ratio=1`` the outputs equal the original's up to rounding). The
    classifier head is kept unless ``include_head``. Works for every registered family.
    """
    rank_ratio = _check_ratio(rank_ratio, "rank_ratio")
    src = _check_backbone(model, "factorize_lowrank")
    out = copy.deepcopy(src)
    roots = [out.features] + ([out.head] if include_head else [])

    def visit(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, LowRank):
                continue
            if (
                isinstance(child, nn.Conv2d)
                and child.kernel_size == (1, 1)
                and child.padding
                in (
                    (0, 0),
                    0,
                )
            ):
                setattr(parent, name, _lowrank_conv(child, rank_ratio, only_if_smaller))
            elif isinstance(child, nn.Linear):
                setattr(parent, name, _lowrank_linear(child, rank_ratio, only_if_smaller))
            else:
                visit(child)

    with torch.no_grad():
        for root in roots:
            visit(root)
    step = {
        "method": "lowrank",
        "rank_ratio": rank_ratio,
        "include_head": include_head,
        "only_if_smaller": only_if_smaller,
    }
    out.compression = [*getattr(src, "compression", []), step]
    return out


# --------------------------------------------------------------------------------------------
# int8 post-training quantization (CPU)
# --------------------------------------------------------------------------------------------


class FloatPReLU(nn.Module):
    """PReLU kept in float32 inside an int8 graph (see :func:`quantize_int8`)."""

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.weight = nn.Parameter(prelu.weight.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight)


def _swap_prelu(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.PReLU):
            setattr(module, name, FloatPReLU(child))
        else:
            _swap_prelu(child)


def quantize_int8(
    model: nn.Module,
    calibration: Iterable[torch.Tensor] | torch.Tensor,
    *,
    backend: str = "x86",
    calibration_batch: int = 32,
) -> ImageBackbone:
    """Post-training static int8 quantization of ``model.features`` for CPU inference.

    Uses ``torch.ao.quantization``'s FX graph mode (the ``x86`` backend: fbgemm/oneDNN kernels,
    per-channel int8 weights, uint8 activations with observers calibrated on
    ``calibration`` — uint8 NCHW images, or an iterable of such batches). Normalisation and the
    classifier head stay float32; the returned :class:`ImageBackbone` takes the same input and
    gives the same ``out_dim``, on CPU only. Params/MACs are those of the float model (the same
    operations, in int8); the weights take 4× less memory.

    Two torch 2.14 defects are worked around: its quantized PReLU kernel is wrong (73%
    relative error for conv + PReLU alone), so PReLU runs in float between the int8 ops (a
    dequantize / quantize pair around each one: on ESPNetv2, whose every block ends in PReLU,
    this eats into the gain); and ``torch.cat`` stays in float because a quantized cat takes
    its first input's scale. torch 2.14 warns that FX graph mode quantization and quantized
    tensors are deprecated (the successor is ``torchao``'s pt2e flow, an extra dependency not
    installed here); the API still ships and works.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    src = _check_backbone(model, "quantize_int8")
    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(
            f"quantized backend {backend!r} is not available here; "
            f"supported: {torch.backends.quantized.supported_engines}"
        )
    if isinstance(calibration, torch.Tensor):
        batches = list(calibration.split(calibration_batch))
    else:
        batches = list(calibration)
    if not batches:
        raise ValueError("quantize_int8 needs at least one calibration batch of images")
    torch.backends.quantized.engine = backend
    float_model = copy.deepcopy(src).cpu().eval()
    example = float_model.normalize(batches[0][:1].cpu())
    qmap = get_default_qconfig_mapping(backend)
    # A quantized torch.cat takes the scale of its *first* input, so concatenating EESP's
    # branch sums (each wider in range than the one before) would clip; keep cat in float
    # (its inputs are dequantized, the next layer re-quantizes with its own observer).
    qmap.set_object_type(torch.cat, None)
    # torch 2.14's quantized PReLU is wrong (conv + PReLU alone: 73% relative error against
    # float, conv + ReLU: 2%) and a None qconfig on nn.PReLU crashes convert_fx, so PReLU —
    # ESPNetv2's activation — becomes an opaque float module between int8 ops.
    _swap_prelu(float_model.features)
    qmap.set_object_type(FloatPReLU, None)
    custom = PrepareCustomConfig().set_non_traceable_module_classes([FloatPReLU])
    prepared = prepare_fx(float_model.features, qmap, (example,), prepare_custom_config=custom)
    with torch.no_grad():
        for b in batches:
            prepared(float_model.normalize(b.cpu()))
    qfeatures = convert_fx(prepared)
    out = ImageBackbone(
        qfeatures,
        num_features=src.num_features,
        num_classes=src.num_classes,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        name=src.name,
        build_kwargs=src.build_kwargs,
    )
    out.scale, out.shift = float_model.scale.clone(), float_model.shift.clone()
    out.head = float_model.head
    out.quantized = True
    out.compression = [*getattr(src, "compression", []), {"method": "int8", "backend": backend}]
    return out.eval()


# --------------------------------------------------------------------------------------------
# Task metric and recovery fine-tune
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``(N, out_dim)`` float32 outputs of ``model`` (eval mode, on its device) for uint8 NCHW
    ``images``, in batches; the model's training mode is restored afterwards."""
    was = model.training
    model.eval()
    try:
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None and not getattr(model, "quantized", False) else torch.device("cpu")
        outs = [
            model(images[i : i + batch_size].to(dev)).float().cpu() for i in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was)
    return torch.cat(outs) if outs else torch.empty(0)


def mean_average_precision(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 256
) -> float:
    """Multi-label task metric of a model: mAP over the classes with at least one positive in
    ``targets``, computed by :func:`thorgym.agents.metrics.mean_average_precision` (ties grouped).

    ``model`` maps uint8 ``(N, 3, H, W)`` ``images`` to ``(N, C)`` logits (an ImageBackbone
    with ``num_classes=C``); ``targets`` is ``(N, C)`` 0/1.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    if targets.shape[0] != images.shape[0]:
        raise ValueError(f"{len(images)} images but {len(targets)} target rows")
    scores = predict(model, images, batch_size)
    if scores.shape[1] != targets.shape[1]:
        raise ValueError(
            f"model gives {scores.shape[1]} outputs but targets have {targets.shape[1]} classes; "
            "build the model with num_classes equal to the number of target classes"
        )
    value, _ = _map(targets, scores)
    if math.isnan(value):
        raise ValueError("targets have no positive label: mAP is undefined")
    return value


def finetune(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` in place for ``steps`` AdamW steps of multi-label BCE; returns the losses.

    The recovery step after pruning or factorisation (and the base training of the benchmark):
    random mini-batches of the uint8 ``images`` with horizontal flips, cosine learning-rate decay,
    seeded. The model is left in eval mode.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if getattr(model, "quantized", False):
        raise TypeError("finetune: an int8 model cannot be trained; fine-tune the float model")
    p = next(iter(model.parameters()))
    dev = p.device
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(1, steps)))
    )
    targets = targets.float()
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (min(batch_size, len(images)),), generator=gen)
        x = images[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(dev)
        loss = F.binary_cross_entropy_with_logits(model(x), targets[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


# --------------------------------------------------------------------------------------------
# Checkpoints of compressed models
# --------------------------------------------------------------------------------------------


def model_bytes(model: nn.Module) -> int:
    """Size in bytes of ``model``'s serialised state dict (int8 weights count 1 byte)."""
    buf = io.BytesIO()
    torch.save(_unwrap(model).state_dict(), buf)
    return buf.getbuffer().nbytes


def save_compressed(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write a pruned and/or low-rank model atomically; :func:`load_compressed` reads it back.

    The checkpoint holds the backbone name, build arguments, the compression recipe and the
    state dict (readable with ``torch.load(weights_only=True)``). int8 models are refused:
    save the float model and call :func:`quantize_int8` after loading.
    """
    model = _unwrap(model)
    if getattr(model, "quantized", False):
        raise TypeError(
            "save_compressed does not support int8 models: save the float (pruned) model and "
            "re-run quantize_int8 after load_compressed (calibration takes seconds)"
        )
    payload = backbone_payload(model, COMPRESSED_FORMAT, "save_compressed")
    payload["compression"] = list(getattr(model, "compression", []))
    return save_torch_atomic(payload, path)


def apply_recipe(model: ImageBackbone, recipe: list[dict]) -> ImageBackbone:
    """Replay compression steps (``model.compression`` of a compressed model) on ``model``."""
    for step in recipe:
        method = step.get("method")
        if method == "prune":
            model = prune_channels(model, step["keep_ratio"])
        elif method == "lowrank":
            model = factorize_lowrank(
                model,
                step["rank_ratio"],
                include_head=step.get("include_head", False),
                only_if_smaller=step.get("only_if_smaller", True),
            )
        else:
            raise ValueError(f"cannot replay compression step {step!r} (only prune / lowrank)")
    return model


def load_compressed(path: str | os.PathLike) -> ImageBackbone:
    """Rebuild a model written by :func:`save_compressed` (CPU, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"compressed backbone checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"could not read compressed backbone checkpoint {path}: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != COMPRESSED_FORMAT:
        raise ValueError(
            f"{path} is not a compressed backbone checkpoint (expected format "
            f"{COMPRESSED_FORMAT!r}; plain backbones load with load_backbone)"
        )
    model = build_backbone(ckpt["name"], ckpt["num_classes"], **ckpt["build_kwargs"])
    model = apply_recipe(model, ckpt["compression"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
