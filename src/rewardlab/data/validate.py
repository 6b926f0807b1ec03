"""Turn raw rows into validated :class:`PreferencePair` s, with errors that name file, line, field."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rewardlab.data.schema import DataError, Message, PreferencePair, Prompt

ROLES = {"system", "user", "assistant", "tool"}


def _text(value: Any, where: str, name: str, *, allow_empty: bool = False) -> str:
    """A response given as text or as chat messages (the assistant turns' content is the response)."""
    if isinstance(value, list):
        msgs = _messages(value, where, name)
        if msgs and not any(m["role"] == "assistant" for m in msgs):
            raise DataError(where, name, "the chat messages hold no assistant turn (the response)")
        value = "\n".join(m["content"] for m in msgs if m["role"] == "assistant")
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


KNOWN_KEYS = ("prompt", "chosen", "rejected", "margin", "subset", "source", "labels", "critiques", "metadata")
CRITIQUE_KEYS = ("chosen", "rejected")


def _implicit_prompt(row: dict, where: str) -> tuple[Prompt, Any, Any]:
    """TRL's implicit-prompt conversational rows: ``chosen`` and ``rejected`` are whole conversations
    sharing every message but the last, which is each side's assistant response."""
    chosen, rejected = row["chosen"], row["rejected"]
    if not isinstance(rejected, list):
        raise DataError(
            where,
            "rejected",
            "must be chat messages too when 'chosen' is a conversation and 'prompt' is absent",
        )
    prompt = _messages(chosen[:-1], where, "chosen")
    if _messages(rejected[:-1], where, "rejected") != prompt:
        raise DataError(
            where, "rejected", "its conversation before the last message differs from 'chosen''s (the prompt)"
        )
    for name, conv in (("chosen", chosen), ("rejected", rejected)):
        last = _messages(conv[-1:], where, name)
        if not last or last[0]["role"] != "assistant":
            got = last[0]["role"] if last else "nothing"
            raise DataError(
                where, f"{name}[-1].role", f"the last message must be the assistant's, got {got!r}"
            )
    return prompt, chosen[-1:], rejected[-1:]


def _labels(row: dict, where: str) -> dict[str, float]:
    labels = row.get("labels") or {}
    if not isinstance(labels, dict):
        raise DataError(where, "labels", "must be an object {principle: probability}")
    out = {}
    for k, v in labels.items():
        p = _number(v, where, f"labels.{k}")
        if not 0.0 <= p <= 1.0:
            raise DataError(where, f"labels.{k}", f"must lie in [0, 1], got {p}")
        out[k] = p
    return out


def _critiques(row: dict, where: str) -> dict[str, str]:
    critiques = row.get("critiques") or {}
    if not isinstance(critiques, dict):
        raise DataError(where, "critiques", "must be an object {'chosen': text, 'rejected': text}")
    for k in critiques:
        if k not in CRITIQUE_KEYS:
            raise DataError(where, f"critiques.{k}", "unknown key; only 'chosen' and 'rejected' are allowed")
    return {k: _text(v, where, f"critiques.{k}", allow_empty=True) for k, v in critiques.items()}


def _metadata(row: dict, where: str) -> dict[str, Any]:
    """``metadata`` plus every unknown top-level key, kept verbatim (never silently dropped)."""
    meta = row.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise DataError(where, "metadata", f"must be an object, got {type(meta).__name__}")
    meta = dict(meta)
    for k, v in row.items():
        if k in KNOWN_KEYS:
            continue
        if k in meta:
            raise DataError(
                where, k, "is an unknown key that would be kept in metadata, which already has it"
            )
        meta[k] = v
    return meta


def pair_from_row(row: Any, where: str) -> PreferencePair:
    """Validate one TRL-style row (standard or conversational) into a :class:`PreferencePair`.

    Required: ``chosen``, ``rejected``; ``prompt`` may be absent only for conversational rows
    whose two conversations share the prompt (all messages but the last). Optional: ``margin``,
    ``subset``, ``source``, ``labels``, ``critiques`` (keys ``chosen``/``rejected``),
    ``metadata`` (an object). Any other top-level key is kept verbatim in ``metadata``.
    """
    if not isinstance(row, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(row).__name__}")
    for key in ("chosen", "rejected"):
        if key not in row:
            raise DataError(where, key, "is missing")
    chosen_raw, rejected_raw = row["chosen"], row["rejected"]
    if "prompt" in row:
        prompt = _prompt(row["prompt"], where)
    elif isinstance(chosen_raw, list) and len(chosen_raw) > 1:
        prompt, chosen_raw, rejected_raw = _implicit_prompt(row, where)
    else:
        raise DataError(where, "prompt", "is missing")
    chosen = _text(chosen_raw, where, "chosen")
    rejected = _text(rejected_raw, where, "rejected")
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
    pair.labels = _labels(row, where)
    pair.critiques = _critiques(row, where)
    pair.metadata = _metadata(row, where)
    return pair


def validate_rows(
    rows: Iterable[tuple[str, Any]],
    on_invalid: str = "raise",
    errors: list[DataError] | None = None,
    convert: Callable[[Any, str], Any] | None = None,
) -> Iterator[PreferencePair]:
    """Validate ``(where, record)`` items, converting each with ``convert(record, where)`` first.

    A raw record must be an object. A converter returns one row, or a list of rows when one
    record holds several pairs (an empty list: the record holds no pair, e.g. an annotator tie).
    ``on_invalid="raise"`` stops at the first bad row; ``"drop"`` leaves it out and appends the
    error to ``errors`` so the caller reports it."""
    if on_invalid not in ("raise", "drop"):
        raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
    for where, rec in rows:
        try:
            if not isinstance(rec, dict):
                raise DataError(where, None, f"expected a JSON object, got {type(rec).__name__}")
            row = convert(rec, where) if convert else rec
        except DataError as e:
            if on_invalid == "raise" or errors is None:
                raise
            errors.append(e)
            continue
        for r in row if isinstance(row, list) else [row]:
            try:
                yield pair_from_row(r, where)
            except DataError as e:
                if on_invalid == "raise" or errors is None:
                    raise
                errors.append(e)
