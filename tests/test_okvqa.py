"""OK-VQA scorer: every normalisation rule, the accuracy formula, aggregation and bad files.

Expected values are computed by hand from the official VQA evaluation (vqaEval.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from thorgym.eval.okvqa import (
    CATEGORIES,
    OKVQAFormatError,
    evaluate,
    load_annotations,
    normalize_answer,
    process_digit_article,
    process_punctuation,
    run_cli,
    vqa_accuracy,
    write_json_atomic,
    write_results,
)

# ------------------------------------------------------------------------------------------
# Helpers: a tiny split in the official layout.
# ------------------------------------------------------------------------------------------


def _answers(*texts: str) -> list[dict]:
    assert len(texts) == 10
    return [
        {"answer_id": i + 1, "answer": t, "raw_answer": t, "answer_confidence": "yes"}
        for i, t in enumerate(texts)
    ]


def _split(entries: list[tuple[int, str, str, list[dict]]]) -> tuple[dict, dict]:
    """entries: (question_id, question_type, answer_type, answers) -> (questions, annotations)."""
    questions = {
        "questions": [
            {"image_id": 1000 + qid, "question": f"question {qid}?", "question_id": qid}
            for qid, *_ in entries
        ]
    }
    annotations = {
        "annotations": [
            {
                "image_id": 1000 + qid,
                "question_id": qid,
                "question_type": qtype,
                "answer_type": atype,
                "answers": answers,
            }
            for qid, qtype, atype, answers in entries
        ]
    }
    return questions, annotations


def _k_matches(k: int, word: str = "cat") -> list[str]:
    return [word] * k + [f"other{i}" for i in range(10 - k)]


@pytest.fixture()
def split() -> tuple[dict, dict, list[dict]]:
    """Three questions scoring 1.0, 0.3 and 0.6 with the given predictions."""
    qs, anns = _split(
        [
            (1, "one", "other", _answers(*_k_matches(4, "bus"))),
            (2, "one", "number", _answers(*_k_matches(1, "2"))),
            (3, "eight", "other", _answers(*_k_matches(2, "oak"))),
        ]
    )
    preds = [
        {"question_id": 1, "answer": "a bus"},
        {"question_id": 2, "answer": "two"},
        {"question_id": 3, "answer": "Oak."},
    ]
    return qs, anns, preds


def _write(path, obj) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


# ------------------------------------------------------------------------------------------
# Punctuation rule.
# ------------------------------------------------------------------------------------------


def test_mark_not_touching_space_becomes_space() -> None:
    assert process_punctuation("t-shirt") == "t shirt"
    assert process_punctuation("black/white") == "black white"
    assert process_punctuation("(red)") == " red "


def test_mark_touching_space_is_deleted() -> None:
    assert process_punctuation("yes !") == "yes "  # " !" in text
    assert process_punctuation("left, right") == "left right"  # ", " in text
    # The test is on the whole original text: once "- " occurs, every "-" is deleted.
    assert process_punctuation("x-ray - y") == "xray  y"


def test_digit_comma_digit_deletes_all_marks() -> None:
    assert process_punctuation("1,000") == "1000"
    # Without the digit-comma-digit, "-" would become a space.
    assert process_punctuation("1,000 t-shirts") == "1000 tshirts"
    assert process_punctuation("t-shirts") == "t shirts"


def test_apostrophe_colon_and_others_are_kept() -> None:
    assert process_punctuation("don't") == "don't"
    assert process_punctuation("10:30") == "10:30"
    assert process_punctuation("50%") == "50%"


def test_period_deleted_except_before_digit() -> None:
    assert process_punctuation("yes.") == "yes"
    assert process_punctuation("mr.smith") == "mrsmith"
    assert process_punctuation("3.5") == "3.5"
    assert process_punctuation(".5") == ".5"
    assert process_punctuation("1.") == "1"
    assert process_punctuation("u.s.a.") == "usa"


def test_period_removal_capped_at_32_like_official() -> None:
    # The official code passes re.UNICODE (32) as re.sub's count argument.
    assert process_punctuation("." * 40) == "." * 8


# ------------------------------------------------------------------------------------------
# Digits, articles, contractions, case, whitespace.
# ------------------------------------------------------------------------------------------


def test_number_words_to_digits() -> None:
    assert process_digit_article("Two Dogs") == "2 dogs"
    assert process_digit_article("none") == "0"
    assert process_digit_article("zero") == "0"
    assert process_digit_article("ten") == "10"
    assert process_digit_article("eleven") == "eleven"  # only none, zero..ten


def test_articles_dropped_and_case_lowered() -> None:
    assert process_digit_article("The Cat") == "cat"
    assert process_digit_article("a an the dog") == "dog"
    assert process_digit_article("A") == ""
    assert process_digit_article("theater") == "theater"  # whole words only


def test_contractions() -> None:
    assert process_digit_article("dont") == "don't"
    assert process_digit_article("whats up") == "what's up"
    assert process_digit_article("yall'll") == "y'all'll"
    assert process_digit_article("oclock") == "o'clock"
    assert process_digit_article("twas") == "'twas"
    # Official-table quirks: capitalised keys never match lower-cased text ...
    assert process_digit_article("Im") == "im"
    assert process_digit_article("Ive") == "ive"
    # ... and one entry drops the apostrophe.
    assert process_digit_article("somebody'd") == "somebodyd"


def test_whitespace_collapsed_by_split() -> None:
    assert process_digit_article("  big   red  ") == "big red"


def test_normalize_answer_full_chain() -> None:
    assert normalize_answer("\tThe Two  Dogs.\n") == "2 dogs"
    assert normalize_answer("1,000 t-shirts") == "1000 tshirts"


# ------------------------------------------------------------------------------------------
# Accuracy of one question.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "expected"),
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (7, 1.0), (10, 1.0)],
)
def test_partial_credit(k: int, expected: float) -> None:
    # k=1: 9 leave-one-out subsets see 1 match -> (9 * 1/3 + 0) / 10 = 0.3
    # k=2: 8 see 2, 2 see 1 -> (8 * 2/3 + 2 * 1/3) / 10 = 0.6
    # k=3: 7 see 3, 3 see 2 -> (7 * 1 + 3 * 2/3) / 10 = 0.9
    # k=4: 6 see 4, 4 see 3 -> 1.0
    acc = vqa_accuracy("cat", _k_matches(k))
    assert acc == pytest.approx(expected, abs=1e-12)
    assert round(100 * acc, 2) == round(100 * expected, 2)


def test_accuracy_uses_normalisation_when_answers_differ() -> None:
    answers = ["2 dogs"] * 3 + ["dogs"] * 7
    assert vqa_accuracy("Two dogs.", answers) == pytest.approx(0.9)
    assert vqa_accuracy("the DOGS", answers) == 1.0
    assert vqa_accuracy("cats", answers) == 0.0
    # Ground-truth answers are normalised too.
    assert vqa_accuracy("don't know", ["dont know"] * 4 + ["no"] * 6) == 1.0


def test_identical_answers_are_not_normalised() -> None:
    # All ten identical -> exact string comparison (after whitespace cleaning only).
    assert vqa_accuracy("Red", ["red"] * 10) == 0.0
    assert vqa_accuracy("red.", ["red"] * 10) == 0.0
    assert vqa_accuracy("the red", ["red"] * 10) == 0.0
    assert vqa_accuracy("red", ["red"] * 10) == 1.0
    # One differing answer switches normalisation on for all of them.
    assert vqa_accuracy("Red", ["red"] * 9 + ["blue"]) == 1.0
    assert vqa_accuracy("the red.", ["red"] * 9 + ["blue"]) == 1.0


def test_newline_and_tab_become_spaces_then_strip() -> None:
    # Applied always, also when the ground-truth answers are identical.
    assert vqa_accuracy("ice\tcream\n", ["ice cream"] * 10) == 1.0
    assert vqa_accuracy("\nice cream ", ["ice cream"] * 10) == 1.0
    # Two tabs make two spaces, which only normalisation (split/join) collapses.
    assert vqa_accuracy("ice\t\tcream", ["ice cream"] * 10) == 0.0
    assert vqa_accuracy("ice\t\tcream", ["ice cream"] * 9 + ["cake"]) == 1.0
    # Ground-truth answers are cleaned too, before the "all identical" test.
    assert vqa_accuracy("tea", ["tea\n"] * 5 + ["tea"] * 5) == 1.0


def test_vqa_accuracy_rejects_bad_answers() -> None:
    with pytest.raises(ValueError, match="empty"):
        vqa_accuracy("x", [])
    with pytest.raises(TypeError):
        vqa_accuracy("x", "cat")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# evaluate(): aggregation and rounding.
# ------------------------------------------------------------------------------------------


def test_evaluate_aggregates_per_type_and_category(split) -> None:
    qs, anns, preds = split
    m = evaluate(qs, anns, preds)
    assert m["per_question"] == {1: 100.0, 2: 30.0, 3: 60.0}
    assert m["overall"] == 63.33  # 100 * 1.9 / 3 = 63.333...
    assert m["per_question_type"] == {"one": 65.0, "eight": 60.0}
    assert m["per_answer_type"] == {"other": 80.0, "number": 30.0}
    assert m["per_category"] == {"Vehicles and Transportation": 65.0, "Plants and Animals": 60.0}
    assert m["num_questions"] == 3
    assert m["missing"] == 0


def test_evaluate_accepts_paths(tmp_path, split) -> None:
    qs, anns, preds = split
    _write(tmp_path / "p.json", preds)
    # str paths and path-like objects both work.
    m = evaluate(_write(tmp_path / "q.json", qs), _write(tmp_path / "a.json", anns),
                 tmp_path / "p.json")
    assert m == evaluate(qs, anns, preds)


def test_aggregate_rounds_the_unrounded_mean() -> None:
    # Official quirk: answer records equal as a whole (same answer_id) leave each other out.
    dup = {"answer_id": 1, "answer": "cat", "raw_answer": "cat", "answer_confidence": "yes"}
    answers = [dup, dict(dup)] + _answers(*(["x"] * 2 + [f"dog{i}" for i in range(8)]))[2:]
    # The two "cat" records see no other match (0 each); the 8 others see 2 -> 2/3 each:
    # 8 * (2/3) / 10 = 0.5333...  (with distinct ids it would be 0.6)
    qs, anns = _split([(1, "five", "other", answers), (2, "five", "other", _answers(*["z"] * 10))])
    m = evaluate(qs, anns, [{"question_id": 1, "answer": "cat"}, {"question_id": 2, "answer": "y"}])
    assert m["per_question"] == {1: 53.33, 2: 0.0}
    # round(100 * (0.5333.. + 0) / 2, 2) = 26.67, whereas averaging the rounded 53.33 and 0
    # would give 26.665 -> 26.66.
    assert m["overall"] == 26.67
    assert m["per_category"] == {"Cooking and Food": 26.67}


def test_all_categories_named() -> None:
    assert list(CATEGORIES) == [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "other"
    ]
    assert CATEGORIES["one"] == "Vehicles and Transportation"
    assert CATEGORIES["six"] == "Geography, History, Language and Culture"
    assert CATEGORIES["other"] == "Other"


# ------------------------------------------------------------------------------------------
# Missing and unknown predictions.
# ------------------------------------------------------------------------------------------


def test_missing_prediction_is_an_error_by_default(split) -> None:
    qs, anns, preds = split
    with pytest.raises(OKVQAFormatError, match=r"no prediction for 1 of 3 .*missing='zero'"):
        evaluate(qs, anns, preds[:2])


def test_missing_zero_scores_zero_and_counts(split) -> None:
    qs, anns, preds = split
    with pytest.warns(UserWarning, match="1 of 3 questions have no prediction"):
        m = evaluate(qs, anns, preds[:2], missing="zero")
    assert m["missing"] == 1
    assert m["per_question"][3] == 0.0
    assert m["overall"] == 43.33  # 100 * 1.3 / 3
    assert m["per_question_type"] == {"one": 65.0, "eight": 0.0}
    with pytest.raises(ValueError, match="missing"):
        evaluate(qs, anns, preds, missing="skip")  # type: ignore[arg-type]


def test_prediction_for_unknown_question(tmp_path, split) -> None:
    qs, anns, preds = split
    path = _write(tmp_path / "preds.json", preds + [{"question_id": 99, "answer": "x"}])
    with pytest.raises(OKVQAFormatError, match=r"preds\.json.*not in.*99.*train vs val"):
        evaluate(qs, anns, path)


# ------------------------------------------------------------------------------------------
# Malformed files.
# ------------------------------------------------------------------------------------------


def test_malformed_json(tmp_path, split) -> None:
    qs, anns, preds = split
    bad = tmp_path / "mscoco_val2014_annotations.json"
    bad.write_text('{"annotations": [')
    with pytest.raises(OKVQAFormatError, match=r"mscoco_val2014_annotations\.json.*not valid JSON"):
        evaluate(qs, str(bad), preds)
    assert issubclass(OKVQAFormatError, ValueError)


def test_missing_file(tmp_path, split) -> None:
    qs, anns, _ = split
    with pytest.raises(FileNotFoundError, match="nope.json"):
        evaluate(qs, anns, str(tmp_path / "nope.json"))


def test_missing_keys(split) -> None:
    qs, anns, preds = split
    with pytest.raises(OKVQAFormatError, match="no top-level 'questions'"):
        evaluate({"images": []}, anns, preds)
    with pytest.raises(OKVQAFormatError, match=r"prediction #0.*'answer'"):
        evaluate(qs, anns, [{"question_id": 1}])
    del anns["annotations"][1]["answer_type"]
    with pytest.raises(OKVQAFormatError, match=r"annotation #1 \(question_id 2\).*'answer_type'"):
        evaluate(qs, anns, preds)


def test_wrong_number_of_answers(split) -> None:
    qs, anns, preds = split
    anns["annotations"][2]["answers"] = anns["annotations"][2]["answers"][:9]
    with pytest.raises(OKVQAFormatError, match=r"question_id 3\) has 9 answers.*exactly 10"):
        load_annotations(anns)


def test_bad_types(split) -> None:
    qs, anns, preds = split
    with pytest.raises(OKVQAFormatError, match="non-string answer"):
        evaluate(qs, anns, [{"question_id": 1, "answer": 3}])
    with pytest.raises(OKVQAFormatError, match="must be an integer"):
        evaluate(qs, anns, [{"question_id": "1", "answer": "bus"}])
    with pytest.raises(OKVQAFormatError, match="must be a JSON list.*arguments swapped"):
        evaluate(qs, anns, anns)


def test_duplicate_ids(split) -> None:
    qs, anns, preds = split
    with pytest.raises(OKVQAFormatError, match=r"predicted more than once \(1\)"):
        evaluate(qs, anns, preds + [{"question_id": 1, "answer": "car"}])
    dup_anns = {"annotations": anns["annotations"] + [anns["annotations"][0]]}
    with pytest.raises(OKVQAFormatError, match="more than once among the annotations"):
        evaluate(qs, dup_anns, preds)
    dup_qs = {"questions": qs["questions"] + [qs["questions"][2]]}
    with pytest.raises(OKVQAFormatError, match=r"more than once among the questions \(3\)"):
        evaluate(dup_qs, anns, preds)


def test_questions_and_annotations_must_match(split) -> None:
    qs, anns, preds = split
    short = {"questions": qs["questions"][:2]}
    with pytest.raises(OKVQAFormatError, match=r"1 annotation\(s\) have no question \(3\)"):
        evaluate(short, anns, preds)
    qs["questions"][0]["image_id"] = 5
    with pytest.raises(OKVQAFormatError, match="disagree on the image_id"):
        evaluate(qs, anns, preds)


# ------------------------------------------------------------------------------------------
# Writing files and the CLI entry point.
# ------------------------------------------------------------------------------------------


def test_write_results_roundtrip(tmp_path, split) -> None:
    qs, anns, preds = split
    path = write_results(tmp_path / "res" / "results.json", {p["question_id"]: p["answer"]
                                                             for p in preds})
    assert json.loads(path.read_text()) == preds
    assert evaluate(qs, anns, path)["overall"] == 63.33


def test_write_json_atomic_replaces_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    # A failing write leaves the previous file intact and no temporary file behind.
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["m.json"]


def test_run_cli_prints_table_and_writes_metrics(tmp_path, split, capsys) -> None:
    qs, anns, preds = split
    q = _write(tmp_path / "q.json", qs)
    a = _write(tmp_path / "a.json", anns)
    p = _write(tmp_path / "p.json", preds)
    out = tmp_path / "out" / "metrics.json"
    m = run_cli(q, a, p, str(out), "error")
    text = capsys.readouterr().out
    assert "Overall" in text and "63.33" in text
    assert "Vehicles and Transportation" in text and "65.00" in text
    assert "Per answer type" in text and "number" in text
    saved = json.loads(out.read_text())
    assert saved["overall"] == 63.33
    assert saved["per_category"] == m["per_category"]
    assert saved["per_question"] == {"1": 100.0, "2": 30.0, "3": 60.0}
    # Without --out nothing is written.
    run_cli(q, a, p, None, "error")
    assert sorted(os.listdir(tmp_path / "out")) == ["metrics.json"]


def test_import_does_not_pull_torch() -> None:
    code = "import sys, thorgym.eval.okvqa; sys.exit('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
