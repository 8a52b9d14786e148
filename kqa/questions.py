"""KQA questions about one view: who can be asked about, how to refer to it, which to ask.

Every question needs knowledge that is not in the picture: what an object is used for, what it
is usually made of, which visible object has some property ("Which appliance here keeps food
cold?"), which visible object serves a purpose ("What would you use here to boil water?"), which
room the view shows, and object-specific facts ("Which animal laid the purple food?").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from thorgym.kqa.knowledge import KnowledgeBase, colour_name, pattern_name
from thorgym.sim.objects import OBJECT_TYPES

__all__ = [
    "BACKGROUND_TYPES",
    "SMALL_SUBJECT_AREA",
    "SUBJECT_AREA",
    "askable",
    "choose_questions",
    "question_candidates",
]

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


def askable(obj: Mapping[str, Any]) -> bool:
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


def question_candidates(
    view: Sequence[dict[str, Any]], room: str, kb: KnowledgeBase, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Every question that could be asked about a view (each with family, text, answers...)."""
    known = [v for v in view if v["objectType"] in kb.objects]
    subjects = [v for v in known if askable(v)]
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


def choose_questions(cands: list[dict[str, Any]], n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
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
