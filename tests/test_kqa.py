"""Embodied knowledge QA: generator (thorgym.kqa.generate) and baselines (thorgym.kqa.baselines).

A tiny split (one scene per room type and split, three 96x96 views per scene) is generated once
per module; a larger end-to-end run is marked ``slow``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thorgym.eval.okvqa import evaluate
from thorgym.eval.okvqa_harness import find_image
from thorgym.kqa.format import CATEGORIES, SUBTYPES, load_annotations, load_questions, split_files
from thorgym.kqa.generate import generate_kqa
from thorgym.kqa.knowledge import KB_PATH, load_knowledge_base, ten_answers
from thorgym.sim.objects import OBJECT_TYPES
from thorgym.sim.scenes import split_of

TINY = dict(train_scenes_per_type=1, test_scenes_per_type=1, images_per_scene=3, width=96, height=96)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("kqa")
    return out, generate_kqa(out, seed=0, **TINY)


def _load(out: Path, split: str) -> tuple[list[dict], list[dict], dict]:
    files = split_files(out, split)
    side = json.loads(Path(files["objects"]).read_text())
    return load_questions(files["questions"]), load_annotations(files["annotations"]), side


def test_files_follow_the_official_layout(tiny: tuple[Path, dict]) -> None:
    out, summary = tiny
    for split, sub in SUBTYPES.items():
        files = split_files(out, split)
        assert files["questions"].name == f"OpenEnded_mscoco_{sub}_questions.json"
        assert files["annotations"].name == f"mscoco_{sub}_annotations.json"
        qfile = json.loads(files["questions"].read_text())
        afile = json.loads(files["annotations"].read_text())
        assert qfile["data_subtype"] == afile["data_subtype"] == sub
        assert qfile["task_type"] == "Open-Ended"
        questions, annotations, side = _load(out, split)
        assert questions and len(questions) == len(annotations)
        assert len(questions) == summary["splits"][split]["num_questions"]
        image_ids = {q["image_id"] for q in questions}
        assert image_ids <= {im["image_id"] for im in side["images"]}
        for image_id in image_ids:
            path = find_image(files["image_dir"], image_id, files["image_prefix"])
            assert path is not None and path.suffix == ".png"
            assert re.fullmatch(rf"COCO_{sub}_\d{{12}}\.png", path.name)
            with Image.open(path) as im:
                assert im.size == (96, 96) and im.mode == "RGB"
        for q in questions:
            assert q["question_id"] // 10 == q["image_id"]
            assert q["question"].endswith("?")
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_ten_answers_categories_and_types(tiny: tuple[Path, dict]) -> None:
    out, _ = tiny
    for split in SUBTYPES:
        _, annotations, _ = _load(out, split)
        for ann in annotations:
            assert len(ann["answers"]) == 10
            assert [a["answer_id"] for a in ann["answers"]] == list(range(1, 11))
            assert all(a["answer"] == a["raw_answer"] != "" for a in ann["answers"])
            assert ann["question_type"] in CATEGORIES
            assert ann["answer_type"] == "other"


def test_answers_use_the_knowledge_base_and_are_not_in_the_question(
    tiny: tuple[Path, dict],
) -> None:
    out, _ = tiny
    kb = load_knowledge_base()
    for split in SUBTYPES:
        questions, annotations, side = _load(out, split)
        images = {im["image_id"]: im for im in side["images"]}
        by_qid = {a["question_id"]: a for a in annotations}
        for q in questions:
            meta = side["question_meta"][str(q["question_id"])]
            answers = {a["answer"] for a in by_qid[q["question_id"]]["answers"]}
            image = images[q["image_id"]]
            words = set(re.findall(r"[a-z0-9]+", q["question"].lower()))
            for a in answers:
                assert not set(a.split()) & words, (q["question"], a)
            if meta["family"] == "room":
                assert answers <= set(kb.rooms[image["room_type"]]["answers"])
            else:
                # The question is about an object that the view shows.
                assert meta["subject_type"] in image["visible_types"]
                assert meta["subject_type"] in kb.objects
            if meta["family"] in ("use_which", "property_which"):
                assert answers <= set(kb.objects[meta["subject_type"]]["names"])


def test_train_and_test_scenes_are_disjoint(tiny: tuple[Path, dict]) -> None:
    out, summary = tiny
    train = summary["splits"]["train"]["scenes"]
    test = summary["splits"]["test"]["scenes"]
    assert len(train) == len(test) == 4  # one per room type
    assert not set(train) & set(test)
    assert all(split_of(s) == "train" for s in train)
    assert all(split_of(s) == "test" for s in test)
    train_images = {im["image_id"] for im in _load(out, "train")[2]["images"]}
    test_images = {im["image_id"] for im in _load(out, "test")[2]["images"]}
    assert {im["scene"] for im in _load(out, "test")[2]["images"]} <= set(test)
    assert not train_images & test_images


def test_knowledge_base_covers_every_object_type() -> None:
    kb = load_knowledge_base()
    assert set(OBJECT_TYPES) <= set(kb.objects)
    for t, entry in kb.objects.items():
        assert sum(entry["names"].values()) == 10, t
        assert entry["uses"] and entry["rooms"], t
    assert kb.objects["Fridge"]["names"] == {"refrigerator": 7, "fridge": 2, "icebox": 1}


def test_knowledge_base_validation_names_the_bad_entry(tmp_path: Path) -> None:
    data = json.loads(KB_PATH.read_text())
    data["objects"]["Kettle"]["names"] = {"kettle": 9}
    bad = tmp_path / "kb.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"objects\.Kettle\.names.*sum to 9"):
        load_knowledge_base(bad)
    data = json.loads(KB_PATH.read_text())
    data["objects"]["Kettle"]["facts"][0]["category"] = "eleven"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="question_type"):
        load_knowledge_base(bad)


def test_ten_answers_follow_the_votes_deterministically() -> None:
    votes = {"refrigerator": 7, "fridge": 2, "icebox": 1}
    a = ten_answers(votes, np.random.default_rng(3))
    assert a == ten_answers(votes, np.random.default_rng(3))
    assert len(a) == 10 and set(a) <= set(votes)
    assert Counter(ten_answers(votes, np.random.default_rng(0), jitter=0)) == Counter(votes)
    draws = {tuple(sorted(Counter(ten_answers(votes, np.random.default_rng(s))).items())) for s in range(20)}
    assert len(draws) > 1  # annotator disagreement varies with the seed
    assert ten_answers({"kitchen": 10}, np.random.default_rng(1)) == ["kitchen"] * 10


def test_generation_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    small = dict(TINY, images_per_scene=2, width=64, height=64, room_types=["kitchen"])
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_kqa(a, seed=5, **small)
    generate_kqa(b, seed=5, **small)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 8  # 7 JSON files + images
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    generate_kqa(c, seed=6, **small)
    qa = (a / "mscoco_val2014_annotations.json").read_bytes()
    assert qa != (c / "mscoco_val2014_annotations.json").read_bytes()


def test_rerun_replaces_files_and_removes_stale_images(tmp_path: Path) -> None:
    small = dict(TINY, images_per_scene=2, width=48, height=48, room_types=["bathroom"])
    generate_kqa(tmp_path, seed=1, **small)
    generate_kqa(tmp_path, seed=1, **dict(small, images_per_scene=1))
    for split in SUBTYPES:
        files = split_files(tmp_path, split)
        images = sorted(p.name for p in files["image_dir"].iterdir())
        side = json.loads(files["objects"].read_text())
        assert images == sorted(im["file_name"] for im in side["images"])
        assert len(images) == 1


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test has 5 kitchen scenes"):
        generate_kqa(tmp_path, test_scenes_per_type=6, room_types=["kitchen"])
    with pytest.raises(ValueError, match="unknown room type"):
        generate_kqa(tmp_path, room_types=["garage"])
    with pytest.raises(ValueError, match="width"):
        generate_kqa(tmp_path, width=1000)


def test_baselines_run_end_to_end(tiny: tuple[Path, dict], tmp_path: Path) -> None:
    from thorgym.kqa.baselines import (
        BASELINES,
        format_results_markdown,
        run_baselines,
    )

    out, _ = tiny
    results = run_baselines(out, tmp_path, detector="both", detector_epochs=3, verbose=False)
    assert set(results) == set(BASELINES)
    n = len(_load(out, "test")[0])
    for name, metrics in results.items():
        assert metrics["num_questions"] == n and metrics["missing"] == 0
        assert 0.0 <= metrics["overall"] <= 100.0
        assert all(0.0 <= v <= 100.0 for v in metrics["per_category"].values())
        assert set(metrics["per_category"]) <= set(CATEGORIES.values())
        # Files written for each baseline are scored the same by the official metric.
        files = split_files(out, "test")
        again = evaluate(files["questions"], files["annotations"], tmp_path / name / "results.json")
        assert again["overall"] == metrics["overall"]
    # Knowing the objects in view and the facts beats guessing (fixed seed, tiny split).
    assert results["retrieval_oracle"]["overall"] > results["most_frequent"]["overall"] + 20
    assert results["retrieval_oracle"]["overall"] > results["question_only"]["overall"]
    assert 0 <= results["retrieval_trained"]["detector"]["micro_f1"] <= 100
    md = format_results_markdown(results)
    assert md.startswith("| Category | N |") and "**Overall**" in md
    assert md == (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_larger_split_end_to_end(tmp_path: Path) -> None:
    from thorgym.kqa.baselines import run_baselines

    summary = generate_kqa(
        tmp_path / "kqa",
        train_scenes_per_type=4,
        test_scenes_per_type=2,
        images_per_scene=6,
        width=128,
        height=128,
        seed=0,
    )
    assert summary["splits"]["test"]["num_questions"] >= 100
    assert len(summary["splits"]["test"]["per_category"]) >= 5
    results = run_baselines(tmp_path / "kqa", tmp_path / "baselines", detector="both")
    mf = results["most_frequent"]["overall"]
    assert results["most_frequent_prefix"]["overall"] >= mf
    assert results["retrieval_oracle"]["overall"] > results["question_only"]["overall"] > mf
    assert results["retrieval_trained"]["overall"] > mf


def _imports(package: str) -> dict[str, set[str]]:
    """Every ``thorgym.*`` module imported (at any depth) by each source file of ``package``."""
    import ast
    import importlib

    root = Path(importlib.import_module(package).__file__).parent
    out: dict[str, set[str]] = {}
    for path in sorted(root.glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        out[path.name] = {n for n in names if n.startswith("thorgym")}
    return out


def test_layers_datasets_never_import_eval_and_eval_only_the_kqa_format() -> None:
    for name, mods in _imports("thorgym.datasets").items():
        assert not [m for m in mods if m.startswith("thorgym.eval")], name
    for name, mods in _imports("thorgym.eval").items():
        kqa = {m for m in mods if m.startswith("thorgym.kqa")}
        assert kqa <= {"thorgym.kqa.format"}, (name, kqa)


def test_scorer_import_does_not_load_the_generator() -> None:
    import subprocess
    import sys

    code = (
        "import sys, thorgym.eval.okvqa, thorgym.eval.okvqa_harness; "
        "sys.exit(any(m in sys.modules for m in "
        "('thorgym.kqa.generate', 'thorgym.kqa.baselines', 'thorgym.sim')))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
