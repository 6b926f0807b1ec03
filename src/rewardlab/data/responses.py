"""Rows to score: ``{"prompt", "response"}``, ``{"prompt", "responses": [...]}`` or preference pairs
(``chosen``/``rejected`` become two rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.data.load import detect_format, load_pairs
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


def load_responses(path: str | Path) -> list[ScoreItem]:
    """Read responses to score; pairs files yield chosen and rejected rows (``role`` in meta)."""
    path = Path(path)
    records = read_records(path)
    where, first = next(iter(records))
    if isinstance(first, dict) and ("response" in first or "responses" in first):
        items: list[ScoreItem] = []
        for where, rec in read_records(path):
            if not isinstance(rec, dict):
                raise DataError(where, None, "expected a JSON object")
            if "prompt" not in rec:
                raise DataError(where, "prompt", "is missing")
            prompt = _prompt(rec["prompt"], where)
            if "responses" in rec:
                if not isinstance(rec["responses"], list) or not rec["responses"]:
                    raise DataError(where, "responses", "must be a non-empty list of texts")
                texts = [
                    _text(r, where, f"responses[{j}]", allow_empty=True)
                    for j, r in enumerate(rec["responses"])
                ]
            else:
                texts = [_text(rec["response"], where, "response", allow_empty=True)]
            crit = rec.get("critiques") if "responses" in rec else [rec.get("critique")]
            for j, t in enumerate(texts):
                c = crit[j] if isinstance(crit, list) and j < len(crit) else None
                items.append(ScoreItem(prompt, t, {"where": where, "index": j}, c))
        return items
    pairs = load_pairs(path, detect_format(path))
    return [
        ScoreItem(p.prompt, text, {"pair": i, "role": role}, p.critiques.get(role))
        for i, p in enumerate(pairs)
        for role, text in (("chosen", p.chosen), ("rejected", p.rejected))
    ]
