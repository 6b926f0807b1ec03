"""Turn raw rows into validated :class:`PreferencePair` s, with errors that name file, line, field."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rewardlab.data.schema import DataError, Message, PreferencePair, Prompt

ROLES = {"system", "user", "assistant", "tool"}


def _text(value: Any, where: str, name: str, *, allow_empty: bool = False) -> str:
    """A response given as text or as chat messages (the assistant's content is the response)."""
    if isinstance(value, list):
        msgs = _messages(value, where, name)
        value = "\n".join(m["content"] for m in msgs if m["role"] == "assistant")
        if not value and msgs:
            value = msgs[-1]["content"]
    if not isinstance(value, str):
        raise DataError(where, name, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(where, name, "is empty")
    return value


def _messages(value: list, where: str, name: str) -> list[Message]:
    out: list[Message] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise DataError(where, f"{name}[{i}]", "a chat message must be an object")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise DataError(where, f"{name}[{i}].role", f"must be one of {sorted(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise DataError(where, f"{name}[{i}].content", "must be text")
        out.append({"role": role, "content": content})
    return out


def _prompt(value: Any, where: str) -> Prompt:
    if isinstance(value, list):
        if not value:
            raise DataError(where, "prompt", "is an empty message list")
        return _messages(value, where, "prompt")
    if not isinstance(value, str):
        raise DataError(where, "prompt", f"expected text or chat messages, got {type(value).__name__}")
    return value


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(where, name, f"must be a finite number, got {value!r}")
    return float(value)


def pair_from_row(row: Any, where: str) -> PreferencePair:
    """Validate one TRL-style row (standard or conversational) into a :class:`PreferencePair`.

    Required: ``chosen``, ``rejected``; ``prompt`` may be absent only for conversational rows whose
    messages carry it. Optional: ``margin``, ``subset``, ``source``, ``labels``, ``critiques``.
    """
    if not isinstance(row, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(row).__name__}")
    for key in ("chosen", "rejected"):
        if key not in row:
            raise DataError(where, key, "is missing")
    prompt: Prompt = ""
    if "prompt" in row:
        prompt = _prompt(row["prompt"], where)
    elif isinstance(row["chosen"], list) and len(row["chosen"]) > 1:
        prompt = _messages(row["chosen"][:-1], where, "chosen")
        row = {**row, "chosen": row["chosen"][-1:], "rejected": row["rejected"][-1:]}
    else:
        raise DataError(where, "prompt", "is missing")
    chosen = _text(row["chosen"], where, "chosen")
    rejected = _text(row["rejected"], where, "rejected")
    if chosen.strip() == rejected.strip():
        raise DataError(where, "rejected", "is identical to 'chosen' (the pair carries no preference)")
    pair = PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected)
    if row.get("margin") is not None:
        pair.margin = _number(row["margin"], where, "margin")
    for key in ("subset", "source"):
        if row.get(key) is not None:
            if not isinstance(row[key], str):
                raise DataError(where, key, f"must be text, got {type(row[key]).__name__}")
            setattr(pair, key, row[key])
    labels = row.get("labels") or {}
    if not isinstance(labels, dict):
        raise DataError(where, "labels", "must be an object {principle: probability}")
    for k, v in labels.items():
        p = _number(v, where, f"labels.{k}")
        if not 0.0 <= p <= 1.0:
            raise DataError(where, f"labels.{k}", f"must lie in [0, 1], got {p}")
        pair.labels[k] = p
    critiques = row.get("critiques") or {}
    if not isinstance(critiques, dict):
        raise DataError(where, "critiques", "must be an object {'chosen': text, 'rejected': text}")
    for k, v in critiques.items():
        pair.critiques[k] = _text(v, where, f"critiques.{k}", allow_empty=True)
    if isinstance(row.get("metadata"), dict):
        pair.metadata = dict(row["metadata"])
    return pair


def validate_rows(
    rows: Iterable[tuple[str, Any]],
    on_invalid: str = "raise",
    errors: list[DataError] | None = None,
    convert: Callable[[Any, str], Any] | None = None,
) -> Iterator[PreferencePair]:
    """Validate ``(where, record)`` items, converting each with ``convert(record, where)`` first.

    ``on_invalid="raise"`` stops at the first bad row; ``"drop"`` leaves it out and appends the
    error to ``errors`` so the caller reports it."""
    if on_invalid not in ("raise", "drop"):
        raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
    for where, rec in rows:
        try:
            row = convert(rec, where) if convert else rec
            yield pair_from_row(row, where)
        except DataError as e:
            if on_invalid == "raise" or errors is None:
                raise
            errors.append(e)
