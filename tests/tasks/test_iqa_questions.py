"""IQUAD-style questions: generated and shipped splits (balance, templates, scene configurations,
answers checked against the configured worlds, determinism) and bad question files."""

from __future__ import annotations

from collections import Counter

import pytest

from thorgym.datasets import iqa as data
from thorgym.tasks import iqa
from thorgym.tasks.iqa_vocab import CLASS_INDEX, CONTAINERS, MAP_CLASSES, QUESTION_OBJECTS


@pytest.fixture(scope="module")
def small_split() -> list[iqa.Question]:
    return data.generate_split("unseen", 4, seed=11)


def _template_ok(q: iqa.Question) -> bool:
    return q.question == iqa.question_text(q.question_type, q.object_type, q.container_type, q.seed)


def _balanced(qs: list[iqa.Question]) -> None:
    by = Counter((q.question_type, q.answer) for q in qs)
    n_ex = by[("existence", 0)]
    assert by[("existence", 1)] == n_ex
    assert by[("contains", 0)] == by[("contains", 1)]
    assert len({by[("counting", a)] for a in range(4)}) == 1


def test_generated_split_is_balanced_in_groups_with_its_own_configurations(small_split):
    qs = small_split
    assert Counter(q.question_type for q in qs) == {"existence": 4, "counting": 4, "contains": 4}
    _balanced(qs)
    # groups: yes/no pairs and counts 0-3 on the same scene and object, in order
    for k in range(0, 4, 2):
        a, b = [q for q in qs if q.question_type == "existence"][k : k + 2]
        assert (a.scene, a.object_id, a.answer, b.answer) == (b.scene, b.object_id, 0, 1)
    counting = [q for q in qs if q.question_type == "counting"]
    assert [q.answer for q in counting] == [0, 1, 2, 3] and len(
        {(q.scene, q.object_id) for q in counting}
    ) == 1
    assert len({(q.scene, q.seed) for q in qs}) == len(qs)  # every question has its own configuration
    assert all(q.seed % 3 == data.SPLIT_OFFSET["unseen"] for q in qs)
    assert all(1 <= q.scene_number <= 5 for q in qs)
    assert all(_template_ok(q) for q in qs)
    for q in qs:
        if q.question_type == "contains":
            assert q.container_type in CONTAINERS and q.container_type in data.allowed_containers(
                q.object_type
            )
        else:
            assert q.container_id == -1


def test_generated_answers_hold_in_the_configured_worlds(small_split):
    for q in small_split:
        world = data.configured_world(iqa.scene_config(q.scene, q.seed, q.question_type))
        states = data.object_states(world)
        assert iqa.true_answer(states, q.question_type, q.object_type, q.container_type) == q.answer
        if q.answer > 0:  # the evidence is visible from some reachable pose
            assert data._visible(world, iqa.evidence_objects(states, q), q.question_type == "counting")


def test_generation_is_deterministic_and_independent_of_workers(small_split):
    again = data.generate_split("unseen", 4, seed=11, workers=2)
    assert iqa.questions_csv(again) == iqa.questions_csv(small_split)
    other = data.generate_split("unseen", 4, seed=12)
    assert iqa.questions_csv(other) != iqa.questions_csv(small_split)


def test_write_splits_writes_iqud_csv_atomically(tmp_path):
    paths = data.write_splits(tmp_path, per_type=4, seed=5, splits=["unseen"])
    text = paths["unseen"].read_text()
    assert text.splitlines()[0] == ",".join(iqa.CSV_COLUMNS)
    qs = iqa.read_questions(paths["unseen"])
    assert len(qs) == 12
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("split,size,scenes", [("seen", 2400, range(6, 31)), ("unseen", 1920, range(1, 6))])
def test_shipped_test_splits(split, size, scenes):
    qs = data.shipped_questions(split)
    assert len(qs) == size
    assert Counter(q.question_type for q in qs) == {t: size // 3 for t in iqa.QUESTION_TYPES}
    _balanced(qs)
    assert {q.scene_number for q in qs} <= set(scenes)
    assert len({(q.scene, q.seed) for q in qs}) == size
    assert all(q.seed % 3 == data.SPLIT_OFFSET[split] for q in qs)
    assert all(_template_ok(q) for q in qs[::50])


def test_shipped_splits_share_no_configuration_with_train():
    seen = {(q.scene, q.seed) for q in data.shipped_questions("seen")}
    unseen = {(q.scene, q.seed) for q in data.shipped_questions("unseen")}
    train = data.generate_split("train", 4, seed=0)
    assert not seen & {(q.scene, q.seed) for q in train}
    assert not seen & unseen
    assert all(q.seed % 3 == 0 for q in train)


def test_shipped_answers_still_hold_in_the_simulator():
    """A changed simulator (placement, spawning) would silently make the shipped answers wrong."""
    for split in ("seen", "unseen"):
        for q in data.shipped_questions(split)[::97]:
            world = data.configured_world(iqa.scene_config(q.scene, q.seed, q.question_type))
            states = data.object_states(world)
            assert iqa.true_answer(states, q.question_type, q.object_type, q.container_type) == q.answer, q


HEADER = ",".join(iqa.CSV_COLUMNS)


@pytest.mark.parametrize(
    "row,message",
    [
        ("colour,3,1,Is it red?,1,1,-1", "unknown IQA question type 'colour'"),
        ("counting,3,1,How many?,7,1,-1", "answer 7 out of range"),
        ("existence,3,1,Is there?,2,1,-1", "answer 2 out of range"),
        ("existence,42,1,Is there?,1,1,-1", "not a kitchen"),
        ("existence,3,1,Is there?,1,15,-1", "not a question object"),
        ("contains,3,1,Is there?,1,1,14", "not a container"),
        ("existence,3,1,Is there?,1", "malformed row"),
        ("existence,3,x,Is there?,1,1,-1", "integers in the numeric columns"),
    ],
)
def test_bad_question_files_name_the_problem(row, message):
    with pytest.raises(ValueError, match=message):
        iqa.read_questions(f"{HEADER}\n{row}\n")


def test_bad_header_and_missing_file():
    with pytest.raises(ValueError, match="header must be"):
        iqa.read_questions("a,b,c\n1,2,3\n")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        iqa.read_questions("/nonexistent/questions.csv")


def test_scene_config_is_deterministic_and_only_for_kitchens():
    a = iqa.scene_config("FloorPlan3", 12, "counting")
    assert a == iqa.scene_config("FloorPlan3", 12, "counting")
    assert a != iqa.scene_config("FloorPlan3", 15, "counting")
    assert {t for t, _ in a.duplicates} | set(a.removed_types) == set(QUESTION_OBJECTS)
    assert all(1 <= c <= 3 for _, c in a.duplicates)
    with pytest.raises(ValueError, match="kitchens"):
        iqa.scene_config("FloorPlan201", 1, "existence")
    with pytest.raises(ValueError, match="unknown IQA question type"):
        iqa.scene_config("FloorPlan3", 1, "colour")


def test_vocabulary_matches_the_reference_order():
    assert MAP_CLASSES[0] == "Background" and len(MAP_CLASSES) == 21
    assert [CLASS_INDEX[c] for c in CONTAINERS] == [17, 18, 19, 20]
    assert MAP_CLASSES[1:14] == QUESTION_OBJECTS
