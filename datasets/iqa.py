"""IQUAD-style question sets for ``thorgym/IQA-v0``: generation, shipped test splits, GloVe tokens.

``thorgym data iqa --out DIR [--per-type N] [--seed S]`` writes ``DIR/{train,seen,unseen}.csv``
with IQUAD's columns. What the generator guarantees (tested):

- existence and contains questions come as yes/no pairs on the same scene and object (two
  different scene configurations); counting questions as groups of four with answers 0, 1, 2, 3;
  so the answers of every split are balanced exactly;
- every question has its own scene configuration (scene + seed); seeds are ``3k + split``, so
  no (scene, seed) is shared between train and the test splits;
- a "yes" (and every counted instance) is visible under AI2-THOR's rule from some reachable
  pose (4 headings × horizons −30…60, receptacles opened), checked on the configured world;
- templates are IQUAD's (:data:`thorgym.tasks.iqa.TEMPLATES`), chosen with the scene seed;
- written atomically, deterministic for a seed, with a progress bar.

Sizes default to IQUAD V1's (per type: train 25,600, seen 800, unseen 640). The two test
splits ship with the package (``shipped_questions("seen" | "unseen")``); train is generated on
demand.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from thorgym.atomic import write_text_atomic
from thorgym.sim.batch import get_scene
from thorgym.sim.objects import OBJECT_TYPES
from thorgym.sim.poses import objects_visible_from_poses
from thorgym.sim.world import World
from thorgym.tasks import iqa
from thorgym.tasks.iqa_vocab import CLASS_INDEX, CONTAINERS, QUESTION_OBJECTS, QUESTION_TYPES

__all__ = [
    "configured_world",
    "generate_split",
    "question_tokens",
    "shipped_path",
    "shipped_questions",
    "write_splits",
]

DATA = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "seen", "unseen")
SPLIT_OFFSET = {"train": 0, "seen": 1, "unseen": 2}
PER_TYPE = {s: iqa.SPLIT_SIZES[s] // len(QUESTION_TYPES) for s in SPLITS}
_CHECK_YAWS = (0.0, 90.0, 180.0, 270.0)
_MAX_TRIES = 400  # seeds tried for one wanted answer before giving up on that (scene, object)


# -- configured worlds ---------------------------------------------------------------------------
def configured_world(config: iqa.SceneConfig) -> World:
    """A fresh world of the configuration's scene after its set-up calls (InitialRandomSpawn with
    ``numDuplicatesOfType``, then RemoveFromScene of the removed types), as the envs apply it."""
    world = World(get_scene(config.scene), 1)
    apply_config(world, config)
    return world


def apply_config(world: World, config: iqa.SceneConfig) -> None:
    world.random_spawn(config.seed, num_duplicates_of_type=dict(config.duplicates))
    for o in [o for o in world.objects if o.object_type in config.removed_types]:
        err = world.remove(o.object_id)
        if err:
            raise RuntimeError(f"RemoveFromScene({o.object_id}) failed in {config.scene}: {err}")


def object_states(world: World) -> dict[str, iqa.ObjectState]:
    return {
        o.object_id: iqa.ObjectState(
            o.object_id, o.object_type, o.parent, OBJECT_TYPES[o.object_type].openable,
            world.is_open[o.object_id],
        )  # fmt: skip
        for o in world.objects
    }


def _all_visible(world: World, object_ids: Sequence[str]) -> bool:
    """Every object is visible from some reachable pose once receptacles are open."""
    if not object_ids:
        return True
    for o in world.objects:
        t = OBJECT_TYPES[o.object_type]
        if t.openable and t.receptacle and not world.is_open[o.object_id]:
            world.open(o.object_id, True)
    pts = np.asarray(world.spec.reachable, dtype=np.float64)
    yaws = np.repeat(np.array(_CHECK_YAWS), len(iqa.HORIZONS))
    hors = np.tile(np.array(iqa.HORIZONS), len(_CHECK_YAWS))
    pos = np.repeat(pts, len(yaws), axis=0)
    seen = objects_visible_from_poses(
        world, pos, np.tile(yaws, len(pts)), np.tile(hors, len(pts)), list(object_ids),
        field_of_view=iqa.FIELD_OF_VIEW, visibility_distance=iqa.VISIBILITY_DISTANCE,
    )  # fmt: skip
    return all(seen.values())


# -- generation ----------------------------------------------------------------------------------
class _Seeds:
    """Seeds of one split: 3k + offset, k drawn without repetition."""

    def __init__(self, split: str, rng: np.random.Generator) -> None:
        self.offset = SPLIT_OFFSET[split]
        self.rng = rng
        self.used: set[int] = set()

    def next(self) -> int:
        while True:
            k = int(self.rng.integers(0, 2**29))
            if k not in self.used:
                self.used.add(k)
                return 3 * k + self.offset


def _evaluate(scene: str, seed: int, qtype: str, obj: str, container: str | None) -> int | None:
    """The answer of (scene, seed) to a question, or None when it is not checkable (a "yes" or
    a counted instance that no reachable pose sees, or more than 3 instances to count)."""
    config = iqa.scene_config(scene, seed, qtype)
    if qtype != "counting" and obj in config.removed_types:
        return 0  # nothing of the type is left: the answer is no without looking
    world = configured_world(config)
    states = object_states(world)
    ans = iqa.true_answer(states, qtype, obj, container)
    if qtype == "counting" and ans > 3:
        return None
    if ans == 0:
        return 0
    probe = iqa.Question(qtype, int(scene[9:]), seed, "", ans, CLASS_INDEX[obj],
                         CLASS_INDEX[container] if container else -1)  # fmt: skip
    return ans if _all_visible(world, iqa.evidence_objects(states, probe)) else None


def _question(
    qtype: str, scene: str, seed: int, answer: int, obj: str, container: str | None
) -> iqa.Question:
    return iqa.Question(
        question_type=qtype,
        scene_number=int(scene[len("FloorPlan") :]),
        seed=seed,
        question=iqa.question_text(qtype, obj, container, seed),
        answer=answer,
        object_id=CLASS_INDEX[obj],
        container_id=CLASS_INDEX[container] if container else -1,
    )


def _group(
    qtype: str, scene: str, obj: str, container: str | None, seeds: _Seeds
) -> list[iqa.Question] | None:
    """One balanced group (yes/no pair, or counts 0–3) on one scene and object, or None."""
    wanted = list(range(iqa.answer_range(qtype)))
    found: dict[int, iqa.Question] = {}
    for _ in range(_MAX_TRIES):
        seed = seeds.next()
        ans = _evaluate(scene, seed, qtype, obj, container)
        if ans is not None and ans in wanted and ans not in found:
            found[ans] = _question(qtype, scene, seed, ans, obj, container)
            if len(found) == len(wanted):
                return [found[a] for a in wanted]
    return None


def generate_split(
    split: str, per_type: int, seed: int = 0, progress: Callable[[int], None] | None = None
) -> list[iqa.Question]:
    """``per_type`` questions of each type for a split (rounded down to whole groups)."""
    if split not in SPLITS:
        raise ValueError(f"unknown IQA split {split!r}; use one of {list(SPLITS)}")
    if not (isinstance(per_type, int) and per_type >= 4):
        raise ValueError(f"per_type must be an integer >= 4 (one counting group), got {per_type!r}")
    rng = np.random.default_rng([int(seed), SPLIT_OFFSET[split]])
    seeds = _Seeds(split, rng)
    scenes = [f"FloorPlan{n}" for n in iqa.SCENES[split]]
    out: list[iqa.Question] = []
    for qtype in QUESTION_TYPES:
        size = iqa.answer_range(qtype)
        groups = per_type // size
        made, k = 0, 0
        while made < groups:
            scene = scenes[k % len(scenes)]
            obj = QUESTION_OBJECTS[int(rng.integers(len(QUESTION_OBJECTS)))]
            container = CONTAINERS[int(rng.integers(len(CONTAINERS)))] if qtype == "contains" else None
            k += 1
            g = _group(qtype, scene, obj, container, seeds)
            if g is None:
                if k > 50 * groups + 100:
                    raise RuntimeError(f"IQA generation for {split}/{qtype} cannot find enough groups")
                continue
            out.extend(g)
            made += 1
            if progress is not None:
                progress(size)
    return out


def write_splits(
    out: str | Path, per_type: int | None = None, seed: int = 0, splits: Sequence[str] = SPLITS
) -> dict[str, Path]:
    """Generate and write ``out/<split>.csv`` (atomically) for each split; returns the paths."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {s: per_type if per_type is not None else PER_TYPE[s] for s in splits}
    total = sum(len(QUESTION_TYPES) * sizes[s] for s in splits)
    paths = {}
    with tqdm(total=total, desc="IQA questions", unit="q") as bar:
        for s in splits:
            qs = generate_split(s, sizes[s], seed, progress=bar.update)
            paths[s] = out / f"{s}.csv"
            write_text_atomic(paths[s], iqa.questions_csv(qs))
    return paths


# -- shipped splits ------------------------------------------------------------------------------
def shipped_path(split: str) -> Path:
    if split not in ("seen", "unseen"):
        raise ValueError(f"thorgym ships the IQA test splits 'seen' and 'unseen', not {split!r}")
    return DATA / f"iqa_{split}_test.csv"


@functools.lru_cache(maxsize=4)
def _shipped(split: str) -> tuple[iqa.Question, ...]:
    return tuple(iqa.read_questions(shipped_path(split)))


def shipped_questions(split: str) -> list[iqa.Question]:
    """The shipped questions of a test split ("seen": FloorPlan6–30, "unseen": FloorPlan1–5)."""
    return list(_shipped(split))


# -- GloVe question tokens -----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _glove() -> tuple[np.ndarray, dict[str, int]]:
    from .objectnav_embeddings import glove_files, vocabulary

    vec_path, _ = glove_files()
    return np.load(vec_path, mmap_mode="r"), vocabulary()


def question_tokens(text: str) -> np.ndarray:
    """(16, 50) float32: GloVe 6B 50-d vectors of the question's first 16 words (zeros after,
    and for words outside the vocabulary)."""
    vectors, vocab = _glove()
    out = np.zeros((iqa.QUESTION_TOKENS, iqa.EMBEDDING_DIM), dtype=np.float32)
    for k, w in enumerate(re.findall(r"[a-z0-9]+", text.lower())[: iqa.QUESTION_TOKENS]):
        row = vocab.get(w)
        if row is not None:
            out[k] = vectors[row]
    return out
