"""OK-VQA scoring: the standard VQA accuracy, reproduced exactly.

This re-implements the official VQA evaluation (``vqaEval.py`` of GT-Vision-Lab/VQA, the version
after the "Fixed processing answers bug" commit), which OK-VQA uses unchanged, including its
quirks:

* Ground-truth answers and the prediction get newlines/tabs replaced by spaces and are stripped.
* Only when the ten (cleaned) ground-truth answers are **not all identical** are the answers and
  the prediction normalised (punctuation, periods, lower case, number words, articles,
  contractions). When they are all identical, the comparison is exact: a prediction ``"Red"``
  scores 0 against ten ``"red"``.
* Punctuation: each mark of ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` is deleted when the
  original text has that mark next to a space, or has a digit-comma-digit anywhere (then *all*
  marks are deleted); otherwise it is replaced by a space. The apostrophe, colon and the like
  are kept.
* Periods: a period is deleted unless a digit follows it ("3.5" stays). The official code passes
  ``re.UNICODE`` (= 32) where ``re.sub`` expects ``count``, so at most 32 periods are deleted.
* Lower-casing, then per word: number words ``none``/``zero``..``ten`` become digits, articles
  ``a``/``an``/``the`` are dropped, and words found in the official contractions table are
  replaced (its keys ``Im``, ``Ive``, ``Id've``, ``I'dve`` are capitalised, so after
  lower-casing they never match; that is kept).
* Accuracy of one question: for each of the ten ground-truth answers, ``min(1, m / 3)`` where
  ``m`` counts the *other* answers equal to the prediction; the mean of those ten. (Like the
  official code, "other" means answer records that differ as whole records, so two identical
  records, same ``answer_id`` included, leave each other out.)
* Aggregates: ``round(100 * sum(acc) / n, 2)`` over the unrounded per-question accuracies;
  per-question values are reported as ``round(100 * acc, 2)``.

Rounding uses Python 3's ``round`` and summation the built-in ``sum`` in annotation order, as
the Python 3 ports of the official code do. Importing this module does not import torch.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from thorgym.kqa.format import (
    CATEGORIES,
    NUM_ANSWERS,
    JSONSource,
    OKVQAFormatError,
    _describe,
    _examples,
    load_annotations,
    load_predictions,
    load_questions,
    write_json_atomic,
    write_results,
)

__all__ = [
    "CATEGORIES",
    "NUM_ANSWERS",
    "OKVQAFormatError",
    "evaluate",
    "format_table",
    "load_annotations",
    "load_predictions",
    "load_questions",
    "normalize_answer",
    "process_digit_article",
    "process_punctuation",
    "run_cli",
    "vqa_accuracy",
    "write_json_atomic",
    "write_results",
]


# --------------------------------------------------------------------------------------------
# Normalisation tables (as in the official evaluation).
# --------------------------------------------------------------------------------------------

_PUNCTUATION: tuple[str, ...] = tuple(';/[]"{}()=+\\_-><@`,?!')

_NUMBER_WORDS: dict[str, str] = {
    word: str(value)
    for value, word in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    )
}
_NUMBER_WORDS["none"] = "0"

_ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# Contractions written without apostrophes (or with them misplaced) -> the spelling the
# annotations use. Same entries as the official table, quirks included: the capitalised keys
# never match lower-cased text, "somebody'd" maps to "somebodyd", and a few map to themselves.
_CONTRACTION_ROWS = """
aint ain't | arent aren't | cant can't | couldve could've | couldnt couldn't
couldn'tve couldn't've | couldnt've couldn't've | didnt didn't | doesnt doesn't | dont don't
hadnt hadn't | hadnt've hadn't've | hadn'tve hadn't've | hasnt hasn't | havent haven't
hed he'd | hed've he'd've | he'dve he'd've | hes he's | howd how'd | howll how'll | hows how's
Id've I'd've | I'dve I'd've | Im I'm | Ive I've | isnt isn't | itd it'd | itd've it'd've
it'dve it'd've | itll it'll | let's let's | maam ma'am | mightnt mightn't
mightnt've mightn't've | mightn'tve mightn't've | mightve might've | mustnt mustn't
mustve must've | neednt needn't | notve not've | oclock o'clock | oughtnt oughtn't
ow's'at 'ow's'at | 'ows'at 'ow's'at | 'ow'sat 'ow's'at | shant shan't | shed've she'd've
she'dve she'd've | she's she's | shouldve should've | shouldnt shouldn't
shouldnt've shouldn't've | shouldn'tve shouldn't've | somebody'd somebodyd
somebodyd've somebody'd've | somebody'dve somebody'd've | somebodyll somebody'll
somebodys somebody's | someoned someone'd | someoned've someone'd've
someone'dve someone'd've | someonell someone'll | someones someone's | somethingd something'd
somethingd've something'd've | something'dve something'd've | somethingll something'll
thats that's | thered there'd | thered've there'd've | there'dve there'd've | therere there're
theres there's | theyd they'd | theyd've they'd've | they'dve they'd've | theyll they'll
theyre they're | theyve they've | twas 'twas | wasnt wasn't | wed've we'd've | we'dve we'd've
weve we've | werent weren't | whatll what'll | whatre what're | whats what's | whatve what've
whens when's | whered where'd | wheres where's | whereve where've | whod who'd
whod've who'd've | who'dve who'd've | wholl who'll | whos who's | whove who've | whyll why'll
whyre why're | whys why's | wont won't | wouldve would've | wouldnt wouldn't
wouldnt've wouldn't've | wouldn'tve wouldn't've | yall y'all | yall'll y'all'll
y'allll y'all'll | yall'd've y'all'd've | y'alld've y'all'd've | y'all'dve y'all'd've
youd you'd | youd've you'd've | you'dve you'd've | youll you'll | youre you're | youve you've
"""
_CONTRACTIONS: dict[str, str] = dict(
    pair.split() for row in _CONTRACTION_ROWS.strip().splitlines() for pair in row.split("|")
)

_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# The official pattern is "(?!<=\d)(\.)(?!\d)"; its first group is a look-*ahead* for the
# literal "<=" + digit (a typo for a look-behind) and never fires before a ".", so what remains
# is: a period not followed by a digit.
_PERIOD = re.compile(r"\.(?!\d)")
_MAX_PERIODS_REMOVED = 32  # the official code passes re.UNICODE (== 32) as re.sub's count


def process_punctuation(text: str) -> str:
    """Apply the official punctuation rule, then period stripping, to ``text``.

    Each punctuation mark is deleted if the *original* text has it next to a space
    (``"mark "`` or ``" mark"``) or contains a digit-comma-digit anywhere; otherwise every
    occurrence of it is replaced by a space. Then periods not followed by a digit are deleted
    (at most 32, as in the official code). Case and whitespace are left alone.
    """
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        if delete_all or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_MAX_PERIODS_REMOVED)


def process_digit_article(text: str) -> str:
    """Lower-case, split on whitespace, map number words to digits, drop articles, expand
    contractions, and re-join with single spaces (the official ``processDigitArticle``)."""
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(word)
    return " ".join(_CONTRACTIONS.get(word, word) for word in words)


def normalize_answer(text: str) -> str:
    """Full normalisation of one answer: whitespace cleaning, punctuation, digits/articles.

    This is what the official code does to an answer when a question's ten ground-truth answers
    are not all identical (when they are, only :func:`_clean_whitespace` applies).
    """
    return process_digit_article(process_punctuation(_clean_whitespace(text)))


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _question_accuracy(prediction: str, records: Sequence[Mapping[str, Any]]) -> float:
    """Official accuracy (0..1) of ``prediction`` against ground-truth answer records.

    ``records`` are answer objects with an ``"answer"`` key; a record leaves out of its
    "other answers" every record equal to it as a whole (the official ``item != gtAnsDatum``).
    """
    gts = [{**r, "answer": _clean_whitespace(r["answer"])} for r in records]
    pred = _clean_whitespace(prediction)
    if len({g["answer"] for g in gts}) > 1:
        for g in gts:
            g["answer"] = process_digit_article(process_punctuation(g["answer"]))
        pred = process_digit_article(process_punctuation(pred))
    accs = []
    for g in gts:
        matches = sum(1 for other in gts if other != g and other["answer"] == pred)
        accs.append(min(1, float(matches) / 3))
    return float(sum(accs)) / len(accs)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy (0..1) of one predicted answer against the ground-truth answers.

    ``answers`` are the ten ground-truth answer strings of the question (any non-empty number
    is accepted; each is treated as a distinct record). With ``k`` ground-truth answers equal to
    the (normalised) prediction the result is ``mean over i of min(1, k_i / 3)``, ``k_i`` being
    the matches among the answers other than the i-th: 0.3 for k=1, 0.6 for k=2, 0.9 for k=3,
    1.0 for k>=4. See the module docstring for the normalisation.
    """
    if isinstance(answers, str):
        raise TypeError("answers must be a list of strings, not a single string")
    if len(answers) == 0:
        raise ValueError("answers is empty; a VQA question has ten ground-truth answers")
    records = [{"answer": a, "answer_id": i} for i, a in enumerate(answers)]
    return _question_accuracy(prediction, records)


def _percent(values: list[float]) -> float:
    return round(100 * float(sum(values)) / len(values), 2)


def evaluate(
    questions: JSONSource,
    annotations: JSONSource,
    predictions: JSONSource,
    *,
    missing: Literal["error", "zero"] = "error",
) -> dict[str, Any]:
    """Score a results file against an OK-VQA split with the official VQA metric.

    Each argument is a path or the already-loaded JSON: the questions file, the annotations
    file, and the results list ``[{"question_id", "answer"}]``.

    Returns a dict with, in percent rounded to 2 decimals:

    * ``"overall"``: mean accuracy over all annotated questions;
    * ``"per_question_type"``: keyed as the annotation file keys ``question_type``
      (``"one"`` ... ``"ten"``, ``"other"``);
    * ``"per_answer_type"``: keyed by ``answer_type``;
    * ``"per_category"``: the same as ``per_question_type`` keyed by category name
      (``"Vehicles and Transportation"``, ...; unknown types keep their key);
    * ``"per_question"``: ``{question_id: accuracy}``;

    plus ``"num_questions"`` and ``"missing"`` (how many questions had no prediction).

    Raises :class:`OKVQAFormatError` for malformed files, questions and annotations that do not
    match, predictions for unknown questions, and, with ``missing="error"`` (the default),
    questions without a prediction. With ``missing="zero"`` those score 0, are counted under
    ``"missing"`` and a warning is issued.
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"missing must be 'error' or 'zero', got {missing!r}")
    qs = load_questions(questions)
    anns = load_annotations(annotations)
    preds = load_predictions(predictions)
    q_name = _describe(questions, "questions")
    a_name = _describe(annotations, "annotations")
    p_name = _describe(predictions, "predictions")
    _check_questions_match(qs, anns, q_name, a_name)

    ann_ids = {a["question_id"] for a in anns}
    unknown = [qid for qid in preds if qid not in ann_ids]
    if unknown:
        raise OKVQAFormatError(
            f"{p_name}: {len(unknown)} prediction(s) are for question_ids that are not in "
            f"{a_name} ({_examples(unknown)}). Fix: evaluate against the split the predictions "
            "were made for (train vs val), or drop those entries."
        )
    absent = [a["question_id"] for a in anns if a["question_id"] not in preds]
    if absent and missing == "error":
        raise OKVQAFormatError(
            f"{p_name}: no prediction for {len(absent)} of {len(anns)} questions "
            f"({_examples(absent)}). Fix: predict every question, or score the missing ones as "
            "0 with missing='zero' (CLI: --missing zero)."
        )
    if absent:
        warnings.warn(
            f"{p_name}: {len(absent)} of {len(anns)} questions have no prediction; "
            "they are scored as 0.",
            stacklevel=2,
        )

    acc_all: list[float] = []
    by_qtype: dict[str, list[float]] = {}
    by_atype: dict[str, list[float]] = {}
    per_question: dict[int, float] = {}
    for ann in anns:
        qid = ann["question_id"]
        acc = _question_accuracy(preds[qid], ann["answers"]) if qid in preds else 0.0
        acc_all.append(acc)
        by_qtype.setdefault(ann["question_type"], []).append(acc)
        by_atype.setdefault(ann["answer_type"], []).append(acc)
        per_question[qid] = round(100 * acc, 2)

    if not acc_all:
        raise OKVQAFormatError(f"{a_name} has no annotations. Fix: pass a non-empty split.")
    per_qtype = {k: _percent(v) for k, v in by_qtype.items()}
    return {
        "overall": _percent(acc_all),
        "per_question_type": per_qtype,
        "per_answer_type": {k: _percent(v) for k, v in by_atype.items()},
        "per_category": {CATEGORIES.get(k, k): v for k, v in per_qtype.items()},
        "per_question": per_question,
        "num_questions": len(acc_all),
        "missing": len(absent),
    }


def _check_questions_match(qs: list[dict], anns: list[dict], q_name: str, a_name: str) -> None:
    q_images = {q["question_id"]: q["image_id"] for q in qs}
    a_images = {a["question_id"]: a["image_id"] for a in anns}
    only_q = [qid for qid in q_images if qid not in a_images]
    only_a = [qid for qid in a_images if qid not in q_images]
    if only_q or only_a:
        parts = []
        if only_q:
            parts.append(f"{len(only_q)} question(s) have no annotation ({_examples(only_q)})")
        if only_a:
            parts.append(f"{len(only_a)} annotation(s) have no question ({_examples(only_a)})")
        raise OKVQAFormatError(
            f"{q_name} and {a_name} do not describe the same questions: {'; '.join(parts)}. "
            "Fix: pass the questions and annotations files of the same split."
        )
    wrong = [qid for qid, img in q_images.items() if a_images[qid] != img]
    if wrong:
        raise OKVQAFormatError(
            f"{q_name} and {a_name} disagree on the image_id of {len(wrong)} question(s) "
            f"({_examples(wrong)}). Fix: pass the questions and annotations files of the same "
            "split."
        )


def format_table(metrics: Mapping[str, Any]) -> str:
    """Render ``evaluate``'s metrics as a readable plain-text table."""
    rows: list[tuple[str, str]] = [("Overall", f"{metrics['overall']:.2f}")]
    lines = []
    width = max(
        [len("Overall")]
        + [len(k) for k in metrics.get("per_category", {})]
        + [len(k) for k in metrics.get("per_answer_type", {})]
    )

    def section(title: str, entries: list[tuple[str, str]]) -> None:
        lines.append(title)
        lines.append("-" * (width + 12))
        for name, value in entries:
            lines.append(f"{name:<{width}}  {value:>8}")
        lines.append("")

    n = metrics.get("num_questions")
    header = "OK-VQA accuracy (%)" + (f" on {n} questions" if n is not None else "")
    if metrics.get("missing"):
        header += f" ({metrics['missing']} without prediction, scored 0)"
    section(header, rows)
    order = {name: i for i, name in enumerate(CATEGORIES.values())}
    cats = sorted(metrics.get("per_category", {}).items(),
                  key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    section("Per category", [(k, f"{v:.2f}") for k, v in cats])
    section("Per answer type",
            [(k, f"{v:.2f}") for k, v in sorted(metrics.get("per_answer_type", {}).items())])
    return "\n".join(lines).rstrip() + "\n"


def run_cli(
    questions: str,
    annotations: str,
    predictions: str,
    out: str | None,
    missing: str,
) -> dict[str, Any]:
    """Evaluate a results file, print a table, and write the metrics JSON to ``out`` if given.

    Backs ``thorgym eval okvqa --questions Q --annotations A --predictions P [--out M]``.
    The metrics file (written atomically) holds everything :func:`evaluate` returns.
    Raises :class:`OKVQAFormatError` (a ``ValueError``) for bad input files and
    ``FileNotFoundError`` for missing ones; the caller turns those into an exit status.
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"--missing must be 'error' or 'zero', got {missing!r}")
    metrics = evaluate(questions, annotations, predictions, missing=missing)  # type: ignore[arg-type]
    print(format_table(metrics), end="")
    if out is not None:
        path = write_json_atomic(out, metrics, indent=2)
        print(f"metrics written to {path}")
    return metrics
