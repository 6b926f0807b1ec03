"""LLMBar: ``{"input", "output_1", "output_2", "label": 1|2}``; the subset is the file's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS
from rewardlab.data.schema import DataError


@LOADERS.register("llmbar")
def convert_llmbar(rec: Any, where: str, path: Path) -> dict:
    """One LLMBar record; ``subset`` = the file stem without the ``LLMBar_`` prefix."""
    if not isinstance(rec, dict):
        raise DataError(where, None, "expected a JSON object")
    for k in ("input", "output_1", "output_2", "label"):
        if k not in rec:
            raise DataError(where, k, "is missing")
    label = rec["label"]
    if label not in (1, 2):
        raise DataError(where, "label", f"must be 1 or 2, got {label!r}")
    good, bad = ("output_1", "output_2") if label == 1 else ("output_2", "output_1")
    subset = Path(path).name.split(".")[0].removeprefix("LLMBar_")
    return {
        "prompt": rec["input"],
        "chosen": rec[good],
        "rejected": rec[bad],
        "subset": subset,
        "source": "llmbar",
    }
