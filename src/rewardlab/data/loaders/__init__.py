"""Format converters: each turns one raw record into a TRL-style row; reading and validation are
shared (``rewardlab.data.load``), so any per-row error can be raised or dropped-and-reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardlab.registry import Registry

Converter = Callable[[Any, str, Path], Any]
"""``convert(record, where, path) -> TRL-style row dict`` or a list of them (a record holding several
pairs, or none); raise ``DataError`` naming the record's field on bad records."""

LOADERS: Registry[Converter] = Registry("data format")

from rewardlab.data.loaders import hh, hhh, llmbar, pandalm, qafeedback, summeval, trl  # noqa: E402,F401,I001

__all__ = ["LOADERS", "Converter"]
