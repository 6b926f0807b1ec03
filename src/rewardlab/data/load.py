"""Front door for data: ``load_pairs(path)`` with format auto-detection, and JSONL writing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rewardlab.data.loaders import LOADERS
from rewardlab.data.loaders.io import read_records
from rewardlab.data.schema import DataError, PreferencePair
from rewardlab.data.validate import validate_rows

log = logging.getLogger(__name__)


def detect_format(path: Path) -> str:
    """Guess the format from the file name and the first record's keys."""
    path = Path(path)
    if path.name.startswith("LLMBar_"):
        return "llmbar"
    where, first = next(iter(read_records(path)))
    if isinstance(first, dict):
        keys = set(first)
        if {"output_1", "output_2", "label"} <= keys:
            return "llmbar"
        if {"chosen_instruction", "rejected_instruction"} <= keys:
            return "hhh"
        if {"response1", "response2", "annotator1"} <= keys:
            return "pandalm"
        if {"prediction 1", "preference"} <= keys:
            return "qa-feedback"
        if {"reviews", "summaries"} <= keys:
            return "summeval-op"
        if {"chosen", "rejected"} <= keys and "prompt" not in keys:
            if isinstance(first["chosen"], str) and "\n\nAssistant:" in first["chosen"]:
                return "hh"
    return "trl"


def report_dropped(path: str | Path, errors: list[DataError], kept: int) -> None:
    """Log every dropped row (its file:line:field error) and a one-line total."""
    for e in errors:
        log.warning("dropped %s", e)
    if errors:
        log.warning("%s: dropped %d invalid row(s), kept %d", path, len(errors), kept)


def load_pairs(
    path: str | Path, fmt: str = "auto", on_invalid: str = "raise", limit: int | None = None
) -> list[PreferencePair]:
    """Load and validate preference pairs from ``path``.

    ``fmt`` is a registered format (``trl``, ``hh``, ``llmbar``, ``hhh``, ``pandalm``,
    ``qa-feedback``, ``summeval-op``) or ``auto``.
    ``on_invalid="raise"`` (default) stops at the first bad row with a :class:`DataError` naming
    file, line and field; ``"drop"`` leaves bad rows out and logs each one (never silently).
    """
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    errors: list[DataError] = []
    pairs: list[PreferencePair] = []
    conv = LOADERS.get(fmt)
    convert = lambda rec, where: conv(rec, where, path)  # noqa: E731
    for pair in validate_rows(read_records(path), on_invalid, errors, convert):
        pairs.append(pair)
        if limit is not None and len(pairs) >= limit:
            break
    report_dropped(path, errors, len(pairs))
    if not pairs:
        raise DataError(str(path), None, "no valid preference pairs")
    return pairs


def write_pairs(pairs: list[PreferencePair], path: str | Path) -> None:
    """Write pairs as TRL-style JSONL (valid input for ``rewardlab train``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
