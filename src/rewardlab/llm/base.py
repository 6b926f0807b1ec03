"""The LLM backend protocol: chat → text, and log-probabilities of given answer options."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rewardlab.data.schema import Message, Prompt
from rewardlab.registry import Registry


@dataclass
class GenerationConfig:
    """Sampling parameters; part of every cache key."""

    max_new_tokens: int = field(default=256, metadata={"help": "tokens to generate per reply"})
    temperature: float = field(default=0.7, metadata={"help": "0 = greedy"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass"})
    seed: int = field(default=0, metadata={"help": "sampling seed (part of the cache key)"})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must lie in (0, 1]")


@runtime_checkable
class LLMBackend(Protocol):
    """What feedback steps need from an LLM. Implementations batch internally."""

    name: str  # backend kind, e.g. "local" or "openai"
    model: str  # model identifier (part of cache keys)

    def chat(self, conversations: list[list[Message]], gen: GenerationConfig) -> list[str]:
        """One assistant reply per conversation."""
        ...

    def option_logprobs(
        self, conversations: list[list[Message]], options: list[str]
    ) -> list[dict[str, float]]:
        """Log-probability of each option (e.g. ``"A"``, ``"B"``) as the reply's first token."""
        ...


BACKENDS: Registry[type] = Registry("LLM backend")


def backend_identity(backend: Any) -> dict[str, Any]:
    """Which LLM answers, as a job's output records it: kind, model name and, for a server, its URL.

    A backend may define ``identity()``; otherwise ``{"backend": name, "model": model}``.
    """
    ident = getattr(backend, "identity", None)
    return dict(ident()) if callable(ident) else {"backend": backend.name, "model": backend.model}


def backend_fingerprint(backend: Any) -> dict[str, Any]:
    """Everything about a backend that can change its replies (part of every cache key).

    A backend may define ``fingerprint()`` (the local one adds the weights' digest, dtype, device
    and chat template; the OpenAI one the server URL and the server's own fingerprint); otherwise
    its :func:`backend_identity`.
    """
    fp = getattr(backend, "fingerprint", None)
    return dict(fp()) if callable(fp) else backend_identity(backend)


def digest(obj: Any, n: int = 16) -> str:
    """The first ``n`` hex digits of the sha256 of ``obj``'s canonical JSON."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def as_messages(prompt: Prompt) -> list[Message]:
    """A prompt as chat messages: messages pass through; an HH transcript
    (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``) becomes user/assistant turns; other text is one
    user turn. A trailing empty assistant turn (the HH generation cue) is dropped."""
    if not isinstance(prompt, str):
        return [dict(m) for m in prompt]
    parts = _HH_TURN.split(prompt)
    if len(parts) < 3 or parts[0].strip():
        return [{"role": "user", "content": prompt.strip()}]
    roles = {"Human": "user", "Assistant": "assistant"}
    msgs = [
        {"role": roles[who], "content": text.strip()}
        for who, text in zip(parts[1::2], parts[2::2], strict=True)
    ]
    if msgs and msgs[-1]["role"] == "assistant" and not msgs[-1]["content"]:
        msgs.pop()
    return msgs
