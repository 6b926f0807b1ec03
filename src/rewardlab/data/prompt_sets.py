"""Prompt sets drawn from bundled *training* splits by a ``source:count,...`` spec.

Recipes that generate from prompts (best-of-n sampling, synthetic pairs) take their prompts here,
so they never draw from a test set and two recipes asked for ``hh:48`` get the same 48 prompts.
Each prompt comes with the first human pair that has it (the "same prompts, human labels" baseline).

Sources (:data:`PROMPT_SOURCES`, a registry):

* ``hh`` — single-turn Anthropic HH-RLHF harmless train prompts whose user turn is under 300
  characters, in file order (the policy sees the user turn; the RM reads the HH prompt);
* ``pandalm`` — distinct PandaLM train prompts, in file order;
* ``qa-feedback`` — distinct qa-feedback train prompts (question + passages), shortest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rewardlab.data.bundled import hh_splits, pandalm_splits, qa_feedback_splits
from rewardlab.data.schema import PreferencePair, Prompt
from rewardlab.registry import Registry


@dataclass(frozen=True)
class TrainPrompt:
    """One prompt: what the RM reads (``prompt``), what a policy is asked (``user``), its
    ``source`` name, and the first human ``pair`` of the split with this prompt."""

    prompt: Prompt
    user: str
    source: str
    pair: PreferencePair


def single_turn(pairs: list[PreferencePair], count: int, source: str = "hh") -> list[TrainPrompt]:
    """The first ``count`` single-turn HH prompts whose user turn is under 300 characters."""
    out = []
    for p in pairs:
        turns = (
            re.findall(r"Human: (.*?)\n\nAssistant:", p.prompt, flags=re.S)
            if isinstance(p.prompt, str)
            else []
        )
        if isinstance(p.prompt, str) and p.prompt.count("Human:") == 1 and turns and len(turns[0]) < 300:
            out.append(TrainPrompt(p.prompt, turns[0].strip(), source, p))
        if len(out) == count:
            break
    return out


def distinct(
    pairs: list[PreferencePair], count: int, source: str, shortest: bool = False
) -> list[TrainPrompt]:
    """``count`` distinct string prompts (in file order, or the shortest first), each with its
    first pair."""
    first: dict[str, PreferencePair] = {}
    for p in pairs:
        if isinstance(p.prompt, str):
            first.setdefault(p.prompt, p)
    texts = sorted(first, key=len) if shortest else list(first)
    return [TrainPrompt(t, t, source, first[t]) for t in texts[:count]]


PROMPT_SOURCES: Registry[Callable[[int], list[TrainPrompt]]] = Registry("prompt source")
PROMPT_SOURCES.add("hh", lambda n: single_turn(hh_splits()["train"], n))
PROMPT_SOURCES.add("pandalm", lambda n: distinct(pandalm_splits()["train"], n, "pandalm"))
PROMPT_SOURCES.add("qa-feedback", lambda n: distinct(qa_feedback_splits()["train"], n, "qa-feedback", True))


def train_prompts(spec: str) -> list[TrainPrompt]:
    """The prompts of a ``source:count,...`` spec, sources in spec order. Raises ValueError naming
    the bad part (unknown source, no count, or fewer usable prompts than asked)."""
    out: list[TrainPrompt] = []
    for part in spec.split(","):
        name, _, count = part.partition(":")
        if name not in PROMPT_SOURCES.names() or not count.isdigit():
            raise ValueError(f"prompts: {part!r} is not SOURCE:COUNT with SOURCE in {PROMPT_SOURCES.names()}")
        got = PROMPT_SOURCES.get(name)(int(count))
        if len(got) < int(count):
            raise ValueError(f"prompts: {name} has only {len(got)} usable prompts, asked for {count}")
        out += got
    return out
