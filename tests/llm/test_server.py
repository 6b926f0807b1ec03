"""The OpenAI-compatible server: request batching, protocol details, error answers."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewardlab.llm.base import GenerationConfig, as_messages
from rewardlab.llm.server import Batcher, message_text


class SlowEcho:
    """A fake backend that records its batch sizes (for testing the batcher only)."""

    name, model = "echo", "echo"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = threading.Event()

    def chat(self, conversations, gen):
        self.gate.wait(5)
        self.batches.append(len(conversations))
        return [f"{c[-1]['content']}:{gen.seed}" for c in conversations]


def test_batcher_groups_concurrent_requests_by_params() -> None:
    backend = SlowEcho()
    batcher = Batcher(backend, max_batch=4, batch_wait_s=0.2)
    g0, g1 = GenerationConfig(seed=0), GenerationConfig(seed=1)
    futs = [batcher.submit([{"role": "user", "content": str(i)}], g1 if i == 5 else g0) for i in range(6)]
    backend.gate.set()
    assert [f.result(10) for f in futs] == ["0:0", "1:0", "2:0", "3:0", "4:0", "5:1"]
    assert sorted(backend.batches) == [1, 1, 4]  # 4 of g0, then the 5th g0, and g1 apart


def test_batcher_passes_errors_to_callers() -> None:
    class Broken:
        name = model = "broken"

        def chat(self, conversations, gen):
            raise RuntimeError("boom")

    fut = Batcher(Broken()).submit([{"role": "user", "content": "x"}], GenerationConfig())
    with pytest.raises(RuntimeError, match="boom"):
        fut.result(5)


def test_message_text_and_as_messages() -> None:
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    assert message_text(None) == "" and message_text("x") == "x"
    hh = "\n\nHuman: hi\n\nAssistant: yo\n\nHuman: more?\n\nAssistant:"
    assert as_messages(hh) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "more?"},
    ]
    assert as_messages("just text") == [{"role": "user", "content": "just text"}]


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_server_protocol(llm_server: str) -> None:
    with urllib.request.urlopen(f"{llm_server}/models") as r:
        models = json.loads(r.read())
    assert models["object"] == "list" and models["data"][0]["id"] == "smollm2"
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 3,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 5,
    }
    status, out = post(f"{llm_server}/chat/completions", body)
    assert status == 200 and out["object"] == "chat.completion"
    choice = out["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    first = choice["logprobs"]["content"][0]
    assert len(first["top_logprobs"]) == 5 and first["token"] == first["top_logprobs"][0]["token"]
    assert choice["message"]["content"].startswith(first["token"].strip())  # greedy: top-1 first
    assert out["usage"]["completion_tokens"] >= 1
    for bad in ({"stream": True}, {"n": 2}, {"temperature": -1}):
        assert post(f"{llm_server}/chat/completions", {**body, **bad})[0] == 400
    assert post(f"{llm_server}/chat/completions", {**body, "top_logprobs": 50})[0] == 422


@pytest.mark.slow
def test_server_under_concurrency(llm_server: str) -> None:
    """Many clients at once: every request gets its own answer, nothing hangs."""
    from rewardlab.llm import OpenAIBackend

    remote = OpenAIBackend(base_url=llm_server, concurrency=8, timeout=120)
    convs = [[{"role": "user", "content": f"Repeat the number {i}."}] for i in range(8)]
    gen = GenerationConfig(max_new_tokens=4, temperature=0)
    with ThreadPoolExecutor(2) as pool:  # two callers, each sending 8 requests in parallel
        a, b = pool.map(lambda _: remote.chat(convs, gen), range(2))
    assert a == b and len(a) == 8 and all(a)
