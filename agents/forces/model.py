"""The force-prediction model of "What happens if…" (Mottaghi et al., ECCV 2016), sized for a CPU.

The paper: AlexNet on the image + object mask (fc7, 4096-d) concatenated with a 4096-d force
encoding, into a 6-step ReLU RNN (hidden 1000) with 18 outputs per step. Here:

* **image row** — a registry backbone (``cnn_small`` by default; ``resnet18``, ``espnetv2_*``,
  ``mobilevit*`` selectable) whose image-reading convolutions are widened from 3 to
  :func:`input_channels` channels: RGB (normalised as the backbone's family wants), the object
  mask and, unless ``point_map=False``, a Gaussian blob at the force's image point. The mask
  channel is the paper's; the point map is ours: it lets the convolutions relate *where* the push
  acts to the object and its support (pushed at the top → tips, near a table edge → falls), which
  the force encoding's bare (x, y) reaches only through pooled features. Widening the convolutions
  (rather than a 4→3 mixing layer in front) keeps the RGB path as the backbone built it and gives
  the extra channels their own filters;
* **force row** — an MLP on :func:`thorgym.tasks.forces.force_encoding` (point, direction as
  sin/cos, log magnitude);
* **decoder** — a GRU cell (hidden 256) unrolled :data:`STEPS` times. Its first hidden state is a
  projection of the fused features and *every step's input is the same fused vector*: it is fed
  neither the previous step's prediction nor the label (no teacher forcing), so training and
  inference run one and the same computation, with no exposure bias, and the hidden state alone
  carries what happened before (the paper's RNN, which also takes no prediction feedback);
  each step's hidden state goes through a linear layer to 18 logits.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from thorgym.agents.backbones import build_backbone, get_spec
from thorgym.tasks.forces import FORCE_FEATURES, NUM_CLASSES, STEPS

__all__ = [
    "IMAGE_CONVS",
    "ForcesModel",
    "ForcesModelConfig",
    "count_parameters",
    "input_channels",
    "point_maps",
    "weighted_sequence_loss",
    "widen_image_convs",
]

# Per backbone family: the convolutions (names inside ``ImageBackbone.features``) that read the
# input image itself. ESPNetv2 reads it at its stem and in each input-reinforcement branch (the
# first conv of ``reinforce``; the second reads that conv's 3-channel output, not the image).
IMAGE_CONVS: dict[str, str] = {
    "smallcnn": r"0",
    "resnet": r"conv1",
    "mobilevit": r"stem\.conv",
    "espnetv2": r"stem\.0|stages\.\d+\.down\.reinforce\.0\.0",
}

POINT_SIGMA = 0.06  # the force-point blob's standard deviation, as a share of the image side


@dataclass
class ForcesModelConfig:
    """Everything needed to rebuild a :class:`ForcesModel` (kept in checkpoints, plain types)."""

    backbone: str = "cnn_small"
    size: int = 64  # input side in pixels: images of another size are resized to it
    hidden: int = 256  # GRU hidden size
    force_dim: int = 128  # force-encoding MLP width
    fused_dim: int = 256  # width of the fused image + force vector
    dropout: float = 0.1
    point_map: bool = True  # a Gaussian at the force point as an extra input channel

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def input_channels(point_map: bool) -> int:
    """RGB + mask (+ the force-point map)."""
    return 4 + int(point_map)


def widen_image_convs(features: nn.Module, family: str, channels: int) -> list[str]:
    """Replace the convolutions of ``features`` that read the image (:data:`IMAGE_CONVS`) by
    ones taking ``channels`` input channels; their RGB filters are kept, the extra channels'
    filters are initialised like a fresh convolution's. Returns the names replaced."""
    if family not in IMAGE_CONVS:
        raise ValueError(
            f"backbone family {family!r}: the forces model does not know which convolutions read "
            f"the image; add it to IMAGE_CONVS (known: {sorted(IMAGE_CONVS)})"
        )
    pattern = re.compile(IMAGE_CONVS[family])
    names = [
        n
        for n, m in features.named_modules()
        if isinstance(m, nn.Conv2d) and pattern.fullmatch(n) and m.in_channels == 3
    ]
    if not names:
        raise ValueError(f"no image convolution matched {IMAGE_CONVS[family]!r} in the {family} backbone")
    for name in names:
        parent_name, _, leaf = name.rpartition(".")
        parent = features.get_submodule(parent_name) if parent_name else features
        old: nn.Conv2d = getattr(parent, leaf)
        new = nn.Conv2d(
            channels, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
            old.groups, old.bias is not None, old.padding_mode,
        )  # fmt: skip
        with torch.no_grad():
            new.weight[:, :3] = old.weight
            # extra channels: the fresh init, scaled to the RGB filters' spread
            new.weight[:, 3:] *= old.weight.std() / new.weight[:, 3:].std().clamp(min=1e-8)
            if old.bias is not None:
                new.bias.copy_(old.bias)
        setattr(parent, leaf, new)
    return names


def point_maps(points: torch.Tensor, height: int, width: int, sigma: float = POINT_SIGMA) -> torch.Tensor:
    """(N, 1, H, W) Gaussian blobs (peak 1) at image points (N, 2) given as x, y in [0, 1]
    (origin top-left, pixel j's centre at (j + 0.5) / W)."""
    xs = (torch.arange(width, device=points.device, dtype=torch.float32) + 0.5) / width
    ys = (torch.arange(height, device=points.device, dtype=torch.float32) + 0.5) / height
    dx = xs[None, None, :] - points[:, 0, None, None]
    dy = ys[None, :, None] - points[:, 1, None, None]
    return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))[:, None]


class ForcesModel(nn.Module):
    """(image, mask, force) → (N, STEPS, NUM_CLASSES) logits. See the module docstring."""

    def __init__(self, cfg: ForcesModelConfig) -> None:
        super().__init__()
        if cfg.size < 64:
            raise ValueError(f"the forces model needs images of at least 64 pixels, got size {cfg.size}")
        self.cfg = cfg
        backbone = build_backbone(cfg.backbone, num_classes=0)
        self.family = get_spec(cfg.backbone).family
        self.channels = input_channels(cfg.point_map)
        widen_image_convs(backbone.features, self.family, self.channels)
        self.backbone = backbone
        self.force_mlp = nn.Sequential(
            nn.Linear(FORCE_FEATURES, cfg.force_dim),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.force_dim, cfg.force_dim),
            nn.ReLU(inplace=True),
        )
        self.fuse = nn.Sequential(
            nn.Linear(backbone.out_dim + cfg.force_dim, cfg.fused_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
        )
        self.h0 = nn.Linear(cfg.fused_dim, cfg.hidden)
        self.rnn = nn.GRUCell(cfg.fused_dim, cfg.hidden)
        self.head = nn.Linear(cfg.hidden, NUM_CLASSES)

    def image_input(self, image: torch.Tensor, mask: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        """(N, C, size, size) backbone input from (N, H, W, 3) uint8 images, (N, H, W) bool masks
        and (N, 2) force points: RGB normalised with the backbone's mean/std, mask and point map
        in [-1, 1]; resized (bilinear for RGB, nearest for the mask) when H, W != size."""
        rgb = image.permute(0, 3, 1, 2).float() / 255.0
        m = mask[:, None].float()
        s = self.cfg.size
        if rgb.shape[-2:] != (s, s):
            rgb = F.interpolate(rgb, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            m = F.interpolate(m, size=(s, s), mode="nearest")
        rgb = rgb * self.backbone.scale + self.backbone.shift
        parts = [rgb, m * 2 - 1]
        if self.cfg.point_map:
            parts.append(point_maps(point.float(), s, s) * 2 - 1)
        return torch.cat(parts, 1)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, point: torch.Tensor, force: torch.Tensor
    ) -> torch.Tensor:
        """Logits (N, STEPS, NUM_CLASSES) for a batch: image (N, H, W, 3) uint8, mask (N, H, W)
        bool, point (N, 2) in [0, 1], force (N, FORCE_FEATURES) from ``force_encoding``."""
        x = self.image_input(image, mask, point)
        feats = self.backbone.features(x)
        z = self.fuse(torch.cat([feats, self.force_mlp(force.float())], 1))
        h = torch.tanh(self.h0(z))
        out = []
        for _ in range(STEPS):
            h = self.rnn(z, h)
            out.append(self.head(h))
        return torch.stack(out, 1)


def weighted_sequence_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Class-weighted cross-entropy over all steps of all samples (the paper's frequency-weighted
    loss): sum_i w[y_i] CE_i / sum_i w[y_i], so the scale does not depend on the batch's mix."""
    flat = logits.reshape(-1, NUM_CLASSES)
    y = labels.reshape(-1)
    w = weights[y]
    ce = F.cross_entropy(flat, y, reduction="none")
    return (w * ce).sum() / w.sum().clamp(min=1e-8)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
