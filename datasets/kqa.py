"""Embodied knowledge QA (KQA): an OK-VQA-format split generated from simulator scenes.

Every question needs knowledge that is not in the picture: *what* an object is used for, what it
is usually made of, which visible object has some property ("Which appliance here keeps food
cold?"), which visible object serves a purpose ("What would you use here to boil water?"), which
room the view shows, and object-specific facts ("Which animal laid the purple food?"). The facts
come from the knowledge base shipped next to this module (``knowledge_base.json``): for each
AI2-THOR object type of :mod:`thorgym.sim.objects` its names with synonyms, uses, materials,
properties, rooms and facts, every answer given as ten annotator votes over accepted synonyms.

:func:`generate_kqa` renders views from reachable poses of the built-in simulator where at least
one object with knowledge facts is visible, asks questions about them, and writes the split in
the official OK-VQA layout, which :mod:`thorgym.eval.okvqa_io`, :func:`thorgym.eval.okvqa.evaluate`
and :func:`thorgym.eval.okvqa_harness.run_model` read unchanged::

    OUT/OpenEnded_mscoco_train2014_questions.json   OUT/mscoco_train2014_annotations.json
    OUT/OpenEnded_mscoco_val2014_questions.json     OUT/mscoco_val2014_annotations.json
    OUT/train2014/COCO_train2014_000000001000.png   OUT/val2014/COCO_val2014_000000026000.png
    OUT/kqa_train2014_objects.json  OUT/kqa_val2014_objects.json   (sidecars, see below)
    OUT/kqa_info.json                                              (parameters and counts)

Train ("train2014") views come from the simulator's train scenes (FloorPlan*1–20), test
("val2014", as OK-VQA's test set) views from its test scenes (FloorPlan*26–30), so no scene is
in both. ``image_id`` is ``scene number * 1000 + view index`` (FloorPlan426, view 3 → 426003) and
``question_id`` is ``image_id * 10 + question index``, as in OK-VQA. ``question_type`` holds the
OK-VQA knowledge category (``"one"``..``"ten"``, ``"other"``); ``answer_type`` is ``"other"``.

The sidecar ``kqa_<subtype>_objects.json`` records, per image, the scene, the camera pose and the
objects the simulator's instance segmentation shows (type, image area, box, the receptacle they
stand on) plus ``visible_types``: what an oracle detector would report. Its ``question_meta``
(template and subject of each question) is for analysis only; models must not read it.

Everything is deterministic for a seed: the scenes, the object arrangement (``InitialRandomSpawn``
with a seed derived from it, small objects kept out of closed fridges, cabinets and microwaves so
they can be seen), the poses, the questions and the ten answers of each question. Every file is
written atomically (a temporary file, then ``os.replace``).

The defaults (20 train and 5 test scenes per room type, 12 views per scene, 224x224) give 960
train and 240 test images with 2,879 and 720 questions in about 45 s on a 2-core CPU.
"""

from __future__ import annotations

import colorsys
import io
import json
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from thorgym.eval.okvqa import CATEGORIES
from thorgym.eval.okvqa_io import NUM_ANSWERS
from thorgym.sim.objects import OBJECT_TYPES, TYPE_COLORS
from thorgym.sim.scenes import ROOM_TYPES, parse_scene, scenes_for

from thorgym.atomic import write_bytes_atomic, write_json_atomic

__all__ = [
    "KB_PATH",
    "SUBTYPES",
    "KnowledgeBase",
    "colour_name",
    "generate_kqa",
    "load_knowledge_base",
    "pattern_name",
    "split_files",
    "ten_answers",
]

KB_PATH = Path(__file__).with_name("knowledge_base.json")
"""The knowledge base shipped with thorgym (facts about every type in ``OBJECT_TYPES``)."""

SUBTYPES: dict[str, str] = {"train": "train2014", "test": "val2014"}
"""OK-VQA's ``data_subtype`` of each split (OK-VQA's test set is COCO val2014)."""

VISIBLE_AREA = 0.002
"""An object counts as in view (sidecar, oracle detector) from this fraction of the image."""
SUBJECT_AREA = 0.004
"""A question is asked about an object only when it covers at least this fraction of the image
(``SMALL_SUBJECT_AREA`` for small, pickupable objects such as an egg or a knife)."""
SMALL_SUBJECT_AREA = 0.002
BACKGROUND_TYPES = frozenset({"CounterTop", "Cabinet", "ShelvingUnit", "LightSwitch"})
"""Large or ubiquitous types: asked about less often and not counted when choosing views."""
_BACKGROUND_WEIGHT = 0.3

_FAMILY_WEIGHTS = {
    "room": 0.6,
    "use_which": 1.0,
    "property_which": 1.0,
    "used_for": 1.0,
    "material": 1.0,
    "fact": 2.0,
}
# People-and-everyday-life facts are the most common in the knowledge base; asking them a bit
# less often and the rare categories more often spreads questions over more categories.
_CATEGORY_WEIGHTS = {
    "seven": 0.5,
    "three": 0.8,
    "one": 2.0,
    "two": 2.0,
    "four": 2.0,
    "six": 2.0,
    "eight": 1.5,
}
# How an object is referred to. The simulator draws every type in one colour (and pattern), so
# "the blue appliance" names a type as surely as "the toaster" does; references that depend on
# the view (position, support, "this") are preferred so that the image matters.
_REF_WEIGHTS = {
    "position_object": 4.0,
    "support_object": 4.0,
    "colour_object": 2.0,
    "position": 2.0,
    "support": 2.0,
    "this": 2.0,
    "colour": 1.0,
    "pattern": 1.0,
    "type": 1.0,
}
_ROOM_QUESTIONS = (
    "What room is this?",
    "What kind of room is this?",
    "Which room of the house is shown here?",
)
_USE_WHICH = ("What would you use here to {p}?", "What in this picture could you use to {p}?")
_PROPERTY_WHICH = (
    "Which {k} here {p}?",
    "What {k} in this picture {p}?",
    "Which object here {p}?",
    "What in this picture {p}?",
)
_USED_FOR = ("What is {r} used for?", "What do people use {r} for?")
_MATERIAL = ("What is {r} usually made of?", "What material is {r} made of?")
_HORIZONS = (0.0, 30.0)
_HORIZON_P = (0.4, 0.6)
_AIM_HORIZONS = (0.0, 30.0, 60.0)
_CANDIDATE_SIZE = 64  # candidate poses are scored on 64x64 segmentations (one render pass)


# ---------------------------------------------------------------------------------------------
# Knowledge base
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnowledgeBase:
    """The parsed knowledge base.

    ``objects[type]`` has ``names`` (answer → votes), ``kind`` (a noun such as "appliance"),
    ``rooms``, ``uses`` ([{phrase, category}], the first the main use), ``used_for``
    ({answers, category}), optional ``materials`` ({answers, category}), ``properties`` (keys of
    ``properties``) and ``facts`` ([{question with "{ref}", answers, category}]). ``rooms[room]``
    and ``properties[name]`` ({phrase, category}) are shared tables; ``supports[type]`` names a
    receptacle type in questions ("the object on the counter").
    """

    objects: Mapping[str, Mapping[str, Any]]
    rooms: Mapping[str, Mapping[str, Any]]
    properties: Mapping[str, Mapping[str, str]]
    supports: Mapping[str, str]
    version: int

    def display(self, object_type: str) -> str:
        """The most common name of a type ("refrigerator" for ``Fridge``)."""
        return next(iter(self.objects[object_type]["names"]))

    def kind(self, object_type: str) -> str:
        return str(self.objects[object_type]["kind"])


def _check_answers(answers: Any, where: str) -> None:
    if not isinstance(answers, Mapping) or not answers:
        raise ValueError(f"knowledge base: {where} must be a non-empty answer -> votes table")
    for a, n in answers.items():
        if not isinstance(a, str) or a != a.strip().lower() or not a:
            raise ValueError(f"knowledge base: {where}: answer {a!r} must be lower-case text")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"knowledge base: {where}: votes of {a!r} must be a positive int")
    if sum(answers.values()) != NUM_ANSWERS:
        raise ValueError(f"knowledge base: {where}: votes sum to {sum(answers.values())}, not {NUM_ANSWERS}")


def _check_category(cat: Any, where: str) -> None:
    if cat not in CATEGORIES:
        raise ValueError(
            f"knowledge base: {where}: category {cat!r} is not an OK-VQA question_type "
            f"({', '.join(CATEGORIES)})"
        )


def _validate(data: Mapping[str, Any]) -> None:
    for key in ("objects", "rooms", "properties", "supports"):
        if not isinstance(data.get(key), Mapping):
            raise ValueError(f"knowledge base: missing table {key!r}")
    for room in ROOM_TYPES:
        if room not in data["rooms"]:
            raise ValueError(f"knowledge base: no entry for room type {room!r}")
    for room, entry in data["rooms"].items():
        _check_answers(entry.get("answers"), f"rooms.{room}")
        _check_category(entry.get("category"), f"rooms.{room}")
    for name, entry in data["properties"].items():
        if not isinstance(entry.get("phrase"), str):
            raise ValueError(f"knowledge base: properties.{name} lacks a phrase")
        _check_category(entry.get("category"), f"properties.{name}")
    for t, obj in data["objects"].items():
        where = f"objects.{t}"
        if t not in OBJECT_TYPES:
            raise ValueError(f"knowledge base: {where}: unknown object type")
        _check_answers(obj.get("names"), f"{where}.names")
        if not isinstance(obj.get("kind"), str):
            raise ValueError(f"knowledge base: {where} lacks a kind")
        for room in obj.get("rooms", []):
            if room not in ROOM_TYPES:
                raise ValueError(f"knowledge base: {where}: unknown room {room!r}")
        for i, use in enumerate(obj.get("uses", [])):
            if not isinstance(use.get("phrase"), str):
                raise ValueError(f"knowledge base: {where}.uses[{i}] lacks a phrase")
            _check_category(use.get("category"), f"{where}.uses[{i}]")
        for key in ("used_for", "materials"):
            if key in obj:
                _check_answers(obj[key].get("answers"), f"{where}.{key}")
                _check_category(obj[key].get("category"), f"{where}.{key}")
        for p in obj.get("properties", []):
            if p not in data["properties"]:
                raise ValueError(f"knowledge base: {where}: unknown property {p!r}")
        for i, fact in enumerate(obj.get("facts", [])):
            if "{ref}" not in fact.get("question", ""):
                raise ValueError(f"knowledge base: {where}.facts[{i}] question lacks '{{ref}}'")
            _check_answers(fact.get("answers"), f"{where}.facts[{i}]")
            _check_category(fact.get("category"), f"{where}.facts[{i}]")
    for t in data["supports"]:
        if t not in OBJECT_TYPES:
            raise ValueError(f"knowledge base: supports.{t}: unknown object type")


def load_knowledge_base(path: str | os.PathLike | None = None) -> KnowledgeBase:
    """Load and validate a knowledge base (default: the one shipped with thorgym).

    Raises ``ValueError`` naming the entry when a table is malformed (for instance an answer
    table whose votes do not sum to ten, or a category that is not an OK-VQA question_type).
    """
    if path is None:
        return _default_kb()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _default_kb() -> KnowledgeBase:
    return _load(KB_PATH)


def _load(path: Path) -> KnowledgeBase:
    with path.open("r", encoding="utf-8") as f:
        data = json.load(f)
    _validate(data)
    return KnowledgeBase(
        objects=data["objects"],
        rooms=data["rooms"],
        properties=data["properties"],
        supports=data["supports"],
        version=int(data.get("version", 1)),
    )


# ---------------------------------------------------------------------------------------------
# Appearance words (the simulator draws each type in one flat colour, some with a pattern)
# ---------------------------------------------------------------------------------------------

_HUE_NAMES = (
    (15, "red"),
    (40, "orange"),
    (70, "yellow"),
    (160, "green"),
    (195, "teal"),
    (255, "blue"),
    (290, "purple"),
    (345, "pink"),
    (361, "red"),
)


def colour_name(object_type: str) -> str:
    """A basic colour word for a type's colour in the built-in simulator ("red", "teal", ...)."""
    r, g, b = TYPE_COLORS[object_type]
    h, _, _ = colorsys.rgb_to_hsv(r, g, b)
    deg = h * 360.0
    return next(name for limit, name in _HUE_NAMES if deg < limit)


def pattern_name(object_type: str) -> str | None:
    """ "striped" or "checkered" for patterned types, else ``None``."""
    return {1: "striped", 2: "checkered"}.get(OBJECT_TYPES[object_type].pattern)


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


def ten_answers(votes: Mapping[str, int], rng: np.random.Generator, jitter: int = 2) -> list[str]:
    """Ten annotator answers drawn from a knowledge-base vote table, deterministic for ``rng``.

    Starts from the table's votes (e.g. 7 "refrigerator", 2 "fridge", 1 "icebox"), moves up to
    ``jitter`` single votes from an answer holding two or more to another synonym (annotator
    disagreement), and returns the ten answers in a random order.
    """
    counts = {a: int(n) for a, n in votes.items()}
    names = list(counts)
    if len(names) > 1 and jitter > 0:
        for _ in range(int(rng.integers(0, jitter + 1))):
            donors = [a for a in names if counts[a] >= 2]
            if not donors:
                break
            w = np.array([counts[a] for a in donors], dtype=float)
            donor = donors[int(rng.choice(len(donors), p=w / w.sum()))]
            others = [a for a in names if a != donor]
            recipient = others[int(rng.integers(len(others)))]
            counts[donor] -= 1
            counts[recipient] += 1
    out = [a for a in names for _ in range(counts[a])]
    return [out[i] for i in rng.permutation(len(out))]


def _answer_records(votes: Mapping[str, int], rng: np.random.Generator) -> list[dict[str, Any]]:
    answers = ten_answers(votes, rng)
    conf = rng.random(len(answers))
    return [
        {
            "answer_id": i + 1,
            "answer": a,
            "raw_answer": a,
            "answer_confidence": "yes" if c < 0.85 else "maybe",
        }
        for i, (a, c) in enumerate(zip(answers, conf, strict=True))
    ]


# ---------------------------------------------------------------------------------------------
# Views and questions
# ---------------------------------------------------------------------------------------------


def _objects_in_view(inst: np.ndarray, world: Any) -> list[dict[str, Any]]:
    """Objects covering at least ``VISIBLE_AREA`` of an instance map, largest first."""
    h, w = inst.shape
    n = len(world.objects)
    flat = inst.reshape(-1)
    counts = np.bincount(flat[flat >= 0].astype(np.int64), minlength=n)
    out = []
    for idx in np.flatnonzero(counts >= max(1, VISIBLE_AREA * h * w)):
        o = world.objects[int(idx)]
        ys, xs = np.nonzero(inst == idx)
        parent_type = None
        if o.parent is not None and o.parent in world.index:
            parent_type = world.objects[world.index[o.parent]].object_type
        out.append(
            {
                "objectId": o.object_id,
                "objectType": o.object_type,
                "area": round(float(counts[idx]) / (h * w), 5),
                "bbox": [
                    round(float(xs.min()) / w, 4),
                    round(float(ys.min()) / h, 4),
                    round(float(xs.max() + 1) / w, 4),
                    round(float(ys.max() + 1) / h, 4),
                ],
                "center": [
                    round(float(xs.mean() + 0.5) / w, 4),
                    round(float(ys.mean() + 0.5) / h, 4),
                ],
                "parentType": parent_type,
                "inside": bool(o.inside),
            }
        )
    out.sort(key=lambda d: (-d["area"], d["objectId"]))
    return out


def _askable(obj: Mapping[str, Any]) -> bool:
    """Whether an object in view is big enough in the image to ask about."""
    small = OBJECT_TYPES[obj["objectType"]].pickupable
    return obj["area"] >= (SMALL_SUBJECT_AREA if small else SUBJECT_AREA)


_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _leaks(text: str, votes: Mapping[str, int]) -> bool:
    """Whether the question text contains a word of one of its answers."""
    words = _words(text)
    return any(_words(a) & words for a in votes)


def _refs(o: dict[str, Any], view: Sequence[dict[str, Any]], kb: KnowledgeBase) -> list[tuple[str, str]]:
    """Ways to refer to a visible object without ambiguity: (kind of reference, phrase).

    ``view`` is every object with facts in view. A description with the object's kind ("the
    appliance on the left") must single it out among objects of that kind, one with "object"
    ("the object on the left") among all of them.
    """
    t = o["objectType"]
    kind = kb.kind(t)
    others_all = [v for v in view if v["objectId"] != o["objectId"]]
    others = [v for v in others_all if kb.kind(v["objectType"]) == kind]
    refs: list[tuple[str, str]] = [("type", f"the {kb.display(t)}")]
    if not others:
        refs.append(("this", f"this {kind}"))
    col = colour_name(t)
    if all(colour_name(v["objectType"]) != col for v in others_all):
        refs.append(("colour_object", f"the {col} object"))
    elif all(colour_name(v["objectType"]) != col for v in others):
        refs.append(("colour", f"the {col} {kind}"))
    pat = pattern_name(t)
    if pat and all(pattern_name(v["objectType"]) != pat for v in others):
        refs.append(("pattern", f"the {pat} {kind}"))
    cx = o["center"][0]
    for group, noun, ref_kind in (
        (others_all, "object", "position_object"),
        (others, kind, "position"),
    ):
        if not group:
            continue
        if all(v["center"][0] > cx + 0.1 for v in group):
            refs.append((ref_kind, f"the {noun} on the left"))
            break
        if all(v["center"][0] < cx - 0.1 for v in group):
            refs.append((ref_kind, f"the {noun} on the right"))
            break
    parent = o["parentType"]
    if parent in kb.supports:
        where = f"{'in' if o['inside'] else 'on'} the {kb.supports[parent]}"
        same_spot = [v for v in others_all if (v["parentType"], v["inside"]) == (parent, o["inside"])]
        if not same_spot:
            refs.append(("support_object", f"the object {where}"))
        elif all(v not in others for v in same_spot):
            refs.append(("support", f"the {kind} {where}"))
    return refs


def _candidates(
    view: Sequence[dict[str, Any]], room: str, kb: KnowledgeBase, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Every question that could be asked about a view (each with family, text, answers...)."""
    known = [v for v in view if v["objectType"] in kb.objects]
    subjects = [v for v in known if _askable(v)]
    cands: list[dict[str, Any]] = []

    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    def add(
        family: str,
        subject: dict | None,
        text: str,
        votes: Mapping[str, int],
        cat: str,
        ref: str | None = None,
    ) -> None:
        if _leaks(text, votes):
            return
        weight = _FAMILY_WEIGHTS[family] * _CATEGORY_WEIGHTS.get(cat, 1.0)
        if subject is not None and subject["objectType"] in BACKGROUND_TYPES:
            weight *= _BACKGROUND_WEIGHT
        cands.append(
            {
                "family": family,
                "subject": None if subject is None else subject["objectId"],
                "subject_type": None if subject is None else subject["objectType"],
                "ref": ref,
                "question": text,
                "votes": dict(votes),
                "category": cat,
                "weight": weight,
            }
        )

    room_entry = kb.rooms[room]
    add("room", None, pick(_ROOM_QUESTIONS), room_entry["answers"], room_entry["category"])
    types_in_view = {v["objectType"] for v in known}
    for s in subjects:
        t = s["objectType"]
        entry = kb.objects[t]
        for use in entry["uses"]:
            holders = {
                u for u in types_in_view if any(x["phrase"] == use["phrase"] for x in kb.objects[u]["uses"])
            }
            if holders == {t}:
                add(
                    "use_which",
                    s,
                    pick(_USE_WHICH).format(p=use["phrase"]),
                    entry["names"],
                    use["category"],
                )
        for prop in entry["properties"]:
            holders = {u for u in types_in_view if prop in kb.objects[u]["properties"]}
            if holders == {t}:
                p = kb.properties[prop]
                text = pick(_PROPERTY_WHICH).format(k=entry["kind"], p=p["phrase"])
                add("property_which", s, text, entry["names"], p["category"])
        refs = _refs(s, known, kb)
        asked = [("used_for", pick(_USED_FOR), entry["used_for"])]
        if "materials" in entry:
            asked.append(("material", pick(_MATERIAL), entry["materials"]))
        asked += [("fact", f["question"].replace("{ref}", "{r}"), f) for f in entry["facts"]]
        for family, template, fact in asked:
            usable = [r for r in refs if not _leaks(r[1], fact["answers"])]
            if usable:
                w = np.array([_REF_WEIGHTS[r[0]] for r in usable])
                ref_kind, phrase = usable[int(rng.choice(len(usable), p=w / w.sum()))]
                add(
                    family,
                    s,
                    template.format(r=phrase),
                    fact["answers"],
                    fact["category"],
                    ref_kind,
                )
    return cands


def _choose_questions(cands: list[dict[str, Any]], n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Up to ``n`` questions: one per family and per subject, families weighted equally-ish."""
    chosen: list[dict[str, Any]] = []
    pool = list(cands)
    while pool and len(chosen) < n:
        per_family: dict[str, int] = {}
        for c in pool:
            per_family[c["family"]] = per_family.get(c["family"], 0) + 1
        w = np.array([c["weight"] / per_family[c["family"]] for c in pool], dtype=float)
        c = pool[int(rng.choice(len(pool), p=w / w.sum()))]
        chosen.append(c)
        pool = [
            d
            for d in pool
            if d["family"] != c["family"]
            and (c["subject"] is None or d["subject"] != c["subject"])
            and d["question"] != c["question"]
        ]
    return chosen


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def split_files(out_dir: str | os.PathLike, split: str) -> dict[str, Any]:
    """Paths of a generated split (``split`` is "train" or "test").

    Keys: ``subtype`` ("train2014" / "val2014"), ``questions``, ``annotations``, ``image_dir``,
    ``image_prefix`` (for :func:`thorgym.eval.okvqa_harness.run_model`) and ``objects`` (the
    sidecar).
    """
    if split not in SUBTYPES:
        raise ValueError(f"split must be one of {sorted(SUBTYPES)}, got {split!r}")
    sub = SUBTYPES[split]
    root = Path(out_dir)
    return {
        "subtype": sub,
        "questions": root / f"OpenEnded_mscoco_{sub}_questions.json",
        "annotations": root / f"mscoco_{sub}_annotations.json",
        "image_dir": root / sub,
        "image_prefix": f"COCO_{sub}_",
        "objects": root / f"kqa_{sub}_objects.json",
    }


def _png_bytes(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def _pick_scenes(split: str, room_types: Sequence[str], n: int, seed: int) -> list[str]:
    out = []
    for i, room in enumerate(room_types):
        pool = scenes_for(split, (room,))
        if not 1 <= n <= len(pool):
            raise ValueError(
                f"{split} has {len(pool)} {room} scenes; asked for {n} per room type (use 1..{len(pool)})"
            )
        order = np.random.default_rng([seed, 101, i, len(pool)]).permutation(len(pool))
        out += sorted((pool[k] for k in order[:n]), key=lambda s: parse_scene(s)[2])
    return out


_CLOSED_INTERIORS = frozenset({"Fridge", "Cabinet", "Microwave"})


def _view_score(view: Sequence[dict[str, Any]], kb: KnowledgeBase) -> float:
    """How good a view is for questions: distinct object types with facts, big enough to ask
    about; small (pickupable) objects count double, background types not at all."""
    types = {
        v["objectType"]
        for v in view
        if _askable(v) and v["objectType"] in kb.objects and v["objectType"] not in BACKGROUND_TYPES
    }
    return float(sum(2 if OBJECT_TYPES[t].pickupable else 1 for t in types))


def _candidate_poses(
    world: Any,
    reachable: Sequence[tuple[float, float]],
    n: int,
    rng: np.random.Generator,
    kb: KnowledgeBase,
) -> list[tuple[float, float, float, float]]:
    """``n`` poses (x, z, yaw, horizon) at reachable grid points.

    Half look at a random object with facts (small objects, three times as likely, from
    0.4–0.9 m, others from 0.75–2 m; yaw in 45-degree steps, the camera tilted down toward low
    objects); the rest are random grid poses (yaw in 90-degree steps).
    """
    from thorgym.sim.layout import AGENT_Y, CAMERA_HEIGHT

    pts = np.asarray(reachable, dtype=float)
    targets = []
    for o in world.objects:
        if o.object_type not in kb.objects or o.object_type in BACKGROUND_TYPES:
            continue
        parent = world.objects[world.index[o.parent]] if o.parent in world.index else None
        if o.inside and parent is not None and parent.object_type in _CLOSED_INTERIORS:
            continue  # hidden until opened
        targets.append(o)
    poses: list[tuple[float, float, float, float]] = []
    if targets:
        w = np.array([3.0 if OBJECT_TYPES[o.object_type].pickupable else 1.0 for o in targets])
        for _ in range(n // 2):
            o = targets[int(rng.choice(len(targets), p=w / w.sum()))]
            lo, hi = (0.4, 0.9) if OBJECT_TYPES[o.object_type].pickupable else (0.75, 2.0)
            d = np.hypot(pts[:, 0] - o.center[0], pts[:, 1] - o.center[2])
            near = np.flatnonzero((d >= lo) & (d <= hi))
            if len(near) == 0:
                continue
            k = int(near[int(rng.integers(len(near)))])
            dx, dz = o.center[0] - pts[k, 0], o.center[2] - pts[k, 1]
            yaw = float((45 * round(np.degrees(np.arctan2(dx, dz)) / 45)) % 360)
            pitch = np.degrees(np.arctan2(AGENT_Y + CAMERA_HEIGHT - o.center[1], d[k]))
            horizon = _AIM_HORIZONS[int(np.argmin([abs(pitch - h) for h in _AIM_HORIZONS]))]
            poses.append((float(pts[k, 0]), float(pts[k, 1]), yaw, float(horizon)))
    while len(poses) < n:
        k = int(rng.integers(len(pts)))
        poses.append(
            (
                float(pts[k, 0]),
                float(pts[k, 1]),
                float(90 * rng.integers(4)),
                float(rng.choice(_HORIZONS, p=_HORIZON_P)),
            )
        )
    return poses


def _scene_views(
    scene: str,
    *,
    seed: int,
    images: int,
    candidates: int,
    width: int,
    height: int,
    device: str,
    kb: KnowledgeBase,
) -> tuple[list[dict[str, Any]], np.random.Generator]:
    """Render up to ``images`` views of one scene showing objects with knowledge facts."""
    from thorgym.sim.batch import BatchedSimulator

    rng = np.random.default_rng([seed, zlib.crc32(scene.encode())])
    spawn_seed = int(rng.integers(2**31 - 1))

    def make(n: int, w: int, h: int, rgb: bool) -> BatchedSimulator:
        sim = BatchedSimulator(
            [scene] * n,
            width=w,
            height=h,
            render_depth=False,
            render_instance_segmentation=True,
            render_rgb=rgb,
            device=device,
        )
        # Re-place the small objects once, then give every copy of the scene the same layout.
        # Small objects go on surfaces, not into closed fridges and cabinets, so they can be
        # seen (and asked about).
        first = sim.worlds[0]
        first.random_spawn(spawn_seed, excluded_receptacles=sorted(_CLOSED_INTERIORS))
        for world in sim.worlds[1:]:
            for src, dst in zip(first.objects, world.objects, strict=True):
                dst.center, dst.size = src.center.copy(), src.size.copy()
                dst.parent, dst.inside = src.parent, src.inside
            world._touch()
        return sim

    def pose_at(sim: BatchedSimulator, i: int, pose: tuple[float, float, float, float]) -> None:
        x, z, yaw, horizon = pose
        sim.pos[i, 0, 0] = x
        sim.pos[i, 0, 2] = z
        sim.yaw[i, 0] = yaw
        sim.horizon[i, 0] = horizon

    cand = make(candidates, _CANDIDATE_SIZE, _CANDIDATE_SIZE, False)
    reachable = cand.reachable_positions(0)
    if not reachable:
        return [], rng
    poses = _candidate_poses(cand.worlds[0], reachable, candidates, rng, kb)
    for i, pose in enumerate(poses):
        pose_at(cand, i, pose)
    out, _ = cand.render(rgb=False)
    inst = out.inst.reshape(candidates, _CANDIDATE_SIZE, _CANDIDATE_SIZE).cpu().numpy()
    scored = []
    for i in range(candidates):
        view = _objects_in_view(inst[i], cand.worlds[i])
        scored.append((_view_score(view, kb) + 0.5 * float(rng.random()), i))
    scored.sort(reverse=True)
    chosen: list[int] = []
    spots: set[tuple[float, float]] = set()
    for score, i in scored:
        if score < 1.0 or len(chosen) >= images:
            break
        spot = poses[i][:2]
        if spot in spots:
            continue
        spots.add(spot)
        chosen.append(i)
    if not chosen:
        return [], rng
    final = make(len(chosen), width, height, True)
    for j, i in enumerate(chosen):
        pose_at(final, j, poses[i])
    out, _ = final.render()
    rgb = out.rgb.reshape(len(chosen), height, width, 3).cpu().numpy()
    inst = out.inst.reshape(len(chosen), height, width).cpu().numpy()
    views = []
    for j, i in enumerate(chosen):
        x, z, yaw, horizon = poses[i]
        views.append(
            {
                "frame": rgb[j],
                "objects": _objects_in_view(inst[j], final.worlds[j]),
                "pose": {"x": x, "z": z, "rotation": yaw, "horizon": horizon},
            }
        )
    return views, rng


def _empty_split(sub: str, kind: str) -> dict[str, Any]:
    info = {
        "description": "thorgym embodied knowledge QA (KQA), generated from simulator scenes",
        "version": "1.0",
        "url": "https://github.com/thorgym/thorgym",
    }
    base = {
        "info": info,
        "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        "data_subtype": sub,
        "data_type": "mscoco",
    }
    if kind == "questions":
        return {**base, "task_type": "Open-Ended", "questions": []}
    return {**base, "annotations": []}


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generate_kqa(
    out_dir: str | os.PathLike,
    *,
    train_scenes_per_type: int = 20,
    test_scenes_per_type: int = 5,
    images_per_scene: int = 12,
    seed: int = 0,
    width: int = 224,
    height: int = 224,
    room_types: Iterable[str] | None = None,
    questions_per_image: int = 3,
    candidates_per_scene: int | None = None,
    device: str = "cpu",
    torch_threads: int | None = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate an embodied knowledge-QA split in the OK-VQA format; return a summary.

    Args:
        out_dir: where the files go (created; files of an earlier run are replaced and stale
            images of the split folders removed).
        train_scenes_per_type: train scenes per room type (1–20, drawn from FloorPlan*1–20).
        test_scenes_per_type: test scenes per room type (1–5, drawn from FloorPlan*26–30).
        images_per_scene: views rendered per scene (fewer when a scene has too few poses that
            show an object with facts).
        seed: everything (scenes, arrangement, poses, questions, answers) follows from it.
        width, height: image size in pixels (32–300).
        room_types: subset of "kitchen", "living_room", "bedroom", "bathroom" (default all).
        questions_per_image: at most this many questions per view (each of a different
            template family and subject).
        candidates_per_scene: random reachable poses scored per scene (default
            ``max(12, 3 * images_per_scene)``); the views showing the most distinct object
            types with facts are kept.
        device: simulator device ("cpu" or "cuda").
        torch_threads: torch intra-op threads while rendering (restored afterwards). One is
            fastest for these small batches on a CPU (more threads wait on each other, badly
            so on a busy machine); ``None`` keeps torch's setting.
        progress: print one line per scene.

    Returns a dict with ``out_dir``, the parameters (``seed`` ...), ``seconds``, and per split
    ("train", "test") the scene list, numbers of images and questions, questions per category
    and the file paths (as strings; see :func:`split_files`). ``OUT/kqa_info.json`` holds the
    same without ``out_dir`` and ``seconds`` and with file names relative to ``OUT``, so equal
    seeds and parameters give byte-identical files.
    """
    kb = load_knowledge_base()
    rooms = tuple(room_types) if room_types is not None else ROOM_TYPES
    if not rooms:
        raise ValueError("room_types must name at least one room type")
    for r in rooms:
        if r not in ROOM_TYPES:
            raise ValueError(f"unknown room type {r!r}: use some of {list(ROOM_TYPES)}")
    if not 1 <= images_per_scene <= 999:
        raise ValueError(f"images_per_scene must be in 1..999, got {images_per_scene}")
    if not 1 <= questions_per_image <= 9:
        raise ValueError(f"questions_per_image must be in 1..9, got {questions_per_image}")
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or not 32 <= v <= 300:
            raise ValueError(f"{name} must be an integer in 32..300, got {v!r}")
    candidates = candidates_per_scene or max(12, 3 * images_per_scene)
    if candidates < images_per_scene:
        raise ValueError("candidates_per_scene must be at least images_per_scene")

    out = Path(out_dir)
    params = {
        "train_scenes_per_type": train_scenes_per_type,
        "test_scenes_per_type": test_scenes_per_type,
        "images_per_scene": images_per_scene,
        "seed": seed,
        "width": width,
        "height": height,
        "room_types": list(rooms),
        "questions_per_image": questions_per_image,
        "candidates_per_scene": candidates,
    }
    summary: dict[str, Any] = {
        **params,
        "knowledge_base_version": kb.version,
        "splits": {},
    }
    start = time.perf_counter()
    plan = {
        "train": _pick_scenes("train", rooms, train_scenes_per_type, seed),
        "test": _pick_scenes("test", rooms, test_scenes_per_type, seed),
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, scenes in plan.items():
        files = split_files(out, split)
        sub = files["subtype"]
        qfile = _empty_split(sub, "questions")
        afile = _empty_split(sub, "annotations")
        side: dict[str, Any] = {"data_subtype": sub, "images": [], "question_meta": {}}
        written: set[str] = set()
        per_cat: dict[str, int] = {}
        for scene in scenes:
            t0 = time.perf_counter()
            _, room, _ = parse_scene(scene)
            number = int(scene.removeprefix("FloorPlan"))
            with _torch_threads(torch_threads):
                views, rng = _scene_views(
                    scene,
                    seed=seed,
                    images=images_per_scene,
                    candidates=candidates,
                    width=width,
                    height=height,
                    device=device,
                    kb=kb,
                )
            for k, view in enumerate(views):
                image_id = number * 1000 + k
                name = f"{files['image_prefix']}{image_id:012d}.png"
                write_bytes_atomic(files["image_dir"] / name, _png_bytes(view["frame"]))
                written.add(name)
                visible = sorted({o["objectType"] for o in view["objects"]})
                side["images"].append(
                    {
                        "image_id": image_id,
                        "file_name": name,
                        "scene": scene,
                        "room_type": room,
                        "pose": view["pose"],
                        "visible_types": visible,
                        "objects": view["objects"],
                    }
                )
                chosen = _choose_questions(
                    _candidates(view["objects"], room, kb, rng), questions_per_image, rng
                )
                for q_index, c in enumerate(chosen):
                    qid = image_id * 10 + q_index
                    qfile["questions"].append(
                        {"image_id": image_id, "question": c["question"], "question_id": qid}
                    )
                    afile["annotations"].append(
                        {
                            "image_id": image_id,
                            "question_id": qid,
                            "question_type": c["category"],
                            "answer_type": "other",
                            "confidence": 3,
                            "answers": _answer_records(c["votes"], rng),
                        }
                    )
                    side["question_meta"][str(qid)] = {
                        "family": c["family"],
                        "subject_type": c["subject_type"],
                        "subject": c["subject"],
                        "ref": c["ref"],
                    }
                    per_cat[c["category"]] = per_cat.get(c["category"], 0) + 1
            if progress:
                print(
                    f"[kqa] {split} {scene}: {len(views)} views ({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
        write_json_atomic(files["questions"], qfile)
        write_json_atomic(files["annotations"], afile)
        write_json_atomic(files["objects"], side)
        if files["image_dir"].is_dir():
            for p in files["image_dir"].glob(f"{files['image_prefix']}*.png"):
                if p.name not in written:
                    p.unlink()
        summary["splits"][split] = {
            "scenes": scenes,
            "num_images": len(side["images"]),
            "num_questions": len(qfile["questions"]),
            "per_category": dict(sorted(per_cat.items())),
            **{k: v.name if isinstance(v, Path) else v for k, v in files.items()},
        }
    # The info file names files relative to OUT, so it is the same wherever OUT is.
    write_json_atomic(out / "kqa_info.json", summary, indent=2)
    result: dict[str, Any] = {"out_dir": str(out), **summary}
    result["splits"] = {
        split: {**info, **{k: str(v) for k, v in split_files(out, split).items()}}
        for split, info in summary["splits"].items()
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result
