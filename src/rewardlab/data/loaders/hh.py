"""Anthropic HH-RLHF transcripts: the shared prefix up to the last ``Assistant:`` is the prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS
from rewardlab.data.schema import DataError

TURN = "\n\nAssistant:"


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two transcripts into (prompt, chosen response, rejected response).

    The prompt is the longest common prefix that ends at an ``Assistant:`` turn marker.
    """
    n = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        n += 1
    cut = chosen.rfind(TURN, 0, n)
    if cut < 0:
        raise ValueError("the transcripts share no 'Assistant:' turn")
    cut += len(TURN)
    return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()


@LOADERS.register("hh")
def convert_hh(rec: Any, where: str, path: Path) -> dict:
    """Rows ``{"chosen": transcript, "rejected": transcript}`` as in Anthropic/hh-rlhf."""
    if not isinstance(rec, dict) or not all(isinstance(rec.get(k), str) for k in ("chosen", "rejected")):
        raise DataError(where, "chosen", "HH rows need text fields 'chosen' and 'rejected'")
    try:
        prompt, c, r = split_transcripts(rec["chosen"], rec["rejected"])
    except ValueError as e:
        raise DataError(where, "chosen", str(e)) from None
    return {"prompt": prompt, "chosen": c, "rejected": r, "source": "hh"}
