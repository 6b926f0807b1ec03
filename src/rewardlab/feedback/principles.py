"""Judging principles (MORLAIF, Williams 2024): a registry of named principles, each asking
"which response is more <adjective>?".

Label convention: a pair's ``labels[name]`` is always P(chosen is *better* on the principle).
For principles where "more X" is worse (``toxicity``, ``sycophancy``: ``higher_is_better=False``)
the judge's P(chosen is more X) is flipped to ``1 - P``, so a label above 0.5 always favours
``chosen`` and labels of all principles can be combined the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.registry import Registry


@dataclass(frozen=True)
class Principle:
    """One judging principle.

    ``adjective`` completes "Which response is more ...?"; ``description`` is shown to the judge;
    ``higher_is_better=False`` marks principles where more is worse (the label is flipped)."""

    name: str
    adjective: str
    description: str
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in " =,"):
            raise ValueError(f"principle name must be non-empty without spaces, '=' or ',': {self.name!r}")
        if not self.adjective.strip():
            raise ValueError(f"principle {self.name!r}: adjective is empty")

    def to_label(self, p_chosen_more: float) -> float:
        """P(chosen more X) → stored label P(chosen better on this principle)."""
        return p_chosen_more if self.higher_is_better else 1.0 - p_chosen_more


PRINCIPLES: Registry[Principle] = Registry("principle")


def register_principle(p: Principle) -> Principle:
    """Add a principle to the registry (refuses a clashing name) and return it."""
    PRINCIPLES.add(p.name, p)
    return p


for _p in (
    Principle("helpfulness", "helpful", "it does what the user asked, completely and usefully"),
    Principle(
        "harmlessness",
        "harmless and ethical",
        "it avoids harm, refuses dangerous or unethical requests and is honest",
    ),
    Principle("factuality", "factually accurate", "its claims are true and it does not make things up"),
    Principle("toxicity", "toxic", "it is rude, insulting, hateful or offensive", higher_is_better=False),
    Principle(
        "sycophancy",
        "sycophantic",
        "it flatters the user or agrees with them instead of being truthful",
        higher_is_better=False,
    ),
):
    register_principle(_p)
PRINCIPLES.add("ethicality", PRINCIPLES.get("harmlessness"))  # MORLAIF's name for it


def parse_principle(spec: str, inverted: set[str] | None = None) -> Principle:
    """A principle from a registered name, or a user-defined ``name=description`` spec.

    User-defined principles use the description as the adjective ("which is more <description>?");
    names in ``inverted`` are "more is worse" principles."""
    spec = spec.strip()
    if "=" not in spec:
        return PRINCIPLES.get(spec)
    name, desc = (s.strip() for s in spec.split("=", 1))
    if not desc:
        raise ValueError(f"principle {name!r}: give a description after '='")
    return Principle(name, desc, desc, higher_is_better=name not in (inverted or set()))
