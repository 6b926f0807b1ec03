"""OpenAI backend orchestration: retries with backoff, timeouts, option matching.

A scripted stdlib HTTP server on loopback plays the remote end (fails, stalls, then answers), so
the retry and timeout paths run over real sockets. Behaviour against a real model server is in
``test_backends.py``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from rewardlab.llm import GenerationConfig, OpenAIBackend
from rewardlab.llm.openai_compat import FLOOR_LOGPROB, match_options


def reply(content: str, top: list[tuple[str, float]] | None = None) -> dict:
    lp = None
    if top:
        entries = [{"token": t, "logprob": v, "bytes": None} for t, v in top]
        lp = {"content": [{**entries[0], "top_logprobs": entries}]}
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
        "logprobs": lp,
    }
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}


class Script:
    """What the server answers, one step per request: an int status, a float stall, or a dict."""

    def __init__(self) -> None:
        self.steps: list = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests.append(body)
                step = script.steps.pop(0) if script.steps else reply("ok")
            if isinstance(step, float):
                time.sleep(step)
                step = reply("late")
            if isinstance(step, int):
                self.send_response(step)
                payload = json.dumps({"error": {"message": "scripted failure"}}).encode()
            else:
                self.send_response(200)
                payload = json.dumps(step).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    server.shutdown()


def make(url: str, **kw) -> OpenAIBackend:
    kw = {"timeout": 5.0, "max_retries": 3, "backoff": 0.01, **kw}
    return OpenAIBackend(model="m", base_url=url, api_key="none", **kw)


GEN = GenerationConfig(max_new_tokens=4, temperature=0.5, seed=3)
CONV = [{"role": "user", "content": "hi"}]


def test_retries_server_errors_then_succeeds(scripted) -> None:
    url, script = scripted
    script.steps = [503, 500, 429, reply("fine")]
    assert make(url).chat([CONV], GEN) == ["fine"]
    assert len(script.requests) == 4
    sent = script.requests[-1]
    assert sent["max_tokens"] == 4 and sent["seed"] == 3 and sent["messages"] == CONV


def test_gives_up_after_max_retries(scripted) -> None:
    url, script = scripted
    script.steps = [503] * 10
    with pytest.raises(openai.InternalServerError):
        make(url, max_retries=2).chat([CONV], GEN)
    assert len(script.requests) == 3


def test_client_errors_are_not_retried(scripted) -> None:
    url, script = scripted
    script.steps = [400]
    with pytest.raises(openai.BadRequestError):
        make(url).chat([CONV], GEN)
    assert len(script.requests) == 1


def test_timeout_is_retried(scripted) -> None:
    url, script = scripted
    script.steps = [1.5, reply("quick")]
    assert make(url, timeout=0.5).chat([CONV], GEN) == ["quick"]
    assert len(script.requests) == 2


def test_concurrent_requests_keep_order(scripted) -> None:
    url, script = scripted
    script.steps = [0.3] * 4
    convs = [[{"role": "user", "content": str(i)}] for i in range(4)]
    t = time.monotonic()
    assert make(url, concurrency=4).chat(convs, GEN) == ["late"] * 4
    assert time.monotonic() - t < 1.0  # four 0.3 s requests ran in parallel
    assert sorted(r["messages"][0]["content"] for r in script.requests) == ["0", "1", "2", "3"]


def test_option_logprobs_request_and_floor(scripted) -> None:
    url, script = scripted
    script.steps = [reply("A", [("A", -0.1), (" B", -2.5), ("B", -3.0), ("C", -9.0)])]
    (out,) = make(url).option_logprobs([CONV], ["A", "B", "D"])
    sent = script.requests[0]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 20 and sent["max_tokens"] == 1
    assert out["A"] == pytest.approx(-0.1)
    assert out["B"] == pytest.approx(math.log(math.exp(-2.5) + math.exp(-3.0)))
    assert out["D"] == -9.0  # absent: the smallest listed log-probability


def test_match_options_without_listing() -> None:
    assert match_options([], ["A"]) == {"A": FLOOR_LOGPROB}


def test_model_lookup_failure_is_an_error_not_a_hang(scripted) -> None:
    url, _ = scripted
    # no model given and the server cannot list any (no GET route): an API error, at once
    with pytest.raises(openai.APIError):
        OpenAIBackend(base_url=url, max_retries=0, timeout=2)
