"""Request and reply bodies of the reward server, and the one error type its handlers raise.

``POST /get_reward`` speaks OpenRLHF's remote-RM protocol: ``{"query": [str], "prompts": [str],
"labels": [...]}`` → ``{"rewards": [float], "scores": [float], "extra_logs": {name: [float]}}``.
``POST /score`` takes ``{"items": [{"prompt", "response"}], "scalarizer", "penalty_k"}`` (or a bare
list of items) → one result per item.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rewardlab.data.schema import Message


class ServeError(Exception):
    """An HTTP error answered as ``{"error": kind, "detail": message}``."""

    def __init__(self, status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.headers = status, kind, detail, headers or {}

    def body(self) -> dict[str, str]:
        """The JSON body of the error reply."""
        return {"error": self.kind, "detail": self.detail}


class GetRewardRequest(BaseModel):
    """OpenRLHF's body: decoded prompt + response per sample, the prompts, optional labels."""

    model_config = ConfigDict(extra="ignore")
    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None


class GetRewardReply(BaseModel):
    """OpenRLHF's reply: ``rewards`` (the RL reward), ``scores`` (logged / filtered on), per-sample
    ``extra_logs`` lists."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]] = Field(default_factory=dict)


class ScoreItemIn(BaseModel):
    """One response to score; ``prompt`` is text or chat messages."""

    model_config = ConfigDict(extra="forbid")
    prompt: str | list[Message]
    response: str


class ScoreRequest(BaseModel):
    """``/score`` body: items, a scalarizer name (default: the model's), the penalty k in mean − k·std."""

    model_config = ConfigDict(extra="forbid")
    items: list[ScoreItemIn]
    scalarizer: str | None = None
    penalty_k: float = 0.0


class ScoreResult(BaseModel):
    """The reward of one item: scalarized (penalised when asked), per objective, and the stds."""

    reward: float
    rewards: dict[str, float]
    reward_std: float | None = None
    std: dict[str, float] | None = None


class ScoreReply(BaseModel):
    """``/score`` reply."""

    results: list[ScoreResult]
    scalarizer: str | None
    penalty_k: float
    normalized: bool


def parse_body(raw: bytes, model: type[BaseModel], max_bytes: int) -> BaseModel:
    """Validate a raw request body against ``model``: 413 when too large, 400 for bad JSON, 422
    naming the field for a wrong shape. A bare JSON list for ``/score`` means ``{"items": list}``."""
    if len(raw) > max_bytes:
        raise ServeError(413, "body_too_large", f"request body is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ServeError(400, "bad_json", f"request body is not valid JSON: {e}") from None
    if model is ScoreRequest and isinstance(data, list):
        data = {"items": data}
    if not isinstance(data, dict):
        raise ServeError(422, "bad_request", f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ServeError(422, "bad_request", f"field {where!r}: {err['msg']}") from None


def check_lengths(texts: list[str], limit: int, field: str) -> None:
    """413 naming the first text of ``field`` longer than ``limit`` characters."""
    for i, t in enumerate(texts):
        if len(t) > limit:
            raise ServeError(
                413, "text_too_long", f"{field}[{i}] has {len(t)} characters; the limit is {limit}"
            )
