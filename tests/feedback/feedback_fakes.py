"""Test helpers for feedback tests: a fake LLM backend (orchestration only) and data helpers."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

from rewardlab.data.schema import PreferencePair
from rewardlab.llm.base import GenerationConfig


class FakeBackend:
    """Implements the LLMBackend protocol deterministically, for orchestration tests only.

    ``reply(conversation, gen)`` gives chat replies (default: a hash of the text and the seed);
    ``judge(conversation)`` gives (logprob A, logprob B)."""

    name = "fake"
    model = "fake-1"

    def __init__(self, reply: Callable | None = None, judge: Callable | None = None) -> None:
        self.reply = reply or self._hash_reply
        self.judge = judge or (lambda conv: (math.log(0.6), math.log(0.4)))
        self.chat_calls: list[list] = []
        self.judge_calls: list[list] = []

    @staticmethod
    def _hash_reply(conv: list[dict], gen: GenerationConfig) -> str:
        text = json.dumps(conv) + str(gen.seed)
        return f"Reply {hashlib.sha1(text.encode()).hexdigest()[:8]}."

    def chat(self, conversations: list[list[dict]], gen: GenerationConfig) -> list[str]:
        self.chat_calls.append(conversations)
        return [self.reply(c, gen) for c in conversations]

    def option_logprobs(self, conversations: list[list[dict]], options: list[str]) -> list[dict]:
        self.judge_calls.append(conversations)
        out = []
        for c in conversations:
            la, lb = self.judge(c)
            out.append({"A": la, "B": lb})
        return out


def make_pairs(n: int) -> list[PreferencePair]:
    return [
        PreferencePair(f"Question {i}?", f"good answer {i}", f"bad answer {i}", subset="s") for i in range(n)
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
