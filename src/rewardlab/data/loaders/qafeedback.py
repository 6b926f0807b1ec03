"""qa-feedback (FineGrainedRLHF, ASQA long-form QA): one question, its grounding passages, four
sampled answers ``prediction 1..4`` and six human pairwise preferences in the order
1v2, 1v3, 1v4, 2v3, 2v4, 3v4 (1 = first better, 2 = second better, 0 = no preference).

Each decisive preference between two different answers is a pair; 0 and identical answers are no
pair. One annotator judged each comparison, so ``labels={"helpfulness": 1.0}``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS
from rewardlab.data.schema import DataError

ORDER = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
INSTRUCTION = "Answer the question in a few sentences, using the passages below."


def parse_passages(value: Any, where: str) -> list[list[str]]:
    """Passages ``[[title, sentence, ...], ...]``, given as a list or as a JSON / Python-literal
    string (parsed with ``json`` or ``ast.literal_eval``, never ``eval``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
                raise DataError(where, "passages", f"is a string that is not a list literal ({e})") from None
    if not isinstance(value, list):
        raise DataError(where, "passages", f"expected a list of passages, got {type(value).__name__}")
    for i, p in enumerate(value):
        if not isinstance(p, list | tuple) or not p or not all(isinstance(s, str) for s in p):
            raise DataError(where, f"passages[{i}]", "expected [title, sentence, ...] (texts)")
    return [list(p) for p in value]


def format_prompt(question: str, passages: list[list[str]]) -> str:
    """The instruction, the question, then each passage as ``Passage k — title`` and its text."""
    parts = [INSTRUCTION, f"Question: {question.strip()}"]
    for k, (title, *sentences) in enumerate(passages, 1):
        text = " ".join(s.strip() for s in sentences)
        text = text.removeprefix(title).strip()  # the first sentence repeats the title
        parts.append(f"Passage {k} — {title}\n{text}")
    return "\n\n".join(parts)


def _predictions(rec: dict, where: str) -> dict[int, str]:
    out = {}
    for i in range(1, 5):
        key = f"prediction {i}"
        value = rec.get(key)
        if not isinstance(value, str):
            raise DataError(where, key, "is missing or not text")
        if not value.strip():
            raise DataError(where, key, "is empty")
        out[i] = value
    return out


@LOADERS.register("qa-feedback")
def convert_qa_feedback(rec: Any, where: str, path: Path) -> list[dict]:
    """One question → its decisive pairs (0 to 6)."""
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(where, "question", "is missing, empty or not text")
    prompt = format_prompt(question, parse_passages(rec.get("passages", []), where))
    preds = _predictions(rec, where)
    pref = rec.get("preference")
    if not isinstance(pref, list) or len(pref) != len(ORDER):
        raise DataError(where, "preference", "must be a list of 6 ints (1v2, 1v3, 1v4, 2v3, 2v4, 3v4)")
    rows = []
    for k, ((a, b), v) in enumerate(zip(ORDER, pref, strict=True)):
        if isinstance(v, bool) or v not in (0, 1, 2):
            raise DataError(where, f"preference[{k}]", f"must be 0 (none), 1 or 2, got {v!r}")
        if v == 0 or preds[a].strip() == preds[b].strip():
            continue
        c, r = (a, b) if v == 1 else (b, a)
        rows.append(
            {
                "prompt": prompt,
                "chosen": preds[c],
                "rejected": preds[r],
                "source": "qa-feedback",
                "labels": {"helpfulness": 1.0},
                "metadata": {"question": question, "chosen_prediction": c, "rejected_prediction": r},
            }
        )
    return rows
