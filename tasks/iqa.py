"""IQA: interactive question answering in kitchens (Gordon et al., CVPR 2018; IQUAD V1).

The task, independent of any backend:

- Questions (:class:`Question`) of three types: existence ("Is there a Mug in the room?"),
  counting (answers 0–3) and contains ("Is there an Egg in the Fridge?", containers GarbageCan,
  Microwave, Fridge, Cabinet), on kitchens FloorPlan1–30, with IQUAD's templates
  (:data:`TEMPLATES`, picked with the scene seed) and CSV columns (:data:`CSV_COLUMNS`).
- Each question names its own scene configuration: the scene and a seed. :func:`scene_config`
  turns (seed, question type) into AI2-THOR set-up calls: ``InitialRandomSpawn(randomSeed=seed,
  numDuplicatesOfType=…)`` then ``RemoveFromScene`` of the removed types' instances — IQUAD's
  random placement "with repeats and removals" ((up to 10 instances, removal probability 0.25)
  for existence and contains, (up to 3, 0.5) for counting) in ai2thor 5.x's vocabulary.
- Actions (:data:`ACTIONS`): MoveAhead, RotateLeft, RotateRight (90°), LookUp, LookDown (horizon
  in {−30, 0, 30, 60}), OpenObject, CloseObject (the object at the image centre, ``x=y=0.5``),
  and Answer0–Answer3 (the answer head: for yes/no questions 0 = no, 1 = yes; Answer2/3 on a
  yes/no question is an invalid action). An episode starts at a random reachable position, a
  random one of 4 headings, horizon 30, and ends with an answer or after 1,000 steps.
- Evidence: the agent has *seen the evidence* once it has seen (AI2-THOR visibility) an instance
  of the asked object (existence "yes"), as many instances as the answer (counting), an asked
  object inside a seen instance of the container (contains "yes"), or opened every instance of
  the container (contains "no"; the reference code's rule). Existence "no" has nothing to be
  seen: its evidence counts as seen from the start (the reference code never grants it).
- Rewards (the reference code's ``game_state.py``): −0.01 per step, −0.05 more for a failed
  action; opening a receptacle that is not the asked container of a contains question −1 (each
  time); the first opening of a receptacle +5 if it is the asked container, else +0.1; the first
  closing +0.1; coverage bonus (newly observed floor cells / 26); +10 on the step the evidence is
  first seen, after which existence and contains questions lose 1 per step; answer +10 if
  correct with the evidence seen, else −30; timeout −30. The step reward is clip(r / 10, −3, 1).
- Measures: accuracy per question type, episode length, invalid-action rate (:func:`summarize`).
"""

from __future__ import annotations

import csv
import io
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from thorgym.sim.layout import AGENT_Y, CAMERA_HEIGHT
from thorgym.sim.scenes import parse_scene, room_type

from .base import (
    MAX_DEPTH,
    EnvSetup,
    EpisodeFile,
    ObjectState,
    StepResult,
    TextEncoder,
    WorldsSpec,
    frame_observations,
    frame_spaces,
)
from .iqa_vocab import CLASS_INDEX, CONTAINERS, MAP_CLASSES, NUM_CLASSES, QUESTION_OBJECTS, QUESTION_TYPES

# -- constants -----------------------------------------------------------------------------------
ACTIONS: tuple[str, ...] = (
    "MoveAhead", "RotateLeft", "RotateRight", "LookUp", "LookDown", "OpenObject", "CloseObject",
    "Answer0", "Answer1", "Answer2", "Answer3",
)  # fmt: skip
MOVE_AHEAD, ROTATE_LEFT, ROTATE_RIGHT, LOOK_UP, LOOK_DOWN, OPEN, CLOSE = range(7)
ANSWER0 = 7
NUM_ANSWERS = 4
NAV_ACTIONS = ACTIONS[:5]

HORIZONS: tuple[float, ...] = (-30.0, 0.0, 30.0, 60.0)
START_HORIZON = 30.0
ROTATE_DEGREES = 90.0
GRID_SIZE = 0.25
FIELD_OF_VIEW = 60.0
VISIBILITY_DISTANCE = 1.5
FRAME_SIZE = 300
MAX_STEPS = 1000

SCENES = {"train": tuple(range(6, 31)), "seen": tuple(range(6, 31)), "unseen": tuple(range(1, 6))}
SPLIT_SIZES = {"train": 76_800, "seen": 2_400, "unseen": 1_920}  # IQUAD V1, all types together
REPEATS = {"existence": (10, 0.25), "counting": (3, 0.5), "contains": (10, 0.25)}  # (max n, p remove)

CSV_COLUMNS = ("question_type", "scene_number", "seed", "question", "answer", "object_id", "container_id")

# Rewards (before scaling): see the module docstring
STEP_PENALTY = -0.01
FAILED_ACTION = -0.05
WRONG_CONTAINER_OPEN = -1.0
FIRST_OPEN_TARGET = 5.0
FIRST_OPEN_OTHER = 0.1
FIRST_CLOSE = 0.1
COVERAGE_DIVISOR = 26.0
EVIDENCE_BONUS = 10.0
LINGER_PENALTY = -1.0
CORRECT_ANSWER = 10.0
WRONG_ANSWER = -30.0
TIMEOUT = -30.0
REWARD_SCALE = 10.0
REWARD_CLIP = (-3.0, 1.0)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "existence": (
        "Is there {a} {obj} in the room?",
        "Please tell me if there is {a} {obj} somewhere in the room.",
        "Is there {a} {obj} somewhere in the room?",
        "Is there {a} {obj} somewhere nearby?",
        "I think {a} {obj} is in the room. Is that correct?",
        "Do we have any {objs}?",
    ),
    "counting": (
        "How many {objs} are there in the room?",
        "There are between 0 and 3 {objs} in the room. How many are there?",
        "Please tell me how many {objs} there are somewhere in the room?",
        "Please tell me how many {objs} are around here?",
        "Count the number of {objs} in this room.",
    ),
    "contains": (
        "Is there {a} {obj} {prep} the {container}?",
        "Can you find {a} {obj} {prep} the {container}?",
        "Please tell me if there is {a} {obj} {prep} the {container}?",
        "I think there is {a} {obj} in the {container}. Is that correct?",
    ),
}
_PLURALS = {"Knife": "knives", "Potato": "potatoes", "Tomato": "tomatoes", "Lettuce": "heads of lettuce"}


def words(object_type: str) -> str:
    """'GarbageCan' -> 'garbage can'."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", object_type).lower()


def plural(object_type: str) -> str:
    return _PLURALS.get(object_type, words(object_type) + "s")


def question_text(qtype: str, obj: str, container: str | None, seed: int) -> str:
    """The question in one of IQUAD's templates, chosen with the scene seed."""
    templates = TEMPLATES[qtype]
    t = templates[seed % len(templates)]
    w = words(obj)
    return t.format(
        a="an" if w[0] in "aeiou" else "a",
        obj=w,
        objs=plural(obj),
        container=words(container) if container else "",
        prep="in",
    )


# -- questions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    """One IQUAD-style question with its scene configuration (scene + set-up seed).

    ``object_id`` and ``container_id`` index :data:`thorgym.tasks.iqa_vocab.MAP_CLASSES`
    (``container_id`` is −1 unless the type is contains); ``answer`` is 0/1 (no/yes) or 0–3.
    """

    question_type: str
    scene_number: int
    seed: int
    question: str
    answer: int
    object_id: int
    container_id: int = -1

    def __post_init__(self) -> None:
        validate_question(self)

    @property
    def scene(self) -> str:
        return f"FloorPlan{self.scene_number}"

    @property
    def object_type(self) -> str:
        return MAP_CLASSES[self.object_id]

    @property
    def container_type(self) -> str | None:
        return MAP_CLASSES[self.container_id] if self.container_id >= 0 else None

    @property
    def type_index(self) -> int:
        return QUESTION_TYPES.index(self.question_type)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Question:
        missing = [k for k in CSV_COLUMNS if k not in d]
        if missing:
            cols = list(CSV_COLUMNS)
            raise ValueError(f"IQA question {dict(d)!r} is missing {missing}; columns are {cols}")
        try:
            return cls(
                question_type=str(d["question_type"]),
                scene_number=int(d["scene_number"]),
                seed=int(d["seed"]),
                question=str(d["question"]),
                answer=int(d["answer"]),
                object_id=int(d["object_id"]),
                container_id=int(d["container_id"]) if str(d["container_id"]) not in ("", "None") else -1,
            )
        except (TypeError, ValueError) as e:
            if "IQA question" in str(e):
                raise
            raise ValueError(f"IQA question {dict(d)!r}: {e}. Fix: integers in the numeric columns") from e


def answer_range(qtype: str) -> int:
    """Number of possible answers: 2 (no/yes) or 4 (counting 0–3)."""
    return 4 if qtype == "counting" else 2


def validate_question(q: Question) -> None:
    """Raise ValueError naming what is wrong with a question (type, scene, ids, answer)."""
    if q.question_type not in QUESTION_TYPES:
        raise ValueError(f"unknown IQA question type {q.question_type!r}; use one of {list(QUESTION_TYPES)}")
    if not 1 <= q.scene_number <= 30:
        raise ValueError(f"IQA scene_number {q.scene_number} is not a kitchen (FloorPlan1–30)")
    if not 0 <= q.answer < answer_range(q.question_type):
        raise ValueError(
            f"IQA answer {q.answer} out of range for a {q.question_type} question "
            f"(0–{answer_range(q.question_type) - 1})"
        )
    if q.object_id < 0 or q.object_id >= NUM_CLASSES or MAP_CLASSES[q.object_id] not in QUESTION_OBJECTS:
        raise ValueError(f"IQA object_id {q.object_id} is not a question object (1–{len(QUESTION_OBJECTS)})")
    if q.question_type == "contains":
        c = q.container_id
        if c < 0 or c >= NUM_CLASSES or MAP_CLASSES[c] not in CONTAINERS:
            ids = [CLASS_INDEX[c] for c in CONTAINERS]
            raise ValueError(f"IQA container_id {c} is not a container ({ids}: {list(CONTAINERS)})")
    elif q.container_id != -1:
        raise ValueError(f"IQA {q.question_type} question has container_id {q.container_id}; use -1 (none)")


def read_questions(source: str | Any) -> list[Question]:
    """Questions from an IQUAD-style CSV file (path, or text with a header line)."""
    from pathlib import Path

    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"IQA question file {path} does not exist")
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError) as e:
            raise ValueError(f"{where}: not an IQA question CSV (UTF-8 text expected): {e}") from None
    else:
        text, where = str(source), "<text>"
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or list(reader.fieldnames) != list(CSV_COLUMNS):
        raise ValueError(f"{where}: the header must be {','.join(CSV_COLUMNS)}; got {reader.fieldnames}")
    out = []
    for n, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{where}:{n}: malformed row (expected {len(CSV_COLUMNS)} columns): {row}")
        try:
            out.append(Question.from_dict(row))
        except ValueError as e:
            raise ValueError(f"{where}:{n}: {e}") from None
    return out


def questions_csv(questions: Iterable[Question]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for q in questions:
        w.writerow([getattr(q, c) for c in CSV_COLUMNS])
    return buf.getvalue()


# -- scene configurations ------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneConfig:
    """The set-up of one question's scene: InitialRandomSpawn with duplicates, then removals."""

    scene: str
    seed: int
    duplicates: tuple[tuple[str, int], ...]  # (objectType, count) for numDuplicatesOfType
    removed_types: tuple[str, ...]  # every instance of these types is removed

    def spawn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of AI2-THOR's ``InitialRandomSpawn`` for this configuration."""
        return {
            "randomSeed": int(self.seed),
            "numDuplicatesOfType": [{"objectType": t, "count": int(c)} for t, c in self.duplicates],
        }


def scene_config(scene: str, seed: int, question_type: str) -> SceneConfig:
    """The configuration of (scene, seed) for a question type: for every question object type,
    removed with probability p, else n ~ U{1..max n} instances (IQUAD's repeats and removals)."""
    if question_type not in REPEATS:
        raise ValueError(f"unknown IQA question type {question_type!r}; use one of {list(QUESTION_TYPES)}")
    name = parse_scene(scene)[0]
    if room_type(name) != "kitchen":
        raise ValueError(f"IQA runs in kitchens (FloorPlan1–30), not {name}")
    max_n, p_remove = REPEATS[question_type]
    rng = np.random.default_rng([zlib.crc32(name.encode()), int(seed), QUESTION_TYPES.index(question_type)])
    dups, removed = [], []
    for t in QUESTION_OBJECTS:
        if rng.random() < p_remove:
            removed.append(t)
        else:
            dups.append((t, int(rng.integers(1, max_n + 1))))
    return SceneConfig(name, int(seed), tuple(dups), tuple(removed))


# -- ground truth (ObjectState: thorgym.tasks.base) ------------------------------------------------
def parent_type(objects: Mapping[str, ObjectState], o: ObjectState) -> str | None:
    if o.parent is None or o.parent not in objects:
        return None
    return objects[o.parent].object_type


def true_answer(objects: Mapping[str, ObjectState], qtype: str, obj: str, container: str | None) -> int:
    """The answer the configured world gives to a question (before any visibility check)."""
    inst = [o for o in objects.values() if o.object_type == obj]
    if qtype == "existence":
        return int(bool(inst))
    if qtype == "counting":
        return len(inst)
    return int(any(parent_type(objects, o) == container for o in inst))


def evidence_objects(objects: Mapping[str, ObjectState], q: Question) -> list[str]:
    """The instances whose visibility a "yes"/count answer rests on (for the generator's check)."""
    inst = [o for o in objects.values() if o.object_type == q.object_type]
    if q.question_type == "contains":
        inst = [o for o in inst if parent_type(objects, o) == q.container_type]
    return [o.object_id for o in inst]


# -- coverage ------------------------------------------------------------------------------------
FLOOR_HEIGHT = 0.05  # a depth pixel whose surface point lies this low is floor
COVERAGE_STRIDE = 6  # every 6th pixel of a 300-pixel frame: 50 × 50 samples
_RAYS: dict[tuple[int, int, float], tuple[np.ndarray, np.ndarray]] = {}


def floor_cells(depth: np.ndarray, pose: Sequence[float], field_of_view: float) -> set[tuple[int, int]]:
    """Grid cells (0.25 m) of the floor points a depth frame shows from pose [x, z, yaw, horizon].

    Depth is metres along the view axis (AI2-THOR's depth frame); the camera stands
    ``AGENT_Y + CAMERA_HEIGHT`` above the floor, yaw clockwise from +z, horizon positive down.
    """
    h, w = depth.shape[:2]
    stride = max(1, round(COVERAGE_STRIDE * max(h, w) / FRAME_SIZE))
    key = (h, w, float(field_of_view))
    if key not in _RAYS:
        ty = math.tan(math.radians(field_of_view) / 2)
        tx = ty * w / h
        cols = (np.arange(w) + 0.5) / w * 2 - 1
        rows = 1 - (np.arange(h) + 0.5) / h * 2
        _RAYS[key] = (cols * tx, rows * ty)
    xs, ys = _RAYS[key]
    d = np.asarray(depth, dtype=np.float64)[::stride, ::stride]
    xx, yy = np.meshgrid(xs[::stride], ys[::stride])
    x, z, yaw, hor = (float(v) for v in pose[:4])
    sy, cy = math.sin(math.radians(yaw)), math.cos(math.radians(yaw))
    sh, ch = math.sin(math.radians(hor)), math.cos(math.radians(hor))
    fwd = np.array([sy * ch, -sh, cy * ch])
    right = np.array([cy, 0.0, -sy])
    up = np.array([sy * sh, ch, cy * sh])
    ray = fwd + xx[..., None] * right + yy[..., None] * up
    pts = np.array([x, AGENT_Y + CAMERA_HEIGHT, z]) + d[..., None] * ray
    ok = (pts[..., 1] < FLOOR_HEIGHT) & (d > 0) & (d < MAX_DEPTH)
    p = pts[ok]
    return set(zip(np.floor(p[:, 0] / GRID_SIZE).astype(int).tolist(),
                   np.floor(p[:, 2] / GRID_SIZE).astype(int).tolist(), strict=True))  # fmt: skip


# -- the task ------------------------------------------------------------------------------------
INFO_KEYS = (
    "scene", "question_type", "answer", "given_answer", "correct", "evidence_seen", "invalid_actions",
    "episode_length", "last_action_success",
)  # fmt: skip
SENSORS = ("rgb", "depth", "classes", "semantic_map")
QUESTION_TOKENS = 16
EMBEDDING_DIM = 50
MAP_CELLS = 64  # semantic_map: 0.25 m cells, 16 m around the episode's start
SHIPPED_SPLITS = {"seen": "iqa_seen_test", "unseen": "iqa_unseen_test"}  # files in datasets/data


def load_questions(split: str | None, questions: Any) -> list[Question] | EpisodeFile:
    """Questions from an explicit list/CSV path, else a shipped split ("seen", "unseen": its
    :class:`~thorgym.tasks.base.EpisodeFile`, read by the env factory through the datasets
    layer); the train split is generated on demand (``thorgym data iqa``) and passed by path."""
    if questions is not None:
        if isinstance(questions, str):
            return read_questions(questions)
        return [q if isinstance(q, Question) else Question.from_dict(q) for q in questions]
    if split in SHIPPED_SPLITS:
        return EpisodeFile(SHIPPED_SPLITS[split])
    if split == "train":
        raise ValueError(
            "the IQA train split is generated on demand: run `thorgym data iqa --out DIR` and pass "
            "questions='DIR/train.csv' (the shipped splits are 'seen' and 'unseen')"
        )
    raise ValueError(f"unknown IQA split {split!r}: use 'train' (with questions=...), 'seen' or 'unseen'")


class IQATask:
    """Interactive question answering in kitchens: IQUAD V1 (Gordon et al., CVPR 2018).

    ## Description
    The agent is asked a question about the kitchen it stands in — existence ("Is there a mug
    in the room?"), counting ("How many eggs are there in the room?", 0–3) or contains ("Is there
    a tomato in the fridge?") — and must explore, open receptacles and answer. Each question
    comes with its own scene configuration (scene + InitialRandomSpawn seed with repeats and
    removals). Splits: train and seen-test on FloorPlan6–30, unseen-test on FloorPlan1–5;
    ``thorgym data iqa`` generates them, the two test splits ship with thorgym.

    ## Action Space
    ``Discrete(11)``: 0 MoveAhead (0.25 m), 1 RotateLeft, 2 RotateRight (90°), 3 LookUp, 4
    LookDown (horizon in {−30, 0, 30, 60}; beyond fails), 5 OpenObject, 6 CloseObject (the
    object at the image centre), 7–10 Answer 0–3 (yes/no questions: 0 = no, 1 = yes; 2 and 3
    are invalid there and fail).

    ## Observation Space
    ``Dict``: ``rgb`` ``Box(0, 255, (H, W, 3), uint8)``; ``depth`` ``Box(0, 10, (H, W, 1),
    float32)`` metres (``depth=True``); ``classes`` ``Box(0, 20, (H, W), uint8)`` ground-truth map
    class per pixel (``classes=True``, :data:`thorgym.tasks.iqa_vocab.MAP_CLASSES`);
    ``question_type`` ``Discrete(3)`` (existence, counting, contains); ``object`` and
    ``container`` ``Discrete(21)`` (class indices; container 0 when none); ``question_tokens``
    ``Box(-10, 10, (16, 50), float32)`` GloVe vectors of the question's words; ``pose`` ``Box((4,))``
    x, z, rotation, horizon; ``semantic_map`` (``semantic_map=True``, see Arguments).

    ## Rewards
    The reference code's, scaled and clipped: −0.01 per step, −0.05 more for a failed action;
    contains questions: opening a receptacle of another type −1; first opening of a receptacle
    +5 (the asked container) or +0.1; first closing +0.1; coverage (new floor cells / 26); +10
    when the evidence is first seen, then −1 per step for existence/contains; answer +10 if
    correct with the evidence seen, else −30; timeout −30; reward = clip(r / 10, −3, 1).

    ## Episode End
    Terminated: the agent answered (``info["correct"]``). Truncated: 1,000 steps (−30).

    ## Info
    ``scene``, ``question_type``, ``answer``, ``given_answer`` (−1 before an answer),
    ``correct``, ``evidence_seen``, ``invalid_actions``, ``backend_restart``.

    ## Arguments
    - ``split``: "seen" or "unseen" (shipped test questions, played in order) or "train" with
      ``questions`` (a CSV path or a list of questions/dicts; sampled).
    - ``backend``: "sim" (default) or "ai2thor" (``controller_kwargs`` for
      ``ai2thor.controller.Controller``; ``local_executable_path=<thorgym-thor>`` runs the genuine
      client on the built-in simulator).
    - ``width``, ``height``: frame size (default 300×300 as the paper); ``depth``, ``classes``:
      add those observations; ``max_steps``: 1,000; ``device``: the simulator's torch device.
    - ``semantic_map``: add ``semantic_map`` ``Box(0, 1, (24, 64, 64), uint8)``, HIMN's top-down map
      of the episode so far (:mod:`thorgym.tasks.iqa_map`: 21 classes + free space, visited,
      coverage; 64 × 64 cells of 0.25 m centred on the episode's start, rows along +z, columns
      along +x) from depth and ground-truth classes (implies ``depth`` and ``classes``).
    - ``sample``: sample questions even on a test split (default: play them in order).

    ## The task object
    ``IQATask(questions, embed=..., sensors=..., frame_shape=(H, W), max_steps=..., track_paths=...)``:
    ``questions`` the episodes draw from (None: given later by :meth:`provide`), ``embed`` a
    function from a question text to its (:data:`QUESTION_TOKENS`, 50) GloVe tokens, ``sensors``
    a subset of :data:`SENSORS`. The worlds it is bound to (``thorgym.envs.worlds``) provide:
    ``num_worlds``; ``configure(i, scene, random_spawn, remove_types)`` (load the scene,
    InitialRandomSpawn + RemoveFromScene); ``reachable(i) -> (K, 2)``;
    ``teleport(i, x, z, rotation, horizon) -> (ok, message)``; ``act(names) -> (ok (N,), objectIds
    (N,))`` (one of :data:`ACTIONS` [:7] or None per world; Open/Close act at the image centre and
    report the object they opened/closed); ``objects(i) -> dict objectId → ObjectState``;
    ``visible_ids(i) -> set``; ``sensors(names) -> dict of (N, …)`` ("rgb", "depth" metres,
    "classes" map class per pixel); ``poses() -> (N, 4)``; ``field_of_view``.
    """

    name = "iqa"
    action_names = ACTIONS
    info_keys = INFO_KEYS

    def __init__(
        self,
        questions: Sequence[Question] | None,
        *,
        embed: Any = None,
        sensors: Sequence[str] = ("rgb",),
        frame_shape: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE),
        max_steps: int = MAX_STEPS,
        track_paths: bool = False,
    ) -> None:
        bad = [s for s in sensors if s not in SENSORS]
        if bad:
            raise ValueError(f"unknown IQA sensors {bad}: choose from {SENSORS}")
        if questions is not None and not questions:
            raise ValueError("IQATask needs at least one question")
        if not (isinstance(max_steps, int) and max_steps > 0):
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        if "semantic_map" in sensors and not {"depth", "classes"} <= set(sensors):
            raise ValueError("the semantic_map sensor is built from depth and classes: add both")
        self.questions = [] if questions is None else list(questions)
        self.sensors = tuple(sensors)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.max_steps = max_steps
        self.track_paths = track_paths
        self._embed = embed
        self._embed_cache: dict[str, np.ndarray] = {}
        self.worlds: Any = None
        self.map: Any = None  # the semantic maps of the N worlds (thorgym.tasks.iqa_map.SemanticMap)
        self._alloc(0)

    @classmethod
    def env_setup(
        cls,
        num_worlds: int,
        *,
        split: str = "seen",
        questions: Any = None,
        width: int = FRAME_SIZE,
        height: int = FRAME_SIZE,
        depth: bool = False,
        classes: bool = False,
        max_steps: int = MAX_STEPS,
        sample: bool = False,
        semantic_map: bool = False,
        track_paths: bool | None = None,
    ) -> EnvSetup:
        """The task, its worlds and its fixed episodes from an environment's arguments (see the
        class docstring). A shipped split's questions and the GloVe tokens come through the env
        factory (``EnvSetup.data``); paths are tracked for a single world unless ``track_paths``
        says."""
        qs = load_questions(split, questions)
        depth, classes = depth or semantic_map, classes or semantic_map
        sensors = ["rgb"] + (["depth"] if depth else []) + (["classes"] if classes else [])
        sensors += ["semantic_map"] if semantic_map else []
        task = cls(
            None if isinstance(qs, EpisodeFile) else qs, sensors=sensors,
            frame_shape=(int(height), int(width)), max_steps=max_steps,
            track_paths=num_worlds == 1 if track_paths is None else track_paths,
        )  # fmt: skip
        # depth is always rendered: coverage rewards come from it
        spec = WorldsSpec(
            "FloorPlan1", int(width), int(height), ("rgb", "depth") + (("classes",) if classes else ()),
            grid_size=GRID_SIZE, rotate_step_degrees=ROTATE_DEGREES, field_of_view=FIELD_OF_VIEW,
            visibility_distance=VISIBILITY_DISTANCE, classes=MAP_CLASSES,
        )  # fmt: skip
        fixed = None if (sample or split == "train") else qs
        data: dict[str, Any] = {"embed": TextEncoder("question_tokens")}
        if isinstance(qs, EpisodeFile):
            data["questions"] = qs
        return EnvSetup(task, spec, fixed, data)

    def provide(self, data: Mapping[str, Any]) -> None:
        """What the env factory read for :meth:`env_setup`'s ``data``: ``questions`` (dicts of a
        shipped split) and ``embed`` (the question encoder)."""
        if "questions" in data:
            qs = [q if isinstance(q, Question) else Question.from_dict(q) for q in data["questions"]]
            if not qs:
                raise ValueError("IQATask needs at least one question")
            self.questions = qs
        if "embed" in data:
            self._embed = data["embed"]

    # -- spaces --------------------------------------------------------------------------------
    @property
    def observation_space(self) -> spaces.Dict:
        h, w = self.frame_shape
        d = frame_spaces(self.sensors, self.frame_shape)
        if "classes" in self.sensors:
            d["classes"] = spaces.Box(0, NUM_CLASSES - 1, (h, w), np.uint8)
        d["question_type"] = spaces.Discrete(len(QUESTION_TYPES))
        d["object"] = spaces.Discrete(NUM_CLASSES)
        d["container"] = spaces.Discrete(NUM_CLASSES)  # 0 (background) when none
        d["question_tokens"] = spaces.Box(-10.0, 10.0, (QUESTION_TOKENS, EMBEDDING_DIM), np.float32)
        d["pose"] = spaces.Box(-100.0, 400.0, (4,), np.float32)  # x, z, rotation, horizon
        if "semantic_map" in self.sensors:
            from .iqa_map import NUM_CHANNELS

            d["semantic_map"] = spaces.Box(0, 1, (NUM_CHANNELS, MAP_CELLS, MAP_CELLS), np.uint8)
        return spaces.Dict(d)

    @property
    def action_space(self) -> spaces.Discrete:
        return spaces.Discrete(len(ACTIONS))

    # -- episodes ------------------------------------------------------------------------------
    def _alloc(self, n: int) -> None:
        self.episodes: list[Question | None] = [None] * n
        self.paths: list[list[tuple[float, ...]]] = [[] for _ in range(n)]
        self._objects: list[dict[str, ObjectState]] = [{} for _ in range(n)]
        self._seen: list[set[str]] = [set() for _ in range(n)]
        self._opened: list[set[str]] = [set() for _ in range(n)]
        self._closed: list[set[str]] = [set() for _ in range(n)]
        self._covered: list[set[tuple[int, int]]] = [set() for _ in range(n)]
        self._steps = np.zeros(n, dtype=np.int64)
        self._invalid = np.zeros(n, dtype=np.int64)
        self._evidence = np.zeros(n, dtype=bool)
        self._given = np.full(n, -1, dtype=np.int64)
        self._correct = np.zeros(n, dtype=bool)
        self._ended = np.zeros(n, dtype=bool)
        self._last_ok = np.ones(n, dtype=bool)
        self._start: list[tuple[float, float, float, float] | None] = [None] * n
        self._fresh = np.zeros(n, dtype=bool)
        self._map_new = np.zeros(n, dtype=bool)  # semantic_map: start world i's map afresh
        self._frames: dict[str, np.ndarray] | None = None

    def bind(self, worlds: Any) -> None:
        self.worlds = worlds
        self._alloc(worlds.num_worlds)
        if "semantic_map" in self.sensors:
            from .iqa_map import SemanticMap

            self.map = SemanticMap(worlds.num_worlds, MAP_CELLS)

    def episode_from_dict(self, d: Mapping[str, Any]) -> Question:
        return d if isinstance(d, Question) else Question.from_dict(d)

    def sample_episode(self, rng: np.random.Generator, options: Mapping[str, Any]) -> Question:
        pool = self.questions
        if not pool:
            raise RuntimeError(
                "IQATask has no questions: pass them, or build it with env_setup through the env factory"
            )
        if "question_type" in options:
            qt = options["question_type"]
            pool = [q for q in pool if q.question_type == qt]
            if not pool:
                raise ValueError(f"no {qt!r} questions in this split; types: {list(QUESTION_TYPES)}")
        return pool[int(rng.integers(len(pool)))]

    def begin(self, i: int, q: Question) -> None:
        """Configure world i's scene for question q and put the agent at a random reachable pose
        (drawn from a generator seeded by the question, so an episode replays exactly)."""
        w = self.worlds
        self._configure(i, q)
        rng = np.random.default_rng([q.seed, q.scene_number, q.type_index, q.object_id, q.answer])
        pts = w.reachable(i)
        for _ in range(20):
            x, z = pts[int(rng.integers(len(pts)))]
            rot = 90.0 * int(rng.integers(4))
            ok, msg = w.teleport(i, float(x), float(z), rot, START_HORIZON)
            if ok:
                break
        else:
            raise RuntimeError(f"could not place the agent in {q.scene} (seed {q.seed}): {msg}")
        self.episodes[i] = q
        self._start[i] = (float(x), float(z), rot, START_HORIZON)
        self._objects[i] = w.objects(i)
        self._seen[i] = set()
        self._opened[i], self._closed[i], self._covered[i] = set(), set(), set()
        self._steps[i] = 0
        self._invalid[i] = 0
        self._evidence[i] = False
        self._given[i] = -1
        self._correct[i] = False
        self._ended[i] = False
        self._last_ok[i] = True
        self._fresh[i] = True  # what the start pose shows counts, at the next observe (no bonus)
        self._map_new[i] = True
        self._frames = None
        if self.track_paths:
            self.paths[i] = [self._start[i]]

    # -- stepping ------------------------------------------------------------------------------
    def step(self, actions: np.ndarray, live: np.ndarray) -> StepResult:
        a = np.asarray(actions, dtype=np.int64)
        live = np.asarray(live, dtype=bool)
        n = len(a)
        poses = self.worlds.poses()
        names: list[str | None] = [None] * n
        invalid = np.zeros(n, dtype=bool)
        for i in np.nonzero(live)[0]:
            act = int(a[i])
            if act >= ANSWER0:
                continue
            if act == LOOK_UP and poses[i, 3] <= HORIZONS[0] + 1e-3:
                invalid[i] = True
            elif act == LOOK_DOWN and poses[i, 3] >= HORIZONS[-1] - 1e-3:
                invalid[i] = True
            else:
                names[i] = ACTIONS[act]
        ok, opened = self.worlds.act(names)
        self._frames = self.worlds.sensors(self._frame_names())
        poses = self.worlds.poses()
        reward = np.zeros(n)
        term = np.zeros(n, dtype=bool)
        trunc = np.zeros(n, dtype=bool)
        success = np.zeros(n, dtype=bool)
        for i in np.nonzero(live)[0]:
            q = self.episodes[i]
            act = int(a[i])
            r = STEP_PENALTY
            self._steps[i] += 1
            if act >= ANSWER0:
                k = act - ANSWER0
                if k >= answer_range(q.question_type):
                    r += FAILED_ACTION
                    self._invalid[i] += 1
                    self._last_ok[i] = False
                else:
                    self._given[i] = k
                    self._correct[i] = k == q.answer
                    r += CORRECT_ANSWER if (self._correct[i] and self._evidence[i]) else WRONG_ANSWER
                    term[i] = True
                    success[i] = self._correct[i]
                    self._last_ok[i] = True
            else:
                good = bool(ok[i]) and not invalid[i]
                self._last_ok[i] = good
                if not good:
                    r += FAILED_ACTION
                    self._invalid[i] += 1
                elif act == OPEN:
                    r += self._open_reward(i, q, str(opened[i]))
                elif act == CLOSE and opened[i] not in self._closed[i]:
                    self._closed[i].add(str(opened[i]))
                    r += FIRST_CLOSE
                if good and act in (OPEN, CLOSE):
                    self._objects[i] = self.worlds.objects(i)
                had = bool(self._evidence[i])
                r += self._observe_world(i, poses[i])
                if not had and self._evidence[i]:
                    r += EVIDENCE_BONUS
                elif had and q.question_type != "counting":
                    r += LINGER_PENALTY
                if self._steps[i] >= self.max_steps:
                    trunc[i] = True
                    r += TIMEOUT
            reward[i] = float(np.clip(r / REWARD_SCALE, *REWARD_CLIP))
            self._ended[i] = term[i] or trunc[i]
            if self.track_paths:
                self.paths[i].append(tuple(float(v) for v in poses[i]))
        return StepResult(reward, term, trunc, success)

    def _configure(self, i: int, q: Question) -> None:
        """World i set up for question q: its scene, InitialRandomSpawn, RemoveFromScene."""
        c = scene_config(q.scene, q.seed, q.question_type)
        self.worlds.configure(i, c.scene, c.spawn_kwargs(), c.removed_types)

    def _open_reward(self, i: int, q: Question, oid: str) -> float:
        otype = oid.split("|", 1)[0]
        first = oid not in self._opened[i]
        self._opened[i].add(oid)
        if q.question_type == "contains" and otype != q.container_type:
            return WRONG_CONTAINER_OPEN
        if not first:
            return 0.0
        return FIRST_OPEN_TARGET if q.question_type == "contains" else FIRST_OPEN_OTHER

    def _frame_names(self) -> list[str]:
        return list(dict.fromkeys([*self.sensors, "depth"]))  # depth: coverage

    def _observe_world(self, i: int, pose: np.ndarray) -> float:
        """Update what world i's agent has seen; returns the coverage bonus (unscaled)."""
        self._seen[i] |= self.worlds.visible_ids(i)
        cells = floor_cells(self._frames["depth"][i], pose, self.worlds.field_of_view)
        new = len(cells - self._covered[i])
        self._covered[i] |= cells
        if not self._evidence[i]:
            self._evidence[i] = self._evidence_seen(i)
        return new / COVERAGE_DIVISOR

    def _evidence_seen(self, i: int) -> bool:
        q = self.episodes[i]
        objs, seen = self._objects[i], self._seen[i]
        targets = [oid for oid, o in objs.items() if o.object_type == q.object_type]
        if q.question_type == "existence":
            return q.answer == 0 or any(t in seen for t in targets)
        if q.question_type == "counting":
            return sum(t in seen for t in targets) >= q.answer
        containers = [oid for oid, o in objs.items() if o.object_type == q.container_type]
        if q.answer == 0:
            return bool(containers) and all(c in self._opened[i] or c in seen for c in containers)
        inside = [t for t in targets if objs[t].parent in objs]
        return any(
            t in seen and objs[t].parent in seen and objs[objs[t].parent].object_type == q.container_type
            for t in inside
        )

    def truncate(self, i: int) -> None:
        q, s = self.episodes[i], self._start[i]
        self._configure(i, q)
        self.worlds.teleport(i, *s)
        self._ended[i] = True

    # -- observations ----------------------------------------------------------------------------
    def _tokens(self, text: str) -> np.ndarray:
        t = self._embed_cache.get(text)
        if t is None and self._embed is None:
            raise RuntimeError("IQATask has no question encoder: pass embed=, or build it with env_setup")
        if t is None:
            t = np.asarray(self._embed(text), dtype=np.float32).reshape(QUESTION_TOKENS, EMBEDDING_DIM)
            self._embed_cache[text] = t
        return t

    def observe(self) -> dict[str, np.ndarray]:
        n = len(self.episodes)
        if self._frames is None:
            self._frames = self.worlds.sensors(self._frame_names())
        frames = self._frames
        if self._fresh.any():
            poses = self.worlds.poses()
            for i in np.nonzero(self._fresh)[0]:
                self._observe_world(i, poses[i])
            self._fresh[:] = False
        obs = frame_observations(frames, self.sensors)
        if "classes" in self.sensors:
            obs["classes"] = frames["classes"].astype(np.uint8)
        qs = [q for q in self.episodes]
        obs["question_type"] = np.array([q.type_index if q else 0 for q in qs], dtype=np.int64)
        obs["object"] = np.array([q.object_id if q else 0 for q in qs], dtype=np.int64)
        obs["container"] = np.array([max(q.container_id, 0) if q else 0 for q in qs], dtype=np.int64)
        tok = np.zeros((n, QUESTION_TOKENS, EMBEDDING_DIM), dtype=np.float32)
        for i, q in enumerate(qs):
            if q is not None:
                tok[i] = self._tokens(q.question)
        obs["question_tokens"] = tok
        obs["pose"] = self.worlds.poses().astype(np.float32)
        if self.map is not None:
            obs["semantic_map"] = self._update_map(obs)
        return obs

    def _update_map(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Add every world's current view to its semantic map (maps of episodes begun since the
        last observation start afresh around their start); (N, C, 64, 64) uint8. Adding the same
        view twice changes nothing."""
        import torch

        poses = torch.as_tensor(obs["pose"], dtype=torch.float32)
        ids = np.nonzero(self._map_new)[0]
        if len(ids):
            self.map.reset_around(torch.as_tensor(ids), poses[ids, :2])
            self._map_new[:] = False
        depth = torch.as_tensor(obs["depth"][..., 0])
        self.map.update(depth, torch.as_tensor(obs["classes"]).long(), poses, FIELD_OF_VIEW)
        return self.map.map.numpy().astype(np.uint8)

    # -- measures --------------------------------------------------------------------------------
    def info(self) -> dict[str, np.ndarray]:
        qs = self.episodes
        return {
            "scene": np.array([q.scene if q else None for q in qs], dtype=object),
            "question_type": np.array([q.question_type if q else None for q in qs], dtype=object),
            "answer": np.array([q.answer if q else -1 for q in qs], dtype=np.int64),
            "given_answer": self._given.copy(),
            "correct": self._correct.copy(),
            "evidence_seen": self._evidence.copy(),
            "invalid_actions": self._invalid.copy(),
            "episode_length": self._steps.copy(),
            "last_action_success": self._last_ok.copy(),
        }

    def record(self, i: int) -> dict[str, Any]:
        q = self.episodes[i]
        return {
            **q.to_dict(),
            "scene": q.scene,
            "given_answer": int(self._given[i]),
            "correct": bool(self._correct[i]),
            "evidence_seen": bool(self._evidence[i]),
            "episode_length": int(self._steps[i]),
            "invalid_actions": int(self._invalid[i]),
            "start": list(self._start[i]) if self._start[i] else None,
        }

    def summarize(self, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return summarize(records)

    # -- an oracle for tests and the oracle baseline -------------------------------------------
    def true_answer(self, i: int) -> int:
        q = self.episodes[i]
        return true_answer(self._objects[i], q.question_type, q.object_type, q.container_type)


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy per question type (percent), mean episode length, invalid-action rate."""
    recs = list(records)
    out: dict[str, Any] = {"episodes": len(recs)}
    if not recs:
        return out
    for t in QUESTION_TYPES:
        r = [x for x in recs if x["question_type"] == t]
        out[f"accuracy_{t}"] = 100.0 * float(np.mean([x["correct"] for x in r])) if r else None
        out[f"episodes_{t}"] = len(r)
    out["accuracy"] = 100.0 * float(np.mean([x["correct"] for x in recs]))
    out["episode_length"] = float(np.mean([x["episode_length"] for x in recs]))
    steps = sum(x["episode_length"] for x in recs)
    out["invalid_action_rate"] = float(sum(x["invalid_actions"] for x in recs) / max(steps, 1))
    out["answered"] = 100.0 * float(np.mean([x["given_answer"] >= 0 for x in recs]))
    return out


def most_likely_answer_accuracy() -> dict[str, float]:
    """What always giving the most frequent answer scores on balanced splits (50 / 25 / 50)."""
    return {t: 100.0 / answer_range(t) for t in QUESTION_TYPES}


__all__ = [
    "ACTIONS", "CSV_COLUMNS", "IQATask", "ObjectState", "Question", "SceneConfig", "TEMPLATES",
    "question_text", "questions_csv", "read_questions", "scene_config", "summarize", "true_answer",
]  # fmt: skip
