"""The OK-VQA file formats: the layout of a split, and loading, validating and writing its files.

Both the KQA generator (:mod:`thorgym.kqa.generate`) and the OK-VQA scorer
(:mod:`thorgym.eval.okvqa`) use this module; it imports neither. The OK-VQA release uses the VQA
file layout:

* questions, ``OpenEnded_mscoco_{train,val}2014_questions.json``:
  ``{"questions": [{"image_id", "question", "question_id"}, ...], ...}``
* annotations, ``mscoco_{train,val}2014_annotations.json``:
  ``{"annotations": [{"image_id", "question_id", "question_type", "answer_type",
  "answers": [10 x {"answer_id", "answer", "raw_answer", "answer_confidence"}]}, ...], ...}``
* results (what a model produces): ``[{"question_id": int, "answer": str}, ...]``

Every loader accepts either a path or the already-loaded JSON object, checks the structure and
raises :class:`OKVQAFormatError` with a message that names the file, the problem and the fix.
A split directory holds both files and the images of one ``data_subtype`` (see
:func:`split_files`). Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from thorgym.atomic import write_json_atomic

__all__ = [
    "CATEGORIES",
    "NUM_ANSWERS",
    "SUBTYPES",
    "OKVQAFormatError",
    "JSONSource",
    "load_annotations",
    "load_json",
    "load_predictions",
    "load_questions",
    "empty_split_file",
    "split_files",
    "write_json_atomic",
    "write_results",
]

NUM_ANSWERS = 10
"""Every OK-VQA (and VQA) annotation carries exactly ten ground-truth answers."""

CATEGORIES: dict[str, str] = {
    "one": "Vehicles and Transportation",
    "two": "Brands, Companies and Products",
    "three": "Objects, Material and Clothing",
    "four": "Sports and Recreation",
    "five": "Cooking and Food",
    "six": "Geography, History, Language and Culture",
    "seven": "People and Everyday Life",
    "eight": "Plants and Animals",
    "nine": "Science and Technology",
    "ten": "Weather and Climate",
    "other": "Other",
}
"""OK-VQA knowledge category of each ``question_type`` value of the annotation files."""

SUBTYPES: dict[str, str] = {"train": "train2014", "test": "val2014"}
"""OK-VQA's ``data_subtype`` of each split (OK-VQA's test set is COCO val2014)."""

JSONSource = str | os.PathLike | Mapping[str, Any] | list
"""A path to a JSON file, or the JSON value already loaded from it."""

_EXAMPLES = 5  # how many offending ids an error message lists


class OKVQAFormatError(ValueError):
    """An OK-VQA questions, annotations or results file is malformed or inconsistent.

    The message names the file, the problem and how to fix it.
    """


def _describe(source: Any, kind: str) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"{kind} file {os.fspath(source)!r}"
    return f"{kind} (in-memory object)"


def _examples(items: Iterable[Any]) -> str:
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:_EXAMPLES])
    more = f", ... ({len(items) - _EXAMPLES} more)" if len(items) > _EXAMPLES else ""
    return shown + more


def load_json(source: JSONSource, kind: str = "JSON") -> tuple[Any, str]:
    """Return ``(value, name)``: the parsed JSON of ``source`` and a name for error messages.

    ``source`` is a path (``str`` or path-like) or an already-loaded JSON value, which is
    returned unchanged. Raises ``FileNotFoundError`` for a missing file and
    :class:`OKVQAFormatError` for a file that is not valid JSON.
    """
    name = _describe(source, kind)
    if not isinstance(source, (str, os.PathLike)):
        return source, name
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{name} does not exist (or is not a file). Fix: check the path.")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f), name
    except json.JSONDecodeError as e:
        raise OKVQAFormatError(
            f"{name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. "
            "Fix: re-download or re-generate the file (a truncated write is the usual cause)."
        ) from e
    except UnicodeDecodeError as e:
        raise OKVQAFormatError(
            f"{name} is not UTF-8 text ({e.reason}). Fix: pass the JSON file itself, "
            "not an archive or image."
        ) from e


def _require_list(data: Any, key: str, name: str, expected_file: str) -> list:
    if not isinstance(data, Mapping) or key not in data:
        got = f"an object with keys {sorted(data)[:8]}" if isinstance(data, Mapping) else (
            f"a JSON {type(data).__name__}"
        )
        raise OKVQAFormatError(
            f"{name} has no top-level {key!r} list (got {got}). "
            f"Fix: pass the official {expected_file} file here."
        )
    items = data[key]
    if not isinstance(items, list):
        raise OKVQAFormatError(
            f"{name}: {key!r} must be a list, got {type(items).__name__}. "
            f"Fix: pass the official {expected_file} file here."
        )
    return items


def _check_entry(entry: Any, index: int, keys: tuple[str, ...], name: str, what: str,
                 fix: str) -> None:
    if not isinstance(entry, Mapping):
        raise OKVQAFormatError(
            f"{name}: {what} #{index} is a {type(entry).__name__}, not an object. Fix: {fix}"
        )
    missing = [k for k in keys if k not in entry]
    if missing:
        qid = entry.get("question_id", "?")
        raise OKVQAFormatError(
            f"{name}: {what} #{index} (question_id {qid!r}) lacks key(s) {missing}. Fix: {fix}"
        )


def _check_int_id(value: Any, field: str, index: int, name: str, what: str, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OKVQAFormatError(
            f"{name}: {what} #{index} has {field} {value!r} ({type(value).__name__}); "
            f"it must be an integer. Fix: {fix}"
        )


def _check_unique(ids: list[int], name: str, what: str, fix: str) -> None:
    counts = Counter(ids)
    dups = sorted(q for q, c in counts.items() if c > 1)
    if dups:
        raise OKVQAFormatError(
            f"{name}: {len(dups)} question_id(s) occur more than once among the {what}s "
            f"({_examples(dups)}). Fix: {fix}"
        )


def load_questions(source: JSONSource) -> list[dict]:
    """Load and validate an OK-VQA questions file (``OpenEnded_mscoco_*_questions.json``).

    Returns the ``questions`` list (dicts with at least ``image_id``, ``question`` and
    ``question_id``) in file order. Raises :class:`OKVQAFormatError` for a malformed file or
    duplicate question ids.
    """
    data, name = load_json(source, "questions")
    fix = "pass the official OpenEnded_mscoco_*_questions.json file (or repair this entry)."
    items = _require_list(data, "questions", name, "OpenEnded_mscoco_*_questions.json")
    for i, q in enumerate(items):
        _check_entry(q, i, ("image_id", "question", "question_id"), name, "question", fix)
        _check_int_id(q["question_id"], "question_id", i, name, "question", fix)
        _check_int_id(q["image_id"], "image_id", i, name, "question", fix)
        if not isinstance(q["question"], str):
            raise OKVQAFormatError(
                f"{name}: question #{i} (question_id {q['question_id']}) has a non-string "
                f"'question'. Fix: {fix}"
            )
    _check_unique([q["question_id"] for q in items], name, "question",
                  "remove the duplicates; every question must appear once.")
    return items


def load_annotations(source: JSONSource) -> list[dict]:
    """Load and validate an OK-VQA annotations file (``mscoco_*_annotations.json``).

    Returns the ``annotations`` list in file order. Each entry must have ``image_id``,
    ``question_id``, ``question_type``, ``answer_type`` and exactly ten ``answers``, each an
    object with ``answer_id`` and a string ``answer`` (``raw_answer`` and ``answer_confidence``
    are carried along when present but not required). Raises :class:`OKVQAFormatError` for a
    malformed file or duplicate question ids.
    """
    data, name = load_json(source, "annotations")
    fix = "pass the official mscoco_*_annotations.json file (or repair this entry)."
    items = _require_list(data, "annotations", name, "mscoco_*_annotations.json")
    keys = ("image_id", "question_id", "question_type", "answer_type", "answers")
    for i, ann in enumerate(items):
        _check_entry(ann, i, keys, name, "annotation", fix)
        _check_int_id(ann["question_id"], "question_id", i, name, "annotation", fix)
        _check_int_id(ann["image_id"], "image_id", i, name, "annotation", fix)
        qid = ann["question_id"]
        for field in ("question_type", "answer_type"):
            if not isinstance(ann[field], str):
                raise OKVQAFormatError(
                    f"{name}: annotation #{i} (question_id {qid}) has a non-string {field!r} "
                    f"({ann[field]!r}). Fix: {fix}"
                )
        answers = ann["answers"]
        if not isinstance(answers, list) or len(answers) != NUM_ANSWERS:
            got = f"{len(answers)} answers" if isinstance(answers, list) else (
                f"a {type(answers).__name__}"
            )
            raise OKVQAFormatError(
                f"{name}: annotation #{i} (question_id {qid}) has {got}; OK-VQA annotations "
                f"have exactly {NUM_ANSWERS}. Fix: {fix}"
            )
        for j, a in enumerate(answers):
            if not isinstance(a, Mapping) or "answer" not in a or "answer_id" not in a:
                raise OKVQAFormatError(
                    f"{name}: annotation #{i} (question_id {qid}), answer #{j} must be an "
                    f"object with 'answer_id' and 'answer' (got {a!r}). Fix: {fix}"
                )
            if not isinstance(a["answer"], str):
                raise OKVQAFormatError(
                    f"{name}: annotation #{i} (question_id {qid}), answer #{j} has a non-string "
                    f"'answer' ({a['answer']!r}). Fix: {fix}"
                )
    _check_unique([a["question_id"] for a in items], name, "annotation",
                  "remove the duplicates; every question must be annotated once.")
    return items


def load_predictions(source: JSONSource) -> dict[int, str]:
    """Load and validate a results file ``[{"question_id": int, "answer": str}, ...]``.

    Returns ``{question_id: answer}`` in file order. Extra keys in an entry are ignored.
    Raises :class:`OKVQAFormatError` for a malformed file or a question id predicted twice.
    (Whether the ids match the annotations is checked by ``evaluate``.)
    """
    data, name = load_json(source, "predictions")
    fix = 'write a JSON list of {"question_id": <int>, "answer": <str>} objects.'
    if not isinstance(data, list):
        hint = ""
        if isinstance(data, Mapping) and ("annotations" in data or "questions" in data):
            hint = " (it looks like a questions/annotations file; are the arguments swapped?)"
        raise OKVQAFormatError(
            f"{name} must be a JSON list of results, got a {type(data).__name__}{hint}. Fix: {fix}"
        )
    out: dict[int, str] = {}
    dups: list[int] = []
    for i, p in enumerate(data):
        _check_entry(p, i, ("question_id", "answer"), name, "prediction", fix)
        _check_int_id(p["question_id"], "question_id", i, name, "prediction", fix)
        if not isinstance(p["answer"], str):
            raise OKVQAFormatError(
                f"{name}: prediction #{i} (question_id {p['question_id']}) has a non-string "
                f"answer {p['answer']!r}. Fix: {fix}"
            )
        qid = p["question_id"]
        if qid in out:
            dups.append(qid)
        out[qid] = p["answer"]
    if dups:
        dups = sorted(set(dups))
        raise OKVQAFormatError(
            f"{name}: {len(dups)} question_id(s) are predicted more than once "
            f"({_examples(dups)}). Fix: keep exactly one answer per question."
        )
    return out


def write_results(path: str | os.PathLike, answers: Mapping[int, str]) -> Path:
    """Write ``{question_id: answer}`` as an official results file, atomically.

    The file is ``[{"question_id": int, "answer": str}, ...]`` in the mapping's order.
    """
    results = [{"question_id": int(qid), "answer": str(ans)} for qid, ans in answers.items()]
    return write_json_atomic(path, results)


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


def empty_split_file(sub: str, kind: str) -> dict[str, Any]:
    """An empty questions (``kind="questions"``) or annotations file of ``data_subtype`` ``sub``,
    with the header fields of the official files."""
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
