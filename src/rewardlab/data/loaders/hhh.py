"""BIG-bench HHH via prometheus-eval: prompt and response are parsed out of a rubric template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.loaders import LOADERS
from rewardlab.data.schema import DataError

_INSTR = "###The instruction to evaluate:\n"
_RESP = "\n\n###Response to evaluate:\n"
_RUBRIC = "\n\n###Score Rubrics:\n"


def parse_rubric_prompt(text: str) -> tuple[str, str, str]:
    """Return (instruction, response, rubric) from a prometheus-style rubric-wrapped prompt."""
    i, j, k = text.find(_INSTR), text.find(_RESP), text.find(_RUBRIC)
    if min(i, j, k) < 0 or not i < j < k:
        raise ValueError("not a rubric-wrapped prompt (instruction/response/rubric markers missing)")
    rubric_end = text.find("\n\n###Feedback", k)
    rubric = text[k + len(_RUBRIC) : rubric_end if rubric_end > 0 else None].strip()
    return text[i + len(_INSTR) : j].strip(), text[j + len(_RESP) : k].strip(), rubric


@LOADERS.register("hhh")
def convert_hhh(rec: Any, where: str, path: Path) -> dict:
    """Rows ``{"source", "chosen_instruction", "rejected_instruction"}``; subset = ``source``."""
    if not isinstance(rec, dict):
        raise DataError(where, None, "expected a JSON object")
    parsed = []
    for key in ("chosen_instruction", "rejected_instruction"):
        if not isinstance(rec.get(key), str):
            raise DataError(where, key, "is missing or not text")
        try:
            parsed.append(parse_rubric_prompt(rec[key]))
        except ValueError as e:
            raise DataError(where, key, str(e)) from None
    (prompt, chosen, rubric), (_, rejected, _) = parsed
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "subset": rec.get("source"),
        "source": "hhh",
        "metadata": {"rubric": rubric},
    }
