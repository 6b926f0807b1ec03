"""PandaLM test set: ``{"idx", "instruction", "input", "response1", "response2", "annotator1..3"}``.

Each annotator votes 1 (response1 better), 2 (response2 better) or 0 (tie). A row is a pair when
one response gets a strict majority of *all* votes (≥ 2 of 3); otherwise (all ties, or one vote
each way with ties) it holds no pair. The soft label is the share of votes for the chosen
response, ties counting half: ``p = (n_chosen + 0.5 · n_tie) / n_votes``. The prompt is
``instruction`` plus ``input`` (blank parts left out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS
from rewardlab.data.schema import DataError

VOTES = {0: "tie", 1: "response1", 2: "response2"}


def majority_vote(votes: list[int]) -> tuple[int, float] | None:
    """``(winner, p)`` for votes in {0 tie, 1, 2}: the side with more than half of all votes and
    ``p = (n_winner + 0.5 · n_tie) / n``; ``None`` when no side has a strict majority."""
    n = len(votes)
    for side in (1, 2):
        if 2 * votes.count(side) > n:
            return side, (votes.count(side) + 0.5 * votes.count(0)) / n
    return None


def _response(rec: dict, key: str, where: str) -> str:
    value = rec.get(key)
    if isinstance(value, bool):
        raise DataError(where, key, f"is the JSON boolean {json.dumps(value)}, not a response text")
    if not isinstance(value, str):
        raise DataError(where, key, f"expected text, got {type(value).__name__}")
    if not value.strip():
        raise DataError(where, key, "is empty")
    return value


@LOADERS.register("pandalm")
def convert_pandalm(rec: Any, where: str, path: Path) -> list[dict]:
    """One PandaLM row → ``[]`` (no majority) or one pair with ``labels={"helpfulness": p}``."""
    for key in ("instruction", "input"):
        if not isinstance(rec.get(key), str):
            raise DataError(where, key, "is missing or not text")
    if not (rec["instruction"].strip() or rec["input"].strip()):
        raise DataError(where, "instruction", "is empty (and so is 'input')")
    responses = {1: _response(rec, "response1", where), 2: _response(rec, "response2", where)}
    keys = sorted(k for k in rec if k.startswith("annotator"))
    if not keys:
        raise DataError(where, "annotator1", "is missing (no annotator votes)")
    votes = []
    for k in keys:
        v = rec[k]
        if isinstance(v, bool) or v not in VOTES:
            raise DataError(where, k, f"must be 0 (tie), 1 or 2, got {v!r}")
        votes.append(int(v))
    decided = majority_vote(votes)
    if decided is None:
        return []
    winner, p = decided
    prompt = "\n\n".join(t for t in (rec["instruction"], rec["input"]) if t.strip())
    meta = {k: rec[k] for k in ("idx", "motivation_app", "cmp_key") if k in rec}
    return [
        {
            "prompt": prompt,
            "chosen": responses[winner],
            "rejected": responses[3 - winner],
            "source": "pandalm",
            "labels": {"helpfulness": p},
            "metadata": {**meta, "instruction": rec["instruction"], "votes": votes},
        }
    ]
