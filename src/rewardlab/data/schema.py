"""The one record every loader produces: a preference pair."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Message = dict[str, str]
Prompt = str | list[Message]


class DataError(ValueError):
    """Bad input data; the message names the file, the line (or record) and the field."""

    def __init__(self, where: str, field_name: str | None, problem: str) -> None:
        self.where, self.field, self.problem = where, field_name, problem
        at = f"{where}: field {field_name!r}: " if field_name else f"{where}: "
        super().__init__(at + problem)


@dataclass
class PreferencePair:
    """A prompt with a preferred (``chosen``) and a dispreferred (``rejected``) response.

    ``prompt`` is plain text or chat messages (``[{"role", "content"}, ...]``); responses are the
    assistant's text. ``margin`` is an optional Bradley-Terry margin, ``labels`` per-principle soft
    labels P(chosen ≻ rejected | principle), ``critiques`` maps ``"chosen"``/``"rejected"`` to a
    critique text.
    """

    prompt: Prompt
    chosen: str
    rejected: str
    margin: float | None = None
    subset: str | None = None
    source: str | None = None
    labels: dict[str, float] = field(default_factory=dict)
    critiques: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the TRL ``prompt/chosen/rejected`` layout plus rewardlab fields."""
        d = asdict(self)
        return {k: v for k, v in d.items() if v not in (None, {}, [])}


def prompt_text(prompt: Prompt) -> str:
    """Flatten a prompt to text (chat messages joined as ``role: content`` lines)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)
