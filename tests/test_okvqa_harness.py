"""OK-VQA model harness on a tiny generated split (PNG and JPG images in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from thorgym.eval.okvqa_harness import find_image, run_model

COLOURS = {"red": (255, 0, 0), "green": (0, 160, 0), "blue": (0, 0, 255)}


def _answers(*texts: str) -> list[dict]:
    return [
        {"answer_id": i + 1, "answer": t, "raw_answer": t, "answer_confidence": "yes"}
        for i, t in enumerate(texts)
    ]


def _colour_name(image: Image.Image) -> str:
    pixel = image.getpixel((image.width // 2, image.height // 2))

    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(COLOURS[name], pixel, strict=True))

    return min(COLOURS, key=distance)


@pytest.fixture()
def tiny_split(tmp_path: Path) -> tuple[dict, dict, Path]:
    images = tmp_path / "val2014"
    images.mkdir()
    # image_id -> (colour, file suffix)
    layout = {9: ("red", ".jpg"), 123456: ("green", ".png"), 581929: ("blue", ".jpg")}
    for image_id, (colour, suffix) in layout.items():
        Image.new("RGB", (24, 16), COLOURS[colour]).save(
            images / f"COCO_val2014_{image_id:012d}{suffix}"
        )
    # Questions 1-3 ask for the colour; question 4 (image 9) gets a partially right answer.
    rows = [
        (1, 9, "one", _answers(*["red"] * 10)),
        (2, 123456, "eight", _answers(*["green"] * 2 + ["lime"] * 8)),
        (3, 581929, "ten", _answers(*["blue"] * 5 + ["navy"] * 5)),
        (4, 9, "one", _answers(*["stop sign"] * 10)),
    ]
    questions = {
        "questions": [
            {"image_id": img, "question": f"What colour is it? ({qid})", "question_id": qid}
            for qid, img, _, _ in rows
        ]
    }
    annotations = {
        "annotations": [
            {"image_id": img, "question_id": qid, "question_type": qt, "answer_type": "other",
             "answers": ans}
            for qid, img, qt, ans in rows
        ]
    }
    return questions, annotations, images


def test_find_image(tiny_split) -> None:
    _, _, images = tiny_split
    assert find_image(images, 9).name == "COCO_val2014_000000000009.jpg"
    assert find_image(images, 123456).name == "COCO_val2014_000000123456.png"
    assert find_image(images, 7) is None
    assert find_image(images, 9, image_prefix="COCO_train2014_") is None


def test_run_model_batches_writes_and_scores(tiny_split, tmp_path) -> None:
    questions, annotations, images = tiny_split
    batches: list[int] = []

    def answer(imgs: list[Image.Image], texts: list[str]) -> list[str]:
        batches.append(len(imgs))
        assert all(im.mode == "RGB" and im.size == (24, 16) for im in imgs)
        assert all(t.startswith("What colour") for t in texts)
        return [_colour_name(im) for im in imgs]

    q_path = tmp_path / "q.json"
    q_path.write_text(json.dumps(questions))
    out = tmp_path / "run"
    m = run_model(answer, str(q_path), annotations, images, batch_size=3, out_dir=out,
                  progress=False)

    assert batches == [3, 1]
    results = json.loads((out / "results.json").read_text())
    assert results == [
        {"question_id": 1, "answer": "red"},
        {"question_id": 2, "answer": "green"},
        {"question_id": 3, "answer": "blue"},
        {"question_id": 4, "answer": "red"},
    ]
    # q1: 1.0; q2: 2 of 10 match -> 0.6; q3: 5 match -> 1.0; q4: 0.0
    assert m["per_question"] == {1: 100.0, 2: 60.0, 3: 100.0, 4: 0.0}
    assert m["overall"] == 65.0
    assert m["per_question_type"] == {"one": 50.0, "eight": 60.0, "ten": 100.0}
    assert m["per_category"]["Weather and Climate"] == 100.0
    assert m["missing"] == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["overall"] == 65.0
    assert m["results_path"] == str(out / "results.json")


def test_missing_image_fails_before_the_model_runs(tiny_split, tmp_path) -> None:
    questions, annotations, images = tiny_split
    (images / "COCO_val2014_000000123456.png").unlink()
    calls = []

    def answer(imgs, texts):
        calls.append(1)
        return ["x"] * len(imgs)

    with pytest.raises(FileNotFoundError, match="COCO_val2014_000000123456"):
        run_model(answer, questions, annotations, images, out_dir=tmp_path / "o", progress=False)
    assert calls == []
    assert not (tmp_path / "o").exists()


def test_answer_function_must_return_one_string_per_question(tiny_split, tmp_path) -> None:
    questions, annotations, images = tiny_split
    with pytest.raises(ValueError, match="returned 1 answers for a batch of 4"):
        run_model(lambda imgs, texts: ["red"], questions, annotations, images,
                  out_dir=tmp_path / "o", progress=False)
    with pytest.raises(TypeError, match="must be strings"):
        run_model(lambda imgs, texts: [1] * len(imgs), questions, annotations, images,
                  out_dir=tmp_path / "o", progress=False)


def test_progress_bar_enabled(tiny_split, tmp_path, capsys) -> None:
    questions, annotations, images = tiny_split
    m = run_model(lambda imgs, texts: ["red"] * len(imgs), questions, annotations, images,
                  batch_size=2, out_dir=tmp_path / "o", progress=True)
    assert "4/4" in capsys.readouterr().err
    assert m["per_question"] == {1: 100.0, 2: 0.0, 3: 0.0, 4: 0.0}
