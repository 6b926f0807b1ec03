"""FeedbackQA (Li et al., Findings of ACL 2022; McGill-NLP/feedbackqa @ 0e37bee): questions about
COVID-19 answered with passages of public-health FAQ pages (WHO, CDC, UK, Australia). Each row is
one (question, answer) with the ratings and free-text feedback of 2 or 3 raters, aligned by index:
``{"question", "passage": {"passage_id", "source", "uri", "reference": {"page_title",
"section_headers", "section_content", ...}}, "feedback": [str], "rating": [str]}``. A question's
rows (its 3 candidate answers) may lie anywhere in the file.

Ratings map to numbers with :data:`RATINGS` (Excellent 4, Acceptable 3, Could be Improved 2, Bad 1).
Rater index ``k`` is the same person on every answer of a question (the file gives no rater ids;
each index keeps one writing style across a question's answers), which the label rule relies on.

**Leak-free rule.** The rater who wrote a critique also rated the answer, so their critique can
state their own rating ("This answer is excellent because ..."). For each question one rater index
``j`` is drawn (:func:`critique_rater`, fixed per question); every answer's critique is rater
``j``'s feedback on it, and everything that defines the pair — whether it is a pair, which side is
chosen, its soft label — comes from the *other* raters ``k != j`` only (:func:`leak_free_label`):
two answers form a pair when the mean of the other raters' ratings differs by at least
:data:`MIN_GAP` (1 rating point; the higher mean is chosen), and
``labels["helpfulness"] = mean_{k != j} [1(x_k > y_k) + 0.5 · 1(x_k = y_k)]``, each remaining
rater comparing the two answers with their own ratings. Pairs whose gap reaches 1 only with rater
``j``'s ratings included are dropped, and :func:`load_feedbackqa` logs how many. ``margin`` is
left unset (the trainer subtracts margins by default); both gaps are in ``metadata``.

The response is the FAQ passage: its section headers (one per line) and its content.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.load import report_dropped
from rewardlab.data.loaders.io import read_records
from rewardlab.data.schema import DataError, PreferencePair
from rewardlab.data.validate import pair_from_row

log = logging.getLogger(__name__)

RATINGS = {"Excellent": 4, "Acceptable": 3, "Could be Improved": 2, "Bad": 1}
MIN_GAP = 1.0  # a pair needs this mean-rating gap among the label raters
SOURCE = "feedbackqa"


@dataclass(frozen=True)
class Answer:
    """One validated (question, answer) row."""

    where: str
    question: str
    passage_id: str
    text: str
    ratings: tuple[int, ...]
    feedback: tuple[str, ...]
    domain: str
    uri: str | None


def answer_text(ref: dict, where: str) -> str:
    """The passage as the answer: section headers (one per line), a blank line, the content."""
    content = ref.get("section_content")
    if not isinstance(content, str) or not content.strip():
        raise DataError(where, "passage.reference.section_content", "is missing, empty or not text")
    headers = ref.get("section_headers", [])
    if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
        raise DataError(where, "passage.reference.section_headers", "must be a list of texts")
    head = "\n".join(h.strip() for h in headers if h.strip())
    return f"{head}\n\n{content.strip()}" if head else content.strip()


def _ratings(rec: dict, where: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    rating, feedback = rec.get("rating"), rec.get("feedback")
    if not isinstance(rating, list) or len(rating) < 2:
        raise DataError(
            where, "rating", "must be a list of at least 2 ratings (one critic + one label rater)"
        )
    if not isinstance(feedback, list) or len(feedback) != len(rating):
        raise DataError(where, "feedback", f"must be a list of {len(rating)} texts, one per rating")
    nums = []
    for k, r in enumerate(rating):
        if r not in RATINGS:
            raise DataError(where, f"rating[{k}]", f"must be one of {list(RATINGS)}, got {r!r}")
        nums.append(RATINGS[r])
    for k, f in enumerate(feedback):
        if not isinstance(f, str) or not f.strip():
            raise DataError(where, f"feedback[{k}]", "is missing, empty or not text")
    return tuple(nums), tuple(f.strip() for f in feedback)


def parse_answer(rec: Any, where: str) -> Answer:
    """Validate one raw row; a :class:`DataError` names ``where`` and the field."""
    if not isinstance(rec, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(rec).__name__}")
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(where, "question", "is missing, empty or not text")
    passage = rec.get("passage")
    if not isinstance(passage, dict):
        raise DataError(where, "passage", "is missing or not an object")
    if not isinstance(passage.get("passage_id"), int | str) or isinstance(passage.get("passage_id"), bool):
        raise DataError(where, "passage.passage_id", "is missing or not an id (int or text)")
    ref = passage.get("reference")
    if not isinstance(ref, dict):
        raise DataError(where, "passage.reference", "is missing or not an object")
    ratings, feedback = _ratings(rec, where)
    return Answer(
        where=where,
        question=question.strip(),
        passage_id=str(passage["passage_id"]),
        text=answer_text(ref, where),
        ratings=ratings,
        feedback=feedback,
        domain=str(passage.get("source", "")),
        uri=passage.get("uri") if isinstance(passage.get("uri"), str) else None,
    )


def critique_rater(question: str, n_raters: int) -> int:
    """The rater index whose feedback is every answer's critique for ``question``: drawn with
    ``random.Random("feedbackqa:" + question)`` (stable across runs and processes)."""
    return random.Random(f"feedbackqa:{question}").randrange(n_raters)


def _mean(xs: Iterable[int]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def leak_free_label(a: tuple[int, ...], b: tuple[int, ...], j: int) -> tuple[float, float]:
    """``(gap, p)`` for answers rated ``a`` and ``b`` (aligned by rater), from raters ``k != j``:
    ``gap = mean_k a_k − mean_k b_k`` and ``p = mean_k [1(a_k > b_k) + 0.5 · 1(a_k = b_k)]``
    (P(a ≻ b)). Rater ``j``'s ratings are never read."""
    rest = [k for k in range(len(a)) if k != j]
    gap = _mean(a[k] for k in rest) - _mean(b[k] for k in rest)
    p = _mean(1.0 if a[k] > b[k] else 0.5 if a[k] == b[k] else 0.0 for k in rest)
    return gap, p


def _row(c: Answer, r: Answer, j: int, gap: float, p: float) -> dict:
    return {
        "prompt": c.question,
        "chosen": c.text,
        "rejected": r.text,
        "source": SOURCE,
        "subset": c.domain or None,
        "labels": {"helpfulness": p},
        "critiques": {"chosen": c.feedback[j], "rejected": r.feedback[j]},
        "metadata": {
            "question": c.question,
            "chosen_passage_id": c.passage_id,
            "rejected_passage_id": r.passage_id,
            "critique_rater": j,
            "label_raters": [k for k in range(len(c.ratings)) if k != j],
            "ratings": {"chosen": list(c.ratings), "rejected": list(r.ratings)},
            "rating_gap": gap,
            "rating_gap_all_raters": _mean(c.ratings) - _mean(r.ratings),
            "chosen_uri": c.uri,
            "rejected_uri": r.uri,
        },
    }


def question_pairs(answers: list[Answer]) -> tuple[list[tuple[str, dict]], Counter]:
    """The pairs ``(where of the chosen answer, TRL-style row)`` among one question's answers, and
    counts: ``pairs``; ``leak_dropped`` (gap ≥ 1 with all raters, < 1 without the critic);
    ``leak_added`` (the reverse); ``identical`` (two answers with the same text: no pair)."""
    n = len(answers[0].ratings)
    for a in answers:
        if len(a.ratings) != n:
            raise DataError(
                a.where, "rating", f"has {len(a.ratings)} raters; this question's other answers have {n}"
            )
    j = critique_rater(answers[0].question, n)
    rows, counts = [], Counter()
    for a, b in itertools.combinations(answers, 2):
        if a.text == b.text:
            counts["identical"] += 1
            continue
        gap, p = leak_free_label(a.ratings, b.ratings, j)
        full = abs(_mean(a.ratings) - _mean(b.ratings)) >= MIN_GAP
        if abs(gap) < MIN_GAP:
            counts["leak_dropped"] += full
            continue
        counts["leak_added"] += not full
        c, r = (a, b) if gap > 0 else (b, a)
        rows.append((c.where, _row(c, r, j, abs(gap), p if gap > 0 else 1.0 - p)))
    counts["pairs"] += len(rows)
    return rows, counts


def _answers(paths: list[Path], on_invalid: str, errors: list[DataError]) -> dict[tuple, list[Answer]]:
    groups: dict[tuple, list[Answer]] = defaultdict(list)
    for path in paths:
        for where, rec in read_records(path):
            try:
                a = parse_answer(rec, where)
            except DataError as e:
                if on_invalid == "raise":
                    raise
                errors.append(e)
                continue
            groups[(str(path), a.question)].append(a)
    return groups


def load_feedbackqa(paths: str | Path | list, on_invalid: str = "raise") -> list[PreferencePair]:
    """Leak-free FeedbackQA pairs (module docstring) from raw ``*_feedback_*.json[.gz]`` files.

    A question's answers are grouped within one file. ``on_invalid="raise"`` stops at the first bad
    row with a ``file:line: field`` :class:`DataError`; ``"drop"`` drops and logs each one (a bad
    answer takes only itself out of its question)."""
    if on_invalid not in ("raise", "drop"):
        raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
    paths = [Path(p) for p in (paths if isinstance(paths, list | tuple) else [paths])]
    errors: list[DataError] = []
    pairs: list[PreferencePair] = []
    totals: Counter = Counter()
    for answers in _answers(paths, on_invalid, errors).values():
        try:
            rows, counts = question_pairs(answers)
            rows = [pair_from_row(row, where) for where, row in rows]
        except DataError as e:
            if on_invalid == "raise":
                raise
            errors.append(e)
            continue
        pairs += rows
        totals += counts
    label = paths[0].parent if len(paths) > 1 else paths[0]
    report_dropped(label, errors, len(pairs))
    log.info(
        "%s: %d leak-free pairs; dropped %d whose gap reaches %g only with the critic's own rating, "
        "gained %d whose gap reaches it without; %d answer pairs with identical text",
        label,
        totals["pairs"],
        totals["leak_dropped"],
        MIN_GAP,
        totals["leak_added"],
        totals["identical"],
    )
    if not pairs:
        raise DataError(str(label), None, "no valid preference pairs")
    return pairs
