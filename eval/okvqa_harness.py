"""Run any image+question -> answer model over an OK-VQA split and score it.

The model is a plain callable ``answer(images, questions) -> answers`` taking a batch of PIL
images and the matching question strings and returning one answer string per question, so
the harness works with any framework (or none). Images are read from a folder of COCO files
named ``{image_prefix}{image_id:012d}.jpg`` (``.png`` and ``.jpeg`` are accepted too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from thorgym.eval.okvqa import _check_questions_match, evaluate
from thorgym.kqa.format import (
    JSONSource,
    _describe,
    _examples,
    load_annotations,
    load_questions,
    write_json_atomic,
    write_results,
)

__all__ = ["IMAGE_SUFFIXES", "AnswerFn", "find_image", "run_model"]

AnswerFn = Callable[[list[Image.Image], list[str]], Sequence[str]]
"""``answer(images, questions) -> answers``: one answer string per (image, question) pair."""

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".png", ".jpeg")

RESULTS_NAME = "results.json"
METRICS_NAME = "metrics.json"


def find_image(image_dir: str | os.PathLike, image_id: int,
               image_prefix: str = "COCO_val2014_") -> Path | None:
    """Path of the image of ``image_id`` in ``image_dir``, or ``None`` if there is none.

    The COCO file name is ``{image_prefix}{image_id:012d}`` with one of ``IMAGE_SUFFIXES``.
    """
    stem = f"{image_prefix}{int(image_id):012d}"
    for suffix in IMAGE_SUFFIXES:
        path = Path(image_dir) / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _load_image(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def run_model(
    answer: AnswerFn,
    questions: JSONSource,
    annotations: JSONSource,
    image_dir: str | os.PathLike,
    *,
    image_prefix: str = "COCO_val2014_",
    batch_size: int = 32,
    out_dir: str | os.PathLike,
    progress: bool = True,
) -> dict[str, Any]:
    """Answer every question of an OK-VQA split with ``answer`` and score the answers.

    ``questions`` and ``annotations`` are the split's official files (paths or loaded JSON).
    Questions are answered in questions-file order, ``batch_size`` at a time, with RGB PIL
    images. All image files are looked up before the model runs; a missing one raises
    ``FileNotFoundError`` naming the expected path(s).

    Writes ``out_dir/results.json`` (official results format) and ``out_dir/metrics.json``,
    both atomically, and returns :func:`thorgym.eval.okvqa.evaluate`'s metrics plus
    ``"results_path"`` and ``"metrics_path"``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    qs = load_questions(questions)
    anns = load_annotations(annotations)
    # Fail before the (possibly long) model run if the two files are not of the same split.
    _check_questions_match(qs, anns, _describe(questions, "questions"),
                           _describe(annotations, "annotations"))
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image_dir {str(image_dir)!r} is not a directory. "
                                "Fix: point it at the folder holding the COCO images.")

    paths: dict[int, Path] = {}
    absent: list[str] = []
    for q in qs:
        img = q["image_id"]
        if img in paths:
            continue
        path = find_image(image_dir, img, image_prefix)
        if path is None:
            absent.append(f"{image_prefix}{int(img):012d}.jpg")
        else:
            paths[img] = path
    if absent:
        raise FileNotFoundError(
            f"{len(absent)} image(s) needed by the questions are missing from {str(image_dir)!r} "
            f"(looked for {'/'.join(IMAGE_SUFFIXES)}): {_examples(absent)}. Fix: download the "
            "COCO images of this split into that folder, or set image_prefix to match the file "
            "names (e.g. 'COCO_train2014_' for the train split)."
        )

    answers: dict[int, str] = {}
    with tqdm(total=len(qs), desc="OK-VQA", unit="q", disable=not progress) as bar:
        for start in range(0, len(qs), batch_size):
            batch = qs[start:start + batch_size]
            images = [_load_image(paths[q["image_id"]]) for q in batch]
            texts = [q["question"] for q in batch]
            out = answer(images, texts)
            if isinstance(out, str) or len(out) != len(batch):
                got = "a single string" if isinstance(out, str) else f"{len(out)} answers"
                raise ValueError(
                    f"the answer function returned {got} for a batch of {len(batch)} questions; "
                    "it must return one answer string per question."
                )
            for q, a in zip(batch, out, strict=True):
                if not isinstance(a, str):
                    raise TypeError(
                        f"the answer function returned {a!r} ({type(a).__name__}) for "
                        f"question_id {q['question_id']}; answers must be strings."
                    )
                answers[q["question_id"]] = a
            bar.update(len(batch))

    out_dir = Path(out_dir)
    results_path = write_results(out_dir / RESULTS_NAME, answers)
    metrics = evaluate(questions, annotations, results_path)
    metrics_path = write_json_atomic(out_dir / METRICS_NAME, metrics, indent=2)
    return {**metrics, "results_path": str(results_path), "metrics_path": str(metrics_path)}
