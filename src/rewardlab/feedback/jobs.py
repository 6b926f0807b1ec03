"""Thin glue between feedback steps and :func:`rewardlab.llm.jobs.resumable_map`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardlab.llm.jobs import resumable_map


def run_job(
    items: list[Any],
    work: Callable[[list[Any]], list[dict | None]],
    out: str | Path,
    key: Callable[[Any], str],
    batch_size: int,
    desc: str,
) -> tuple[list[dict], int]:
    """Run ``work`` over ``items`` resumably into ``out``.

    Returns (all rows for ``items``, earlier runs included; the number of rows written now).
    ``work`` returns one row per item, or ``None`` for an item that yields no pair."""
    written = 0

    def counted(batch: list[Any]) -> list[dict | None]:
        nonlocal written
        rows = work(batch)
        written += sum(r is not None for r in rows)
        return rows

    rows = resumable_map(items, counted, out, key, batch_size=batch_size, desc=desc)
    return rows, written
