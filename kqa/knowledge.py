"""The KQA knowledge base, the words that describe how the simulator draws a type, and answers.

The knowledge base (``knowledge_base.json`` next to this module) holds, for each AI2-THOR object
type of :mod:`thorgym.sim.objects`, its names with synonyms, uses, materials, properties, rooms
and facts, every answer given as ten annotator votes over accepted synonyms.
"""

from __future__ import annotations

import colorsys
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from thorgym.kqa.format import CATEGORIES, NUM_ANSWERS
from thorgym.sim.objects import OBJECT_TYPES, TYPE_COLORS
from thorgym.sim.scenes import ROOM_TYPES

__all__ = [
    "KB_PATH",
    "KnowledgeBase",
    "answer_records",
    "colour_name",
    "load_knowledge_base",
    "pattern_name",
    "ten_answers",
]

KB_PATH = Path(__file__).with_name("knowledge_base.json")
"""The knowledge base shipped with thorgym (facts about every type in ``OBJECT_TYPES``)."""

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


def answer_records(votes: Mapping[str, int], rng: np.random.Generator) -> list[dict[str, Any]]:
    """The ten ``answers`` records of an annotation (ids 1..10, ``answer_confidence`` mostly
    "yes"), drawn with :func:`ten_answers`."""
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
