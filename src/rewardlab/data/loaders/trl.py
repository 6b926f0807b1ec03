"""TRL-style preference rows (standard or conversational), also RewardBench rows with ``subset``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS


@LOADERS.register("trl")
def convert_trl(rec: Any, where: str, path: Path) -> Any:
    """``{"prompt", "chosen", "rejected", ...}`` rows pass through to validation unchanged."""
    return rec
