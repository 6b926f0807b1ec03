"""A rewardlab reward model as a TRL reward function (GRPO, RLOO, ...).

``trl_reward_func(model_or_url)`` returns a callable with TRL's reward-function signature
``f(prompts, completions, completion_ids=None, **kwargs) -> list[float | None]``. It scores a
local model directory (or a :class:`~rewardlab.loading.LoadedRM`) or a running ``rewardlab serve``
(its ``/score`` endpoint), in micro-batches of ``batch_size`` so a large generation batch never
goes through one un-truncated forward. Prompts and completions may be standard (``list[str]``) or
conversational (``[[{"role": "user", ...}]]`` and ``[[{"role": "assistant", "content": ...}]]``).
The reward is the model's scalarized reward (``scalarizer``: the model's, or a named one) minus
``penalty_k`` × its predictive std (needs a posterior or ensemble). TRL logs it under ``__name__``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardlab.data.schema import Prompt

if TYPE_CHECKING:
    from rewardlab.loading import LoadedRM

ENDPOINTS = ("/score", "/get_reward")
RETRIES = 5  # 503 (queue full) answers are retried after Retry-After


def _content(message: Any) -> str:
    """Text of a message's content (a string, or a list of {"type": "text", "text"} parts)."""
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def completion_text(completion: str | list[dict]) -> str:
    """A standard completion as is; a conversational one: its assistant messages' text."""
    if isinstance(completion, str):
        return completion
    return "".join(_content(m) for m in completion if m.get("role", "assistant") == "assistant")


class RewardFunc:
    """TRL reward function over a rewardlab RM (see the module docstring)."""

    def __init__(
        self,
        model_or_url: str | Path | LoadedRM,
        scalarizer: str | None = None,
        penalty_k: float = 0.0,
        batch_size: int = 32,
        token: str | None = None,
        name: str | None = None,
    ) -> None:
        if batch_size < 1 or penalty_k < 0:
            raise ValueError(f"batch_size must be >= 1 and penalty_k >= 0, got {batch_size}, {penalty_k}")
        self.scalarizer, self.penalty_k, self.batch_size = scalarizer, penalty_k, batch_size
        self.url: str | None = None
        self.loaded: LoadedRM | None = None
        if isinstance(model_or_url, str) and model_or_url.startswith(("http://", "https://")):
            self.url, self.token = self._base(model_or_url), token
            self._local = threading.local()  # one keep-alive connection per thread
            label = "server"
        else:
            self.loaded = self._load(model_or_url)
            self._lock = threading.Lock()  # one forward at a time on a shared model
            label = self.loaded.path.name
        self.__name__ = name or f"rewardlab_{label}"

    @staticmethod
    def _base(url: str) -> str:
        url = url.rstrip("/")
        for end in ENDPOINTS:
            url = url.removesuffix(end)
        return url

    def _load(self, model: str | Path | LoadedRM) -> LoadedRM:
        from rewardlab.loading import LoadedRM, load
        from rewardlab.objectives import get_scalarizer

        loaded = model if isinstance(model, LoadedRM) else load(model, uncertainty=self.penalty_k > 0)
        if self.scalarizer is not None:
            get_scalarizer(self.scalarizer)
        if self.penalty_k and loaded.uncertainty_source is None:
            raise ValueError(f"{loaded.path}: penalty_k needs a posterior or ensemble beside the model")
        return loaded

    def __call__(
        self, prompts: list[Prompt], completions: list, completion_ids: list | None = None, **kwargs: Any
    ) -> list[float | None]:
        """One reward per completion (TRL's reward-function signature; extra columns ignored)."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        texts = [completion_text(c) for c in completions]
        out: list[float | None] = []
        for i in range(0, len(texts), self.batch_size):
            j = i + self.batch_size
            out += (
                self._score_local(prompts[i:j], texts[i:j])
                if self.loaded
                else self._score_remote(prompts[i:j], texts[i:j])
            )
        return out

    def _score_local(self, prompts: list[Prompt], responses: list[str]) -> list[float]:
        with self._lock:
            s = self.loaded.score(
                prompts, responses, uncertainty=True if self.penalty_k else None, scalarizer=self.scalarizer
            )
        reward = s.reward if not self.penalty_k else s.reward - self.penalty_k * s.reward_std
        return reward.tolist()

    def _score_remote(self, prompts: list[Prompt], responses: list[str]) -> list[float]:
        from rewardlab.serve.client import RewardClient

        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = RewardClient(self.url, self.token)
        body = {
            "items": [{"prompt": p, "response": r} for p, r in zip(prompts, responses, strict=True)],
            "scalarizer": self.scalarizer,
            "penalty_k": self.penalty_k,
        }
        for attempt in range(RETRIES):
            rep = client.post("/score", body)
            if rep.status != 503 or attempt == RETRIES - 1:
                break
            time.sleep(float(rep.headers.get("retry-after", "1")))
        if rep.status != 200:
            detail = rep.body.get("detail") if isinstance(rep.body, dict) else rep.body
            raise RuntimeError(f"{self.url}/score answered {rep.status}: {detail}")
        return [r["reward"] for r in rep.body["results"]]


class AsyncRewardFunc(RewardFunc):
    """The async variant: TRL awaits it alongside its other async reward functions; the scoring
    runs in a worker thread so the event loop stays free."""

    async def __call__(  # type: ignore[override]
        self, prompts: list[Prompt], completions: list, completion_ids: list | None = None, **kwargs: Any
    ) -> list[float | None]:
        """One reward per completion, awaited."""
        return await asyncio.to_thread(RewardFunc.__call__, self, prompts, completions, completion_ids)


def trl_reward_func(
    model_or_url: str | Path | LoadedRM,
    scalarizer: str | None = None,
    penalty_k: float = 0.0,
    batch_size: int = 32,
    *,
    token: str | None = None,
    name: str | None = None,
    asynchronous: bool = False,
) -> RewardFunc:
    """A TRL reward function over a model directory, a loaded model or a server URL
    (``http://host:port``; ``token``: its bearer token). ``asynchronous=True`` returns the
    async variant (:class:`AsyncRewardFunc`). See the module docstring."""
    cls = AsyncRewardFunc if asynchronous else RewardFunc
    return cls(model_or_url, scalarizer, penalty_k, batch_size, token=token, name=name)
