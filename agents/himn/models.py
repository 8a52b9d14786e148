"""HIMN's networks: the high-level planner and the answerer (Gordon et al., CVPR 2018).

- :class:`Planner`: the egocentric crop of the semantic map (rotated to the heading) through a
  small CNN, with the question (type, object and container one-hot) and the camera horizon, into
  a GRU (64); a policy over the 32 high-level actions (masked: invalid ones get −inf) and a value.
- :class:`Answerer`: a conv net over the whole map, conditioned on the question by selecting
  the asked object's and container's channels (and their overlap), with global sum and max
  pooling so that it can count; logits over 4 answers (yes/no questions use the first two).
- :class:`FlatPolicy`: the flat baseline: the RGB frame through a small CNN, the question, a GRU,
  a policy over IQA's 11 primitive actions and a value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from thorgym.tasks.iqa_vocab import NUM_CLASSES

from .semantic_map import COVERAGE, FREE, NUM_CHANNELS, VISITED

HIGH_LEVEL_ACTIONS: tuple[str, ...] = (
    *(f"Goal{i}" for i in range(25)),
    "RotateLeft", "RotateRight", "LookUp", "LookDown", "OpenObject", "CloseObject", "Answer",
)  # fmt: skip
NUM_HIGH_LEVEL = len(HIGH_LEVEL_ACTIONS)  # 32
ANSWER = NUM_HIGH_LEVEL - 1
QUESTION_DIM = 3 + 2 * NUM_CLASSES
SUMMARY_DIM = 5  # map summary the planner reads beside the crop (see map_summary)
CROP_CHANNELS = NUM_CHANNELS + 2 + 2  # map, coordinates, the asked object's and container's channels
HIDDEN = 64


def question_features(qtype: torch.Tensor, obj: torch.Tensor, container: torch.Tensor) -> torch.Tensor:
    """(B, 45) one-hot question type, object class, container class (0 = none)."""
    return torch.cat(
        [
            F.one_hot(qtype.long(), 3),
            F.one_hot(obj.long(), NUM_CLASSES),
            F.one_hot(container.long(), NUM_CLASSES),
        ],
        -1,
    ).float()


def map_summary(maps: torch.Tensor, obj: torch.Tensor, container: torch.Tensor) -> torch.Tensor:
    """(B, 5): the asked object seen anywhere, the container seen, both in one cell, the covered
    fraction of the map and the object's cells / 10 (what the answer rests on, for the planner)."""
    b = maps.shape[0]
    idx = torch.arange(b, device=maps.device)
    o = maps[idx, obj.long()]
    c = torch.where((container > 0)[:, None, None], maps[idx, container.long()], torch.zeros_like(o))
    return torch.stack(
        [o.amax((1, 2)), c.amax((1, 2)), (o * c).amax((1, 2)), maps[:, COVERAGE].mean((1, 2)) * 4,
         o.sum((1, 2)) / 10.0],
        -1,
    )  # fmt: skip


class Planner(nn.Module):
    """Recurrent high-level policy over the egocentric map crop (:data:`CROP_CHANNELS`, S × S):
    the map's channels, the coordinates and, as HIMN's "targets" channels, the asked object's and
    container's channels again; beside it the question, the horizon and :func:`map_summary`."""

    def __init__(self, crop_channels: int = CROP_CHANNELS, crop_size: int = 33, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(crop_channels, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 256), nn.ReLU(),
        )  # fmt: skip
        self.question = nn.Sequential(nn.Linear(QUESTION_DIM + 4 + SUMMARY_DIM, 32), nn.ReLU())
        self.gru = nn.GRUCell(256 + 32, hidden)
        self.pi = nn.Linear(hidden, NUM_HIGH_LEVEL)
        self.v = nn.Linear(hidden, 1)
        self.hidden = hidden

    def forward(
        self,
        crop: torch.Tensor,
        question: torch.Tensor,
        horizon: torch.Tensor,
        h: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(masked logits (B, 32), value (B,), next hidden (B, 64)); ``question`` (B, 45 + 5): the
        question features then :func:`map_summary`; ``horizon`` (B, 4) one-hot."""
        x = torch.cat([self.cnn(crop), self.question(torch.cat([question, horizon], -1))], -1)
        h = self.gru(x, h)
        logits = self.pi(h).masked_fill(~mask, -1e9)
        return logits, self.v(h).squeeze(-1), h


class Answerer(nn.Module):
    """Answer logits (B, 4) from the whole map (B, C, H, W) and the question."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        cin = 4 + 3  # object, container, overlap, coverage + free, visited, all-classes
        self.conv = nn.Sequential(
            nn.MaxPool2d(2),  # 0.5 m cells: 4x cheaper, presence kept
            nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Linear(2 * width + QUESTION_DIM, 64), nn.ReLU(), nn.Linear(64, 4))

    @staticmethod
    def inputs(maps: torch.Tensor, obj: torch.Tensor, container: torch.Tensor) -> torch.Tensor:
        b = maps.shape[0]
        idx = torch.arange(b, device=maps.device)
        o = maps[idx, obj.long()]
        c = torch.where((container > 0)[:, None, None], maps[idx, container.long()], torch.zeros_like(o))
        anyc = maps[:, 1:NUM_CLASSES].amax(1)
        return torch.stack([o, c, o * c, maps[:, COVERAGE], maps[:, FREE], maps[:, VISITED], anyc], 1)

    def forward(
        self, maps: torch.Tensor, qtype: torch.Tensor, obj: torch.Tensor, container: torch.Tensor
    ) -> torch.Tensor:
        f = self.conv(self.inputs(maps, obj, container))
        pooled = torch.cat([f.sum((2, 3)) / 16.0, f.amax((2, 3))], -1)
        logits = self.head(torch.cat([pooled, question_features(qtype, obj, container)], -1))
        two = qtype != 1  # yes/no questions: only answers 0 and 1
        return logits.masked_fill(two[:, None] & (torch.arange(4, device=logits.device) >= 2), -1e9)


class FlatPolicy(nn.Module):
    """The flat baseline: RGB (B, 3, H, W) + question → GRU → 11 primitive actions and a value."""

    def __init__(self, num_actions: int = 11, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 256), nn.ReLU(),
        )  # fmt: skip
        self.question = nn.Sequential(nn.Linear(QUESTION_DIM + 4, 32), nn.ReLU())
        self.gru = nn.GRUCell(256 + 32, hidden)
        self.pi = nn.Linear(hidden, num_actions)
        self.v = nn.Linear(hidden, 1)
        self.hidden = hidden

    def forward(
        self,
        rgb: torch.Tensor,
        question: torch.Tensor,
        horizon: torch.Tensor,
        h: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.cat([self.cnn(rgb), self.question(torch.cat([question, horizon], -1))], -1)
        h = self.gru(x, h)
        logits = self.pi(h).masked_fill(~mask, -1e9)
        return logits, self.v(h).squeeze(-1), h
