"""SummEval-OP (per-annotator file ``summeval-op-detailed.jsonl``): one product per line with its
8 reviews, 13 opinion summaries and, per aspect, each summary's 3 annotator ratings (1–5).

Pairs within a product (rules also in ``bundled/DATA_CARD.md``):

- ``overall(s)`` = mean rating of summary ``s`` over the 7 aspects and the annotators; two
  summaries whose overall gap is below :data:`TIE_GAP` are no pair; otherwise the higher one is
  ``chosen``.
- soft label per aspect ``a``: ``P = mean_j [1(x_j > y_j) + 0.5 · 1(x_j = y_j)]`` over annotators
  ``j`` (each compares the two summaries with their own ratings); ``labels["overall"]`` uses the
  same rule on each annotator's mean over aspects.
- ``margin`` stays ``None`` (a rating gap is not a reward-scale margin); the gap and both means
  are kept in ``metadata``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS
from rewardlab.data.schema import DataError

ASPECTS = {
    "fl": "fluency",
    "co": "coherence",
    "re": "relevance",
    "fa": "faithfulness",
    "ac": "aspect_coverage",
    "sc": "sentiment_consistency",
    "sp": "specificity",
}
# the order of the summaries in every line (the systems' names come from summeval-op.jsonl)
SYSTEMS = (
    "human-summaries",
    "vicuna-7b-v1.5",
    "Mistral-7B-Instruct-v0.2",
    "vicuna-13b-v1.5",
    "Llama-2-13b-chat-hf",
    "chatgpt-3.5-turbo",
    "zephyr-7b-beta",
    "plansum",
    "gpt-4",
    "Llama-2-7b-chat-hf",
    "ls-sum-g",
    "Multimodalsum",
    "SOLAR-10.7B-Instruct-v1.0",
)
TIE_GAP = 0.25
INSTRUCTION = "Write a short summary of the opinions in these {n} customer reviews of one product."


def preference_share(x: list[float], y: list[float]) -> float:
    """``mean_j [1(x_j > y_j) + 0.5 · 1(x_j = y_j)]``: the share of annotators preferring x."""
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(x, y, strict=True)) / len(x)


def _texts(rec: dict, key: str, where: str) -> list[str]:
    value = rec.get(key)
    if not isinstance(value, list) or not value:
        raise DataError(where, key, "must be a non-empty list of texts")
    for i, t in enumerate(value):
        if not isinstance(t, str) or not t.strip():
            raise DataError(where, f"{key}[{i}]", "must be a non-empty text")
    return value


def _ratings(rec: dict, n: int, where: str) -> dict[str, list[list[int]]]:
    """``{aspect: [summary][annotator] rating}``, every rating an int 1–5, equal annotator counts."""
    out: dict[str, list[list[int]]] = {}
    k = None
    for key, aspect in ASPECTS.items():
        table = rec.get(key)
        if not isinstance(table, list) or len(table) != n:
            raise DataError(where, key, f"must hold one list of annotator ratings per summary ({n})")
        for i, row in enumerate(table):
            k = len(row) if k is None and isinstance(row, list) else k
            if not isinstance(row, list) or not row or len(row) != k:
                raise DataError(where, f"{key}[{i}]", f"must be a list of {k} annotator ratings")
            for j, v in enumerate(row):
                if isinstance(v, bool) or v not in (1, 2, 3, 4, 5):
                    raise DataError(where, f"{key}[{i}][{j}]", f"must be an integer rating 1-5, got {v!r}")
        out[aspect] = table
    return out


def _pair_row(i: int, j: int, ctx: dict) -> dict:
    """The row for summaries ``i`` (chosen) and ``j`` (rejected) of one product."""
    ratings, per_annotator, overall = ctx["ratings"], ctx["per_annotator"], ctx["overall"]
    labels = {a: preference_share(ratings[a][i], ratings[a][j]) for a in ASPECTS.values()}
    labels["overall"] = preference_share(per_annotator[i], per_annotator[j])
    names = ctx["systems"]
    return {
        "prompt": ctx["prompt"],
        "chosen": ctx["summaries"][i],
        "rejected": ctx["summaries"][j],
        "source": "summeval-op",
        "labels": labels,
        "metadata": {
            "product": ctx["product"],
            "chosen_system": names[i],
            "rejected_system": names[j],
            "rating_gap": round(overall[i] - overall[j], 4),
            "ratings": {"chosen": round(overall[i], 4), "rejected": round(overall[j], 4)},
            "reviews": ctx["reviews"],
        },
    }


@LOADERS.register("summeval-op")
def convert_summeval(rec: Any, where: str, path: Path) -> list[dict]:
    """One product → its pairs (summaries whose overall mean ratings differ by ≥ ``TIE_GAP``)."""
    if isinstance(rec.get("summaries"), dict):
        raise DataError(
            where, "summaries", "has only mean ratings; use summeval-op-detailed.jsonl (per-annotator)"
        )
    reviews, summaries = _texts(rec, "reviews", where), _texts(rec, "summaries", where)
    n = len(summaries)
    ratings = _ratings(rec, n, where)
    n_ann = len(ratings["fluency"][0])
    per_annotator = [
        [sum(ratings[a][s][j] for a in ASPECTS.values()) / len(ASPECTS) for j in range(n_ann)]
        for s in range(n)
    ]
    overall = [sum(x) / n_ann for x in per_annotator]
    ctx = {
        "prompt": INSTRUCTION.format(n=len(reviews))
        + "".join(f"\n\nReview {k}: {r.strip()}" for k, r in enumerate(reviews, 1)),
        "product": hashlib.sha1("\n".join(reviews).encode()).hexdigest()[:12],
        "systems": SYSTEMS if n == len(SYSTEMS) else [f"summary {s}" for s in range(n)],
        **{"reviews": reviews, "summaries": summaries, "ratings": ratings},
        **{"per_annotator": per_annotator, "overall": overall},
    }
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            if abs(overall[i] - overall[j]) < TIE_GAP or summaries[i].strip() == summaries[j].strip():
                continue
            rows.append(_pair_row(i, j, ctx) if overall[i] > overall[j] else _pair_row(j, i, ctx))
    return rows
