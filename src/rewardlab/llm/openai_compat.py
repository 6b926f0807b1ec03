"""Any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, OpenAI, ``rewardlab.llm.server``).

Requests run in a thread pool (``concurrency``); each has a timeout and is retried with exponential
backoff and jitter on connection errors, timeouts, 408/409/429 and 5xx answers. Other errors (bad
request, authentication, unknown model) fail at once.

``option_logprobs`` asks for one token with ``logprobs=True, top_logprobs=20`` at temperature 0.
A listed token counts for an option when its text, stripped of whitespace, equals the option;
variants (``"A"``, ``" A"``) are summed in probability. An option absent from the listed tokens
gets a floor: the smallest listed log-probability (an upper bound on its true value, so two absent
options tie), or :data:`FLOOR_LOGPROB` when the server lists nothing.
"""

from __future__ import annotations

import logging
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rewardlab.data.schema import Message
from rewardlab.llm.base import BACKENDS, GenerationConfig

log = logging.getLogger(__name__)

TOP_LOGPROBS = 20
FLOOR_LOGPROB = -100.0
RETRY_STATUS = {408, 409, 429}
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def normalize_base_url(url: str | None) -> str:
    """The server URL as recorded in job outputs and cache keys (default: OpenAI's; no final /)."""
    return str(url or DEFAULT_BASE_URL).rstrip("/")


def is_retryable(err: BaseException) -> bool:
    """Whether an ``openai`` client error is worth retrying."""
    import openai

    if isinstance(err, openai.APIConnectionError | openai.APITimeoutError):
        return True
    if isinstance(err, openai.APIStatusError):
        return err.status_code in RETRY_STATUS or err.status_code >= 500
    return False


def match_options(top: list[tuple[str, float]], options: list[str]) -> dict[str, float]:
    """Option → log-probability from ``(token, logprob)`` pairs, with the documented floor."""
    floor = min((lp for _, lp in top), default=FLOOR_LOGPROB)
    out: dict[str, float] = {}
    for opt in options:
        hits = [lp for tok, lp in top if tok.strip() and tok.strip() == opt.strip()]
        if not hits:
            out[opt] = floor
        else:
            m = max(hits)
            out[opt] = m + math.log(sum(math.exp(h - m) for h in hits))
    return out


@BACKENDS.register("openai")
class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server through the ``openai`` client.

    ``model`` empty: the first model the server lists under ``/v1/models``.
    """

    name = "openai"

    def __init__(
        self,
        model: str = "",
        base_url: str | None = None,
        api_key: str = "none",
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        try:
            import openai
        except ImportError as e:  # pragma: no cover - install problem
            raise RuntimeError("the openai backend needs `pip install rewardlab[llm]`") from e
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.base_url = normalize_base_url(base_url)
        self.model = model or self.call(lambda: self.client.models.list().data[0].id)
        self._served: str | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> OpenAIBackend:
        """Build from a :class:`~rewardlab.llm.BackendConfig`."""
        return cls(
            cfg.model,
            base_url=cfg.base_url,
            api_key=cfg.api_key,
            concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
        )

    def identity(self) -> dict[str, Any]:
        """Kind, model name and server URL (what a job's output records)."""
        return {"backend": self.name, "model": self.model, "base_url": self.base_url}

    def fingerprint(self) -> dict[str, Any]:
        """The identity plus the fingerprint the server reports for the model under ``/models``
        (``rewardlab.llm.server`` reports one: weights digest, dtype, device, template), so a
        restarted server with other weights behind the same URL and name is told apart."""
        if self._served is None:
            self._served = self._served_fingerprint()
        return {**self.identity(), "served": self._served}

    def _served_fingerprint(self) -> str:
        """The ``fingerprint`` field of this model's card in ``/models`` ("" when absent)."""
        import openai

        try:
            cards = self.call(lambda: self.client.models.list().data)
        except openai.APIStatusError as err:  # a server without /models: nothing to add
            log.debug("no model list at %s (%s)", self.base_url, err)
            return ""
        for card in cards:
            if card.id == self.model:
                return str((card.model_extra or {}).get("fingerprint", ""))
        return ""

    def call(self, request: Any) -> Any:
        """Run ``request()``; on a retryable error wait ``backoff·2^i`` (± jitter) and retry."""
        for attempt in range(self.max_retries + 1):
            try:
                return request()
            except Exception as err:
                if attempt == self.max_retries or not is_retryable(err):
                    raise
                wait = self.backoff * 2**attempt * (0.5 + random.random())
                log.warning("request failed (%s); retry %d in %.1fs", err, attempt + 1, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        """``fn`` over ``items`` with ``concurrency`` threads, results in order."""
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def chat(self, conversations: list[list[Message]], gen: GenerationConfig) -> list[str]:
        """One reply per conversation, requested concurrently."""

        def one(conv: list[Message]) -> str:
            resp = self.call(
                lambda: self.client.chat.completions.create(
                    model=self.model,
                    messages=conv,
                    max_tokens=gen.max_new_tokens,
                    temperature=gen.temperature,
                    top_p=gen.top_p,
                    seed=gen.seed,
                )
            )
            return (resp.choices[0].message.content or "").strip()

        return self._map(one, conversations)

    def option_logprobs(
        self, conversations: list[list[Message]], options: list[str]
    ) -> list[dict[str, float]]:
        """Log-probability of each option as the first reply token (floor when not listed)."""

        def one(conv: list[Message]) -> dict[str, float]:
            resp = self.call(
                lambda: self.client.chat.completions.create(
                    model=self.model,
                    messages=conv,
                    max_tokens=1,
                    temperature=0.0,
                    logprobs=True,
                    top_logprobs=TOP_LOGPROBS,
                )
            )
            lp = resp.choices[0].logprobs
            first = lp.content[0] if lp is not None and lp.content else None
            top = [(t.token, t.logprob) for t in first.top_logprobs] if first else []
            if first is not None and not any(t == first.token for t, _ in top):
                top.append((first.token, first.logprob))
            return match_options(top, options)

        return self._map(one, conversations)
