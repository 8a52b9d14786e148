"""IQUAD-style question sets for ``thorgym/IQA-v0``: generation, shipped test splits, GloVe tokens.

``thorgym data iqa --out DIR [--per-type N] [--seed S]`` writes ``DIR/{train,seen,unseen}.csv``
with IQUAD's columns. What the generator guarantees (tested):

- existence and contains questions come as yes/no pairs on the same scene and object (two
  different scene configurations); counting questions as groups of four with answers 0, 1, 2, 3;
  so the answers of every split are balanced exactly;
- every question has its own scene configuration (scene + seed); seeds are ``3k + split``, so
  no (scene, seed) is shared between train and the test splits;
- a "yes" (one instance in question; every counted instance) is visible under AI2-THOR's
  rule from some reachable pose (4 headings × horizons −30…60, receptacles opened), checked on
  the configured world;
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
            o.object_id,
            o.object_type,
            o.parent,
            OBJECT_TYPES[o.object_type].openable,
            world.is_open[o.object_id],
        )  # fmt: skip
        for o in world.objects
    }


def _visible(world: World, object_ids: Sequence[str], need_all: bool) -> bool:
    """Every (``need_all``) or some object is visible from some reachable pose once receptacles
    are open."""
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
    return all(seen.values()) if need_all else any(seen.values())


# -- generation ----------------------------------------------------------------------------------
_TRIES = 300  # seeds tried for one group (its job moves on to another object after that)
_ATTEMPTS = 8  # objects tried for one group (two per scene, starting at the group's scene)
_MAX_GROUPS = 30_000  # per type and split: keeps every seed below 2**31 (AI2-THOR's int)


def allowed_containers(obj: str) -> tuple[str, ...]:
    """Containers an object can be spawned in (the simulator's kitchen placement rules)."""
    from thorgym.sim.layout import spawn_receptacles

    recs = spawn_receptacles("kitchen", obj)
    return tuple(c for c in CONTAINERS if c in recs)


def _evaluate(
    scene: str, seed: int, qtype: str, obj: str, container: str | None, wanted: set[int]
) -> int | None:
    """The answer of (scene, seed) to a question if it is one of ``wanted`` and checkable, else
    None (a "yes" or a counted instance that no reachable pose sees, or more than 3 to count)."""
    config = iqa.scene_config(scene, seed, qtype)
    if obj in config.removed_types:
        return 0 if 0 in wanted else None  # nothing of the type is left
    world = configured_world(config)
    states = object_states(world)
    ans = iqa.true_answer(states, qtype, obj, container)
    if ans not in wanted:
        return None
    if ans == 0:
        return 0
    probe = iqa.Question(qtype, int(scene[9:]), seed, "", ans, CLASS_INDEX[obj],
                         CLASS_INDEX[container] if container else -1)  # fmt: skip
    need_all = qtype == "counting"  # every counted instance; for a "yes" one is enough
    return ans if _visible(world, iqa.evidence_objects(states, probe), need_all) else None


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


def _group_job(job: tuple[int, str, str, int, tuple[str, ...]]) -> list[iqa.Question]:
    """One balanced group (yes/no pair, or counts 0–3) on one scene and object.

    ``job`` = (base seed, split, question type, group number g, the split's scenes): the group
    is made in scene g (mod the scene count), or, where that fails, in the next ones. The object (and
    container) come from a generator of (base seed, split, type, g, attempt); the scene seeds
    tried are ``3 · ((g · 8 + attempt) · 1000 + t) + split offset`` with a type offset, so every
    (scene, seed) of a split is distinct and no seed is shared between splits.
    """
    base, split, qtype, g, scenes = job
    ti = QUESTION_TYPES.index(qtype)
    wanted_all = list(range(iqa.answer_range(qtype)))
    for attempt in range(_ATTEMPTS):
        scene = scenes[(g + attempt // 2) % len(scenes)]
        rng = np.random.default_rng([base, SPLIT_OFFSET[split], ti, g, attempt])
        container = None
        while True:
            obj = QUESTION_OBJECTS[int(rng.integers(len(QUESTION_OBJECTS)))]
            if qtype != "contains":
                break
            options = allowed_containers(obj)
            if options:
                container = options[int(rng.integers(len(options)))]
                break
        found: dict[int, iqa.Question] = {}
        for t in range(_TRIES):
            k = ((ti * _MAX_GROUPS + g) * _ATTEMPTS + attempt) * _TRIES + t  # < 2**31 / 3
            seed = 3 * k + SPLIT_OFFSET[split]
            ans = _evaluate(scene, seed, qtype, obj, container, set(wanted_all) - set(found))
            if ans is not None:
                found[ans] = _question(qtype, scene, seed, ans, obj, container)
                if len(found) == len(wanted_all):
                    return [found[a] for a in wanted_all]
    raise RuntimeError(f"IQA generation: no balanced {qtype} group found for group {g} of {split}")


def generate_split(
    split: str,
    per_type: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> list[iqa.Question]:
    """``per_type`` questions of each type for a split (rounded down to whole groups); the
    result does not depend on ``workers`` (processes)."""
    if split not in SPLITS:
        raise ValueError(f"unknown IQA split {split!r}; use one of {list(SPLITS)}")
    if not (isinstance(per_type, int) and 4 <= per_type <= _MAX_GROUPS):
        raise ValueError(f"per_type must be an integer in [4, {_MAX_GROUPS}], got {per_type!r}")
    scenes = tuple(f"FloorPlan{n}" for n in iqa.SCENES[split])
    jobs = [
        (int(seed), split, qtype, g, scenes)
        for qtype in QUESTION_TYPES
        for g in range(per_type // iqa.answer_range(qtype))
    ]
    out: list[iqa.Question] = []
    if workers <= 1:
        for job in jobs:
            out.extend(_group_job(job))
            if progress is not None:
                progress(iqa.answer_range(job[2]))
        return out
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, initializer=_quiet_worker) as pool:
        for group in pool.imap(_group_job, jobs, chunksize=4):
            out.extend(group)
            if progress is not None:
                progress(len(group))
    return out


def _quiet_worker() -> None:
    import torch

    torch.set_num_threads(1)


def write_splits(
    out: str | Path,
    per_type: int | None = None,
    seed: int = 0,
    splits: Sequence[str] = SPLITS,
    workers: int = 1,
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
            qs = generate_split(s, sizes[s], seed, progress=bar.update, workers=workers)
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
