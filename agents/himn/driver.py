"""Runs B IQA environments tick by tick for a hierarchical (HIMN) or flat policy.

Every tick each sub-environment takes one primitive action. A sub-environment whose plan is empty
asks its policy for a decision first (one batched forward over those that need one): HIMN's
planner picks one of 32 high-level actions, which the navigator (for the 25 goals) or a direct
mapping (rotate, look, open, close, answer through the answerer) turns into primitive actions;
the flat policy's decision is one primitive. The reward of a decision is the sum of the rewards
of its primitives; a decision ends when the next one is made or its episode ends.

The semantic map of every sub-environment is updated after every primitive from the depth frame
and per-pixel classes (ground truth from the simulator, or a learned detector's prediction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from thorgym.tasks import iqa
from thorgym.tasks.iqa_vocab import CLASS_INDEX, MAP_CLASSES

from . import navigator as nav
from .models import ANSWER, NUM_HIGH_LEVEL, Answerer, map_summary, question_features
from .semantic_map import COVERAGE, FREE, VISITED, SemanticMap

PRIMITIVE_INDEX = {a: k for k, a in enumerate(iqa.ACTIONS)}
OPENABLE_CLASSES = tuple(CLASS_INDEX[c] for c in ("Microwave", "Fridge", "Cabinet"))
MAP_SIZE = 64  # cells of 0.25 m: 16 m, centred on the episode's start
CROP = 33


@dataclass
class Decision:
    inputs: dict[str, torch.Tensor]  # the policy's inputs (one env, no batch dim)
    action: int
    logp: float
    value: float
    reward: float = 0.0
    done: bool = False
    next_value: float = 0.0


@dataclass
class EpisodeLog:
    records: list[dict[str, Any]] = field(default_factory=list)


def _horizon_onehot(h: torch.Tensor) -> torch.Tensor:
    k = torch.clamp(torch.round((h + 30.0) / 30.0), 0, 3).long()
    return torch.nn.functional.one_hot(k, 4).float()


class IQADriver:
    """Ticks an ``IQAVectorEnv`` (``autoreset_mode="SameStep"``, depth on; ``classes`` on for
    ground-truth perception) under a policy.

    Args:
        venv: the vector environment.
        policy: a :class:`~thorgym.agents.himn.models.Planner` (``hierarchical=True``) or
            :class:`~thorgym.agents.himn.models.FlatPolicy`.
        answerer: the answerer HIMN's Answer action asks (hierarchical only).
        detector: a learned per-pixel classifier used instead of ground-truth classes.
        greedy: take the most likely action instead of sampling.
    """

    def __init__(
        self,
        venv: Any,
        policy: torch.nn.Module,
        *,
        hierarchical: bool,
        answerer: Answerer | None = None,
        detector: Any = None,
        greedy: bool = False,
        seed: int = 0,
    ) -> None:
        self.venv, self.policy, self.answerer, self.detector = venv, policy, answerer, detector
        self.hierarchical, self.greedy = hierarchical, greedy
        self.n = venv.num_envs
        self.map = SemanticMap(self.n, MAP_SIZE)
        self.h = torch.zeros(self.n, policy.hidden)
        self.queue: list[list[int]] = [[] for _ in range(self.n)]
        self.pending: list[Decision | None] = [None] * self.n
        self.done: list[list[Decision]] = [[] for _ in range(self.n)]
        self.records: list[dict[str, Any]] = []
        self.gen = torch.Generator().manual_seed(seed)
        self.obs: dict[str, np.ndarray] | None = None
        self.steps = 0
        self.decision_count = np.zeros(self.n, dtype=np.int64)  # decisions in the current episode
        self.frames: list[list[np.ndarray]] | None = None  # per env, when recording videos

    # -- episodes ----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        obs, _ = self.venv.reset(seed=seed)
        self.obs = obs
        self.new_episode(np.arange(self.n))
        self.update_map()

    def new_episode(self, ids: np.ndarray) -> None:
        """Forget the maps, memories and plans of ``ids`` (their episode just started); the
        caller then adds the current views with :meth:`update_map`."""
        if len(ids) == 0:
            return
        poses = torch.as_tensor(self.obs["pose"][ids], dtype=torch.float32)
        self.map.reset_around(torch.as_tensor(ids), poses[:, :2])
        self.h[ids] = 0.0
        self.decision_count[ids] = 0
        for i in ids:
            self.queue[i] = []

    def _classes(self, ids: np.ndarray) -> torch.Tensor:
        if self.detector is None:
            return torch.as_tensor(self.obs["classes"][ids]).long()
        with torch.no_grad():
            return self.detector.predict(torch.as_tensor(self.obs["rgb"][ids])).long()

    def update_map(self) -> None:
        """Project every env's current view into its map (adding a view twice changes nothing)."""
        depth = torch.as_tensor(self.obs["depth"][..., 0])
        poses = torch.as_tensor(self.obs["pose"], dtype=torch.float32)
        self.map.update(depth, self._classes(np.arange(self.n)), poses, iqa.FIELD_OF_VIEW)

    # -- decisions ----------------------------------------------------------------------------
    def _question(self, ids: np.ndarray) -> torch.Tensor:
        o = self.obs
        return question_features(
            torch.as_tensor(o["question_type"][ids]), torch.as_tensor(o["object"][ids]),
            torch.as_tensor(o["container"][ids]),
        )  # fmt: skip

    def _inputs(self, ids: np.ndarray) -> tuple[dict[str, torch.Tensor], list[list[list[str]]]]:
        poses = torch.as_tensor(self.obs["pose"][ids], dtype=torch.float32)
        inp = {
            "question": self._question(ids),
            "horizon": _horizon_onehot(poses[:, 3]),
        }
        plans: list[list[list[str]]] = []
        if self.hierarchical:
            all_poses = torch.as_tensor(self.obs["pose"], dtype=torch.float32)
            crop = self.map.egocentric(all_poses, CROP)[ids]
            obj = torch.as_tensor(self.obs["object"][ids]).long()
            cont = torch.as_tensor(self.obs["container"][ids]).long()
            j = torch.arange(len(ids))
            target = torch.stack(
                [crop[j, obj], torch.where((cont > 0)[:, None, None], crop[j, cont], 0.0)], 1
            )
            inp["crop"] = torch.cat([crop, target], 1)
            inp["question"] = torch.cat([inp["question"], map_summary(self.map.map[ids], obj, cont)], -1)
            mask = torch.ones(len(ids), NUM_HIGH_LEVEL, dtype=torch.bool)
            free = ((self.map.map[:, FREE] > 0) | (self.map.map[:, VISITED] > 0)).numpy()
            cells = self.map.cells_of(all_poses[:, None, :2])[:, 0].numpy()
            centre = self._centre_class(ids)
            for j, i in enumerate(ids):
                p = nav.plan(free[i], (int(cells[i, 0]), int(cells[i, 1])), float(all_poses[i, 2]))
                plans.append(p)
                mask[j, : nav.NUM_GOALS] = torch.tensor([len(x) > 0 for x in p])
                hor = float(all_poses[i, 3])
                mask[j, 27] = hor > iqa.HORIZONS[0] + 1e-3
                mask[j, 28] = hor < iqa.HORIZONS[-1] - 1e-3
                mask[j, 29] = mask[j, 30] = bool(centre[j] in OPENABLE_CLASSES)
            inp["mask"] = mask
        else:
            rgb = torch.as_tensor(self.obs["rgb"][ids]).permute(0, 3, 1, 2).float() / 255.0
            inp["rgb"] = rgb
            inp["mask"] = torch.ones(len(ids), len(iqa.ACTIONS), dtype=torch.bool)
        return inp, plans

    def _centre_class(self, ids: np.ndarray) -> np.ndarray:
        c = self._classes(ids)
        h, w = c.shape[-2:]
        return c[:, h // 2, w // 2].numpy()

    def forward(self, inp: dict[str, torch.Tensor], h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        first = inp["crop"] if self.hierarchical else inp["rgb"]
        return self.policy(first, inp["question"], inp["horizon"], h, inp["mask"])

    def _decide(self, ids: np.ndarray) -> None:
        inp, plans = self._inputs(ids)
        h0 = self.h[ids].clone()
        with torch.no_grad():
            logits, value, h1 = self.forward(inp, h0)
        dist = Categorical(logits=logits)
        act = logits.argmax(-1) if self.greedy else torch.multinomial(dist.probs, 1, generator=self.gen)[:, 0]
        logp = dist.log_prob(act)
        self.h[ids] = h1
        self.decision_count[ids] += 1
        answers = self._answers(ids) if self.hierarchical and self.answerer is not None else None
        for j, i in enumerate(ids):
            d = Decision({k: v[j] for k, v in inp.items()} | {"h": h0[j]}, int(act[j]), float(logp[j]),
                         float(value[j]))  # fmt: skip
            prev = self.pending[i]
            if prev is not None:
                prev.next_value = d.value
                self.done[i].append(prev)
            self.pending[i] = d
            self.queue[i] = self._primitives(int(act[j]), plans[j] if plans else [], answers, j)

    def _answers(self, ids: np.ndarray) -> np.ndarray:
        o = self.obs
        with torch.no_grad():
            logits = self.answerer(
                self.map.map[ids], torch.as_tensor(o["question_type"][ids]),
                torch.as_tensor(o["object"][ids]),
                torch.as_tensor(o["container"][ids]),
            )  # fmt: skip
        return logits.argmax(-1).numpy()

    def _primitives(self, a: int, plans: list[list[str]], answers: np.ndarray | None, j: int) -> list[int]:
        if not self.hierarchical:
            return [a]
        if a < nav.NUM_GOALS:
            return [PRIMITIVE_INDEX[p] for p in plans[a]]
        if a == ANSWER:
            return [iqa.ANSWER0 + (int(answers[j]) if answers is not None else 0)]
        name = ("RotateLeft", "RotateRight", "LookUp", "LookDown", "OpenObject", "CloseObject")[
            a - nav.NUM_GOALS
        ]
        return [PRIMITIVE_INDEX[name]]

    # -- ticking ------------------------------------------------------------------------------
    def tick(self) -> None:
        """Decide where needed, then one primitive step of every sub-environment."""
        need = np.array([not q for q in self.queue])
        if need.any():
            self._decide(np.nonzero(need)[0])
        actions = np.array([q.pop(0) for q in self.queue], dtype=np.int64)
        obs, reward, term, trunc, info = self.venv.step(actions)
        self.steps += self.n
        ended = term | trunc
        for i in range(self.n):
            self.pending[i].reward += float(reward[i])
        if ended.any():
            fi = info["final_info"]
            for i in np.nonzero(ended)[0]:
                d = self.pending[i]
                d.done = True
                self.done[i].append(d)
                self.pending[i] = None
                rec = {k: _py(fi[k][i]) for k in fi if not k.startswith("_")}
                self.records.append(rec | {"env": int(i), "decisions": int(self.decision_count[i])})
        # a failed MoveAhead means the map was wrong there: forget the plan, block that cell
        moved = actions == PRIMITIVE_INDEX["MoveAhead"]
        failed = moved & ~np.asarray(info["last_action_success"], dtype=bool) & ~ended
        if self.frames is not None:
            for i in range(self.n):
                src = info["final_obs"][i]["rgb"] if ended[i] else obs["rgb"][i]
                self.frames[i].append(self.picture(i, src))
        self.obs = obs
        if failed.any():
            self._block_ahead(np.nonzero(failed)[0])
        self.new_episode(np.nonzero(ended)[0])
        self.update_map()

    def _block_ahead(self, ids: np.ndarray) -> None:
        poses = torch.as_tensor(self.obs["pose"], dtype=torch.float32)
        cells = self.map.cells_of(poses[:, None, :2])[:, 0].numpy()
        for i in ids:
            r, c = nav.cell_ahead((int(cells[i, 0]), int(cells[i, 1])), float(poses[i, 2]))
            if 0 <= r < self.map.height and 0 <= c < self.map.width:
                self.map.map[i, FREE, r, c] = 0.0
            self.queue[i] = []

    def picture(self, i: int, rgb: np.ndarray) -> np.ndarray:
        """The egocentric frame with the semantic map of env i beside it (for videos)."""
        m = self.map.map[i]
        h = rgb.shape[0]
        img = np.full((m.shape[1], m.shape[2], 3), 40, dtype=np.uint8)
        img[m[COVERAGE].numpy() > 0] = (90, 90, 90)
        img[m[FREE].numpy() > 0] = (150, 150, 150)
        img[m[VISITED].numpy() > 0] = (60, 120, 230)
        objs = m[1 : len(MAP_CLASSES)].numpy()
        palette = _palette()
        for c in range(objs.shape[0]):
            img[objs[c] > 0] = palette[c]
        img = img[::-1]  # +z up
        k = max(1, h // img.shape[0])
        img = np.kron(img, np.ones((k, k, 1), dtype=np.uint8))
        pad = np.zeros((h, img.shape[1], 3), dtype=np.uint8)
        pad[: min(h, img.shape[0])] = img[:h]
        return np.concatenate([np.asarray(rgb, dtype=np.uint8), pad], 1)

    def take_decisions(self) -> list[list[Decision]]:
        """The finished decisions of every sub-environment since the last call (in order)."""
        out, self.done = self.done, [[] for _ in range(self.n)]
        return out


def _palette() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(80, 256, size=(len(MAP_CLASSES) - 1, 3)).astype(np.uint8)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
