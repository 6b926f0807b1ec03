"""Shared CLI helpers: data specs (file or bundled set name), clean error exits, tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from rewardlab.data.bundled import BUNDLED_NAMES
from rewardlab.data.schema import DataError, PreferencePair

BUNDLED = BUNDLED_NAMES  # every bundled set name usable as --data NAME
console = Console(stderr=True)


class OnInvalid(str, Enum):
    """What to do with a row that fails validation."""

    RAISE = "raise"  # stop with a file:line:field error (exit code 2)
    DROP = "drop"  # leave it out and log each dropped row with its error


def _check_on_invalid(value: str) -> str:
    try:
        return OnInvalid(value).value
    except ValueError:
        raise typer.BadParameter(f"choose one of {[m.value for m in OnInvalid]}, got {value!r}") from None


def on_invalid_option() -> Any:
    """The ``--on-invalid raise|drop`` option shared by every command that reads pairs (a ``str``
    parameter checked against :class:`OnInvalid`)."""
    return typer.Option(
        OnInvalid.RAISE.value,
        "--on-invalid",
        callback=_check_on_invalid,
        help="raise | drop (drop logs every bad row with file:line:field)",
    )


def read_pairs(spec: str | Path, fmt: str = "auto", on_invalid: str = "raise") -> list[PreferencePair]:
    """Pairs from a file, or from a bundled set name (``hh-train``, ``pandalm-test``, ``llmbar``...;
    all in :data:`rewardlab.data.bundled.BUNDLED_NAMES`).

    ``on_invalid`` (``raise`` | ``drop``) applies to files; bundled sets always drop-and-log."""
    from rewardlab.data.bundled import bundled_set
    from rewardlab.data.load import load_pairs

    if str(spec) in BUNDLED and not Path(spec).exists():
        return bundled_set(str(spec))
    return load_pairs(spec, fmt, OnInvalid(on_invalid).value)


def clean_errors(fn: Callable) -> Callable:
    """Turn data and config errors into a one-line message and exit code 2 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DataError, FileNotFoundError) as e:
            console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def print_json(obj: Any) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, indent=None, default=float) + "\n")


def results_table(title: str, rows: dict[str, dict], columns: list[str]) -> Table:
    """A rich table: one row per set, metrics as percentages where they are accuracies."""
    table = Table(title=title)
    table.add_column("set")
    for c in columns:
        table.add_column(c, justify="right")
    for name, m in rows.items():
        cells = []
        for c in columns:
            v = m.get(c)
            cells.append(
                ""
                if v is None
                else f"{v:.0f}"
                if c == "n"
                else f"{100 * v:.1f}"
                if "acc" in c
                else f"{v:.3f}"
            )
        table.add_row(name, *cells)
    return table
