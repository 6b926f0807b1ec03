"""Quality control for generated critiques: a registry of named checks and their counts.

Each check is ``check(text, ctx) -> bool`` (True = the critique has this problem). Built-ins:

- ``empty``: fewer than ``ctx.min_chars`` non-space characters;
- ``truncated``: generation stopped at ``max_new_tokens`` (exact when the backend can count
  tokens, else a length estimate) without ending a sentence;
- ``refusal``: the critic refused ("I'm sorry, but I can't...");
- ``template_echo``: the critic repeated the instructions of its template instead of reviewing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rewardlab.feedback.common import Template
from rewardlab.registry import Registry


@dataclass
class QCContext:
    """What the checks need to know about how a critique was produced."""

    template: Template
    max_new_tokens: int
    count_tokens: Callable[[str], int] | None = None  # exact token counter, if the backend has one
    min_chars: int = 10

    def n_tokens(self, text: str) -> int:
        """Tokens in ``text``: exact when a counter is known, else ≈ 1 token per 4 characters."""
        if self.count_tokens is not None:
            return self.count_tokens(text)
        return max(len(text) // 4, len(text.split()))


Check = Callable[[str, QCContext], bool]
QC_CHECKS: Registry[Check] = Registry("critique QC check")

_REFUSAL = re.compile(
    r"\b(i(?:'m| am) sorry|i apologi[sz]e|i can(?:no|')t (?:help|assist|provide|do|review|comply)|"
    r"i(?:'m| am) (?:not able|unable) to|as an ai(?: language model)?|i won't be able)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?)\]\"'*`:]\s*$")


@QC_CHECKS.register("empty")
def is_empty(text: str, ctx: QCContext) -> bool:
    """Nothing (or almost nothing) was written."""
    return len(text.strip()) < ctx.min_chars


@QC_CHECKS.register("truncated")
def is_truncated(text: str, ctx: QCContext) -> bool:
    """The generation ran into the token limit mid-sentence."""
    if not text.strip() or _SENTENCE_END.search(text):
        return False
    slack = 2 if ctx.count_tokens is not None else max(4, ctx.max_new_tokens // 4)
    return ctx.n_tokens(text) >= ctx.max_new_tokens - slack


@QC_CHECKS.register("refusal")
def is_refusal(text: str, ctx: QCContext) -> bool:
    """The critic refused within its opening sentences."""
    return bool(_REFUSAL.search(text[:200]))


@QC_CHECKS.register("template_echo")
def is_template_echo(text: str, ctx: QCContext) -> bool:
    """Half or more of the template's instruction lines reappear verbatim in the critique."""
    lines = ctx.template.static_lines()
    if not lines:
        return False
    norm = " ".join(text.lower().split())
    hits = sum(" ".join(ln.lower().split()) in norm for ln in lines)
    return hits >= max(1, (len(lines) + 1) // 2)


def check_critique(text: str, ctx: QCContext, checks: Iterable[str] | None = None) -> list[str]:
    """Names of the checks ``text`` fails; an empty critique is only reported as ``empty``."""
    names = list(checks) if checks is not None else QC_CHECKS.names()
    if "empty" in names and is_empty(text, ctx):
        return ["empty"]
    return [n for n in names if n != "empty" and QC_CHECKS.get(n)(text, ctx)]


@dataclass
class QCReport:
    """Counts of critiques with each problem (a critique may have several)."""

    n_critiques: int = 0
    counts: Counter = field(default_factory=Counter)
    n_flagged: int = 0

    def add(self, flags: list[str]) -> None:
        """Count one critique's flags."""
        self.n_critiques += 1
        self.counts.update(flags)
        self.n_flagged += bool(flags)

    def as_dict(self) -> dict:
        """JSON-ready summary with every registered check present (zeros included)."""
        return {
            "critiques": self.n_critiques,
            "flagged": self.n_flagged,
            **{name: int(self.counts.get(name, 0)) for name in QC_CHECKS.names()},
        }
