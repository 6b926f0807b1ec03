"""Quality-aspect sets for RMBoost (a registry) and the better/worse directions.

RMBoost (Shen et al. 2024) asks the LLM to rewrite a response so that it is better or worse in a
random subset of a domain's quality aspects. The sets are open: register your own with
``ASPECT_SETS.add(name, {aspect: description})``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.registry import Registry

ASPECT_SETS: Registry[dict[str, str]] = Registry("aspect set")
ASPECT_SETS.add(
    "general",
    {
        "helpfulness": "how well it addresses what the user needs",
        "relevance": "how closely it sticks to the user's request",
        "completeness": "how fully it covers what the user asked for",
    },
)
ASPECT_SETS.add(
    "summary",
    {
        "coherence": "how well the summary reads as a logical, connected whole",
        "accuracy": "how faithfully it states only what the source says",
        "coverage": "how many of the source's key points it includes",
    },
)
ASPECT_SETS.add(
    "safety",
    {
        "harmlessness": "how well it avoids helping with harmful or dangerous requests",
        "honesty": "how truthful it is, without made-up claims",
        "helpfulness": "how well it addresses what the user needs within safe bounds",
    },
)


@dataclass(frozen=True)
class Direction:
    """Whether y2 must be better or worse than y1, and how to say it to the generator."""

    name: str
    comparative: str
    guidance: str
    y2_is_chosen: bool


DIRECTIONS: Registry[Direction] = Registry("RMBoost direction")
DIRECTIONS.add(
    "better",
    Direction(
        "better",
        "clearly better",
        "Fix the draft's mistakes and gaps; keep what it does well.",
        y2_is_chosen=True,
    ),
)
DIRECTIONS.add(
    "worse",
    Direction(
        "worse",
        "noticeably worse",
        "Make it plausible but flawed: less accurate, less relevant or less complete. "
        "Do not mention that it is worse.",
        y2_is_chosen=False,
    ),
)


def describe_aspects(aspects: dict[str, str], names: list[str]) -> str:
    """ "helpfulness (how well ...) and relevance (...)" for the prompt."""
    parts = [f"{n} ({aspects[n]})" if aspects.get(n) else n for n in names]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
