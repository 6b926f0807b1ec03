"""A small OpenAI-compatible server over any :class:`LLMBackend` (needs ``rewardlab[serve]``).

Serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (no streaming, ``n=1``), so other
tools can use the embedded model as they would vLLM or llama.cpp::

    python -m rewardlab.llm.server --model smollm2 --port 8000

Each model card under ``/v1/models`` carries a ``fingerprint`` (a digest of the backend's
:func:`~rewardlab.llm.base.backend_fingerprint`: weights, dtype, device, chat template); clients
put it in their cache keys, so two servers answering to one model name never share entries.

Concurrent requests with the same sampling parameters are grouped into one backend batch (the
batcher waits at most ``batch_wait_s`` to fill a batch). With ``logprobs=true`` the reply carries
the log-probabilities of its *first* token and the ``top_logprobs`` alternatives there (what
judging reads); that needs a backend with ``top_logprobs`` (the local one has it).
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel, Field

from rewardlab.data.schema import Message
from rewardlab.llm.base import GenerationConfig, LLMBackend, backend_fingerprint, digest


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat-completions request that this server reads."""

    model: str | None = None
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    n: int = 1
    stream: bool = False
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)


class Batcher:
    """Groups concurrent chat requests with equal :class:`GenerationConfig` into one call."""

    def __init__(self, backend: LLMBackend, max_batch: int = 8, batch_wait_s: float = 0.01):
        self.backend = backend
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.queue: queue.Queue[tuple[list[Message], GenerationConfig, Future]] = queue.Queue()
        self.lock = threading.Lock()  # one backend call at a time (chat or logprobs)
        threading.Thread(target=self._run, daemon=True, name="rewardlab-batcher").start()

    def submit(self, conv: list[Message], gen: GenerationConfig) -> Future:
        """Queue one conversation; the future resolves to its reply."""
        fut: Future = Future()
        self.queue.put((conv, gen, fut))
        return fut

    def _run(self) -> None:
        held: list[tuple[list[Message], GenerationConfig, Future]] = []
        while True:
            first = held.pop(0) if held else self.queue.get()
            group, rest = [first], []
            deadline = time.monotonic() + self.batch_wait_s
            for item in held:
                (group if item[1] == first[1] and len(group) < self.max_batch else rest).append(item)
            while len(group) < self.max_batch:
                try:
                    item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                (group if item[1] == first[1] else rest).append(item)
            held = rest
            try:
                with self.lock:
                    replies = self.backend.chat([c for c, _, _ in group], first[1])
                for (_, _, fut), text in zip(group, replies, strict=True):
                    fut.set_result(text)
            except Exception as err:  # noqa: BLE001 - handed to each waiting request
                for _, _, fut in group:
                    fut.set_exception(err)


def create_app(
    backend: LLMBackend, max_batch: int = 8, batch_wait_s: float = 0.01, served_name: str | None = None
) -> Any:
    """The FastAPI app serving ``backend`` under ``/v1`` as ``served_name`` (default: its model)."""
    from fastapi import FastAPI, HTTPException

    batcher = Batcher(backend, max_batch, batch_wait_s)
    app = FastAPI(title="rewardlab LLM server")
    created = int(time.time())
    name = served_name or backend.model
    fingerprint = digest(backend_fingerprint(backend))

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        card = {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "rewardlab",
            "fingerprint": fingerprint,
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict[str, Any]:
        if req.stream or req.n != 1:
            raise HTTPException(400, "only stream=false and n=1 are supported")
        conv: list[Message] = [
            {"role": str(m.get("role")), "content": message_text(m.get("content"))} for m in req.messages
        ]
        try:
            gen = GenerationConfig(
                max_new_tokens=req.max_completion_tokens or req.max_tokens or 256,
                temperature=req.temperature,
                top_p=req.top_p,
                seed=req.seed or 0,
            )
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        logprobs = None
        if req.logprobs:
            logprobs = first_token_logprobs(backend, batcher.lock, conv, req.top_logprobs or 0)
        text = batcher.submit(conv, gen).result()
        return completion(backend, name, conv, text, gen, logprobs)

    return app


def message_text(content: Any) -> str:
    """A message's text: a string, or the ``text`` parts of an OpenAI content-part list."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def first_token_logprobs(backend: Any, lock: threading.Lock, conv: list[Message], k: int) -> dict[str, Any]:
    """The OpenAI ``logprobs`` object for the first reply token (its top ``k`` alternatives)."""
    from fastapi import HTTPException

    if not hasattr(backend, "top_logprobs"):
        raise HTTPException(400, "this backend cannot report logprobs")
    with lock:
        top = backend.top_logprobs([conv], max(k, 1))[0]
    entry = lambda t, lp: {"token": t, "logprob": lp, "bytes": list(t.encode())}  # noqa: E731
    first = entry(*top[0])
    first["top_logprobs"] = [entry(t, lp) for t, lp in top[:k]]
    return {"content": [first]}


def completion(
    backend: Any, name: str, conv: list[Message], text: str, gen: GenerationConfig, logprobs: Any
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for one reply."""
    counts = getattr(backend, "count_tokens", None)
    n_in = n_out = 0
    if counts:
        *ins, n_out = counts([m["content"] for m in conv] + [text])
        n_in = sum(ins)
    finish = "length" if counts and n_out >= gen.max_new_tokens else "stop"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": logprobs,
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m rewardlab.llm.server``: serve a backend with uvicorn."""
    import uvicorn

    from rewardlab.llm import BackendConfig, build_backend

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="local")
    p.add_argument("--model", default="")
    p.add_argument("--served-model-name", default=None, help="name under /v1/models (default: --model)")
    p.add_argument("--dtype", default="auto", help="local: auto, float32, bfloat16, float16")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-cache", action="store_true", help="do not use the generation cache")
    a = p.parse_args(argv)
    cfg = BackendConfig(
        backend=a.backend,
        model=a.model,
        device=a.device,
        dtype=a.dtype,
        batch_size=a.batch_size,
        threads=a.threads,
        no_cache=a.no_cache,
    )
    backend = build_backend(cfg)
    app = create_app(backend, max_batch=a.batch_size, served_name=a.served_model_name)
    uvicorn.run(app, host=a.host, port=a.port)


if __name__ == "__main__":
    main()
