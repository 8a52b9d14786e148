"""Embodied knowledge QA (KQA): an OK-VQA-format split generated from simulator scenes.

Every question needs knowledge that is not in the picture: *what* an object is used for, what it
is usually made of, which visible object has some property ("Which appliance here keeps food
cold?"), which visible object serves a purpose ("What would you use here to boil water?"), which
room the view shows, and object-specific facts ("Which animal laid the purple food?"). The facts
come from the knowledge base shipped with this package (:mod:`thorgym.kqa.knowledge`): for each
AI2-THOR object type of :mod:`thorgym.sim.objects` its names with synonyms, uses, materials,
properties, rooms and facts, every answer given as ten annotator votes over accepted synonyms.

:func:`generate_kqa` renders views from reachable poses of the built-in simulator where at least
one object with knowledge facts is visible, asks questions about them, and writes the split in
the official OK-VQA layout (:mod:`thorgym.kqa.format`), which :func:`thorgym.eval.okvqa.evaluate`
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
written through :mod:`thorgym.atomic` (a temporary file, then a rename).

The defaults (20 train and 5 test scenes per room type, 12 views per scene, 224x224) give 960
train and 240 test images with 2,879 and 720 questions in about 45 s on a 2-core CPU.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from thorgym.atomic import write_bytes_atomic, write_json_atomic
from thorgym.kqa.format import SUBTYPES, empty_split_file, split_files
from thorgym.kqa.knowledge import KnowledgeBase, answer_records, load_knowledge_base
from thorgym.kqa.questions import choose_questions, question_candidates
from thorgym.kqa.views import pick_scenes, scene_views
from thorgym.sim.scenes import ROOM_TYPES, parse_scene

__all__ = ["SUBTYPES", "generate_kqa", "split_files"]


def _png_bytes(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


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


def _check_arguments(
    room_types: Iterable[str] | None,
    images_per_scene: int,
    questions_per_image: int,
    width: int,
    height: int,
    candidates_per_scene: int | None,
) -> tuple[tuple[str, ...], int]:
    """Validate the arguments of :func:`generate_kqa`; return (room types, candidates per scene)."""
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
    return rooms, candidates


class _SplitWriter:
    """Collects the questions, annotations and sidecar of one split, view by view."""

    def __init__(self, out: Path, split: str, questions_per_image: int) -> None:
        self.files = split_files(out, split)
        sub = self.files["subtype"]
        self.questions_per_image = questions_per_image
        self.qfile = empty_split_file(sub, "questions")
        self.afile = empty_split_file(sub, "annotations")
        self.side: dict[str, Any] = {"data_subtype": sub, "images": [], "question_meta": {}}
        self.written: set[str] = set()
        self.per_cat: dict[str, int] = {}

    def add_view(
        self, view: dict[str, Any], image_id: int, scene: str, room: str, kb: KnowledgeBase,
        rng: np.random.Generator,
    ) -> None:
        """Write the view's image and record it, then ask and annotate its questions."""
        name = f"{self.files['image_prefix']}{image_id:012d}.png"
        write_bytes_atomic(self.files["image_dir"] / name, _png_bytes(view["frame"]))
        self.written.add(name)
        self.side["images"].append(
            {
                "image_id": image_id,
                "file_name": name,
                "scene": scene,
                "room_type": room,
                "pose": view["pose"],
                "visible_types": sorted({o["objectType"] for o in view["objects"]}),
                "objects": view["objects"],
            }
        )
        chosen = choose_questions(
            question_candidates(view["objects"], room, kb, rng), self.questions_per_image, rng
        )
        for q_index, c in enumerate(chosen):
            self._add_question(image_id * 10 + q_index, image_id, c, rng)

    def _add_question(self, qid: int, image_id: int, c: dict[str, Any], rng: np.random.Generator) -> None:
        self.qfile["questions"].append({"image_id": image_id, "question": c["question"], "question_id": qid})
        self.afile["annotations"].append(
            {
                "image_id": image_id,
                "question_id": qid,
                "question_type": c["category"],
                "answer_type": "other",
                "confidence": 3,
                "answers": answer_records(c["votes"], rng),
            }
        )
        self.side["question_meta"][str(qid)] = {
            "family": c["family"],
            "subject_type": c["subject_type"],
            "subject": c["subject"],
            "ref": c["ref"],
        }
        self.per_cat[c["category"]] = self.per_cat.get(c["category"], 0) + 1

    def finish(self, scenes: list[str]) -> dict[str, Any]:
        """Write the three JSON files, remove stale images; return the split's summary entry."""
        files = self.files
        write_json_atomic(files["questions"], self.qfile)
        write_json_atomic(files["annotations"], self.afile)
        write_json_atomic(files["objects"], self.side)
        if files["image_dir"].is_dir():
            for p in files["image_dir"].glob(f"{files['image_prefix']}*.png"):
                if p.name not in self.written:
                    p.unlink()
        return {
            "scenes": scenes,
            "num_images": len(self.side["images"]),
            "num_questions": len(self.qfile["questions"]),
            "per_category": dict(sorted(self.per_cat.items())),
            **{k: v.name if isinstance(v, Path) else v for k, v in files.items()},
        }


def _generate_split(
    out: Path,
    split: str,
    scenes: list[str],
    *,
    kb: KnowledgeBase,
    seed: int,
    images_per_scene: int,
    candidates: int,
    width: int,
    height: int,
    questions_per_image: int,
    device: str,
    torch_threads: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Render, ask and write one split; return its summary entry."""
    writer = _SplitWriter(out, split, questions_per_image)
    for scene in scenes:
        t0 = time.perf_counter()
        _, room, _ = parse_scene(scene)
        number = int(scene.removeprefix("FloorPlan"))
        with _torch_threads(torch_threads):
            views, rng = scene_views(
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
            writer.add_view(view, number * 1000 + k, scene, room, kb, rng)
        if progress:
            print(
                f"[kqa] {split} {scene}: {len(views)} views ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    return writer.finish(scenes)


def _result(out: Path, summary: dict[str, Any], start: float) -> dict[str, Any]:
    """The returned summary: ``summary`` with ``out_dir``, absolute file paths and ``seconds``."""
    result: dict[str, Any] = {"out_dir": str(out), **summary}
    result["splits"] = {
        split: {**info, **{k: str(v) for k, v in split_files(out, split).items()}}
        for split, info in summary["splits"].items()
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


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
    rooms, candidates = _check_arguments(
        room_types, images_per_scene, questions_per_image, width, height, candidates_per_scene
    )
    out = Path(out_dir)
    summary: dict[str, Any] = {
        "train_scenes_per_type": train_scenes_per_type,
        "test_scenes_per_type": test_scenes_per_type,
        "images_per_scene": images_per_scene,
        "seed": seed,
        "width": width,
        "height": height,
        "room_types": list(rooms),
        "questions_per_image": questions_per_image,
        "candidates_per_scene": candidates,
        "knowledge_base_version": kb.version,
        "splits": {},
    }
    start = time.perf_counter()
    plan = {
        "train": pick_scenes("train", rooms, train_scenes_per_type, seed),
        "test": pick_scenes("test", rooms, test_scenes_per_type, seed),
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, scenes in plan.items():
        summary["splits"][split] = _generate_split(
            out,
            split,
            scenes,
            kb=kb,
            seed=seed,
            images_per_scene=images_per_scene,
            candidates=candidates,
            width=width,
            height=height,
            questions_per_image=questions_per_image,
            device=device,
            torch_threads=torch_threads,
            progress=progress,
        )
    # The info file names files relative to OUT, so it is the same wherever OUT is.
    write_json_atomic(out / "kqa_info.json", summary, indent=2)
    return _result(out, summary, start)
