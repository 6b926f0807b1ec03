"""The ``--scalarizer NAME`` option shared by score, evaluate and bon."""

from __future__ import annotations

from typing import Any

import typer


def _check(name: str | None) -> str | None:
    from rewardlab.objectives import get_scalarizer

    if name is not None:
        try:
            get_scalarizer(name)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
    return name


def scalarizer_option() -> Any:
    """``--scalarizer NAME``: how a multi-objective model's K rewards become one (checked against
    the registry; default: the model's saved scalarizer)."""
    return typer.Option(
        None,
        "--scalarizer",
        callback=_check,
        help="multi-objective models: weighted_sum | worst_case | soft_min | uncertainty | nash | "
        "lower_quantile (default: the model's saved scalarizer); ignored for one-objective models",
    )
