"""Behavioural tests every backend passes: in process and through a real loopback server."""

from __future__ import annotations

import math

import pytest

from rewardlab.llm import GenerationConfig, LLMBackend

pytestmark = pytest.mark.slow

CONVS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Say hello."}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name one prime number bigger than ten, and explain why."},
    ],
]
JUDGE = [
    [{"role": "user", "content": "Which number is larger? A: 3 or B: 7. Answer with A or B."}],
    [{"role": "user", "content": "Is the sky green? Answer A for yes or B for no."}],
]
GREEDY = GenerationConfig(max_new_tokens=8, temperature=0.0)


def test_protocol(backend: LLMBackend) -> None:
    assert isinstance(backend, LLMBackend)
    assert backend.model


def test_chat_one_reply_per_conversation_in_order(backend: LLMBackend) -> None:
    replies = backend.chat(CONVS, GREEDY)
    assert len(replies) == len(CONVS)
    assert all(isinstance(r, str) and r.strip() for r in replies)
    assert "Paris" in replies[0]  # order kept: the France question gets the Paris answer
    assert backend.chat(CONVS[:1], GREEDY) == replies[:1]  # greedy: same alone as in a batch


def test_seeded_sampling_is_reproducible(backend: LLMBackend) -> None:
    gen = GenerationConfig(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=7)
    assert backend.chat(CONVS[:2], gen) == backend.chat(CONVS[:2], gen)


def test_option_logprobs(backend: LLMBackend) -> None:
    out = backend.option_logprobs(JUDGE, ["A", "B"])
    assert len(out) == len(JUDGE)
    for d in out:
        assert set(d) == {"A", "B"}
        assert all(v <= 0 and math.isfinite(v) for v in d.values())
        assert sum(math.exp(v) for v in d.values()) <= 1 + 1e-4


def test_backends_agree(local_backend, llm_server) -> None:
    """The server-backed logprobs and greedy replies match the in-process model."""
    from rewardlab.llm import OpenAIBackend

    remote = OpenAIBackend(base_url=llm_server)
    assert remote.model == "smollm2"  # no model given: the server's first listed model
    ours = local_backend.option_logprobs(JUDGE, ["A", "B"])
    theirs = remote.option_logprobs(JUDGE, ["A", "B"])
    for a, b in zip(ours, theirs, strict=True):
        assert a["A"] == pytest.approx(b["A"], abs=1e-3)  # "A" is in the top 20 for these
    assert remote.chat(CONVS[:2], GREEDY) == local_backend.chat(CONVS[:2], GREEDY)
