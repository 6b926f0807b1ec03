"""Rows to score: ``{"prompt", "response"}``, ``{"prompt", "responses": [...]}`` or preference pairs
(``chosen``/``rejected`` become two rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.data.load import detect_format, load_pairs, report_dropped
from rewardlab.data.loaders.io import read_records
from rewardlab.data.schema import DataError, Prompt
from rewardlab.data.validate import _prompt, _text


@dataclass
class ScoreItem:
    """One response to score, with where it came from."""

    prompt: Prompt
    response: str
    meta: dict[str, Any] = field(default_factory=dict)
    critique: str | None = None


def _response_rows(where: str, rec: Any) -> list[ScoreItem]:
    """The items of one ``{"prompt", "response"}`` or ``{"prompt", "responses": [...]}`` row."""
    if not isinstance(rec, dict):
        raise DataError(where, None, "expected a JSON object")
    if "prompt" not in rec:
        raise DataError(where, "prompt", "is missing")
    prompt = _prompt(rec["prompt"], where)
    if "responses" in rec:
        if not isinstance(rec["responses"], list) or not rec["responses"]:
            raise DataError(where, "responses", "must be a non-empty list of texts")
        texts = [_text(r, where, f"responses[{j}]", allow_empty=True) for j, r in enumerate(rec["responses"])]
    else:
        texts = [_text(rec["response"], where, "response", allow_empty=True)]
    crit = rec.get("critiques") if "responses" in rec else [rec.get("critique")]
    return [
        ScoreItem(
            prompt,
            t,
            {"where": where, "index": j},
            crit[j] if isinstance(crit, list) and j < len(crit) else None,
        )
        for j, t in enumerate(texts)
    ]


def load_responses(path: str | Path, on_invalid: str = "raise") -> list[ScoreItem]:
    """Read responses to score; pairs files yield chosen and rejected rows (``role`` in meta).

    ``on_invalid="drop"`` leaves bad rows out and logs each one (as :func:`load_pairs` does)."""
    path = Path(path)
    if on_invalid not in ("raise", "drop"):
        raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
    where, first = next(iter(read_records(path)))
    if isinstance(first, dict) and ("response" in first or "responses" in first):
        items: list[ScoreItem] = []
        errors: list[DataError] = []
        for where, rec in read_records(path):
            try:
                items.extend(_response_rows(where, rec))
            except DataError as e:
                if on_invalid == "raise":
                    raise
                errors.append(e)
        report_dropped(path, errors, len(items))
        if not items:
            raise DataError(str(path), None, "no valid responses")
        return items
    pairs = load_pairs(path, detect_format(path), on_invalid)
    return [
        ScoreItem(p.prompt, text, {"pair": i, "role": role}, p.critiques.get(role))
        for i, p in enumerate(pairs)
        for role, text in (("chosen", p.chosen), ("rejected", p.rejected))
    ]
