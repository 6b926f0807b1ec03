"""Thin glue between feedback steps and :func:`rewardlab.llm.jobs.resumable_map`.

Every feedback job passes :func:`job_config` (the LLM, sampling, options and templates its rows
depend on) so a rerun into the same ``out`` with other settings is refused, not silently resumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardlab.feedback.common import Template
from rewardlab.llm.base import backend_identity
from rewardlab.llm.jobs import resumable_map


def _plain(value: Any) -> Any:
    """A JSON-able view: templates by name and content digest, dataclasses as dicts."""
    if isinstance(value, Template):
        text_hash = hashlib.sha256(value.text.encode("utf-8")).hexdigest()[:16]
        return {"name": Path(value.source).name, "sha256": text_hash}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def job_config(job: str, backend: Any, **parts: Any) -> dict[str, Any]:
    """The configuration a feedback job's rows depend on: the job, the LLM's identity
    (:func:`~rewardlab.llm.base.backend_identity`, read without loading the model) and ``parts``
    (config dataclasses, templates, principles...)."""
    return {"job": job, "llm": backend_identity(backend), **{k: _plain(v) for k, v in parts.items()}}


def run_job(
    items: list[Any],
    work: Callable[[list[Any]], list[dict | None]],
    out: str | Path,
    key: Callable[[Any], str],
    batch_size: int,
    desc: str,
    config: dict[str, Any] | None = None,
) -> tuple[list[dict], int]:
    """Run ``work`` over ``items`` resumably into ``out``, under the configuration record ``config``.

    Returns (all rows for ``items``, earlier runs included; the number of rows written now).
    ``work`` returns one row per item, or ``None`` for an item that yields no pair."""
    written = 0

    def counted(batch: list[Any]) -> list[dict | None]:
        nonlocal written
        rows = work(batch)
        written += sum(r is not None for r in rows)
        return rows

    rows = resumable_map(items, counted, out, key, batch_size=batch_size, desc=desc, config=config)
    return rows, written
