"""The reward server: a FastAPI app over one loaded model and one micro-batching worker.

Endpoints (all JSON; with a token, every one needs ``Authorization: Bearer TOKEN``):

- ``POST /get_reward`` — OpenRLHF's remote-RM protocol (see :mod:`rewardlab.serve.protocol`);
  the response is ``query[len(prompt):]``, cleaned of the policy's chat-template markup when
  ``--policy-tokenizer`` is given. ``extra_logs`` holds per-objective rewards (K > 1) and the
  predictive std (``reward_std``, ``std/<objective>``) when the model has a posterior or ensemble.
- ``POST /score`` — ``{"items": [{"prompt", "response"}], "scalarizer", "penalty_k"}``.
- ``GET /health`` — model, kind, objectives, posterior yes/no, scoring precision, queue depth,
  batch counters.

Errors are ``{"error", "detail"}`` with 400 (bad JSON), 401 (token), 413 (body, text or item
count over a limit), 422 (wrong shape or option), 503 + ``Retry-After`` (queue full), 504 (timeout).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rewardlab.serve.batching import MicroBatcher, Overloaded
from rewardlab.serve.config import ServeConfig
from rewardlab.serve.memory import rss_mib
from rewardlab.serve.plan import BatchPolicy, PlanConfig
from rewardlab.serve.protocol import (
    GetRewardReply,
    GetRewardRequest,
    ScoreReply,
    ScoreRequest,
    ScoreResult,
    ServeError,
    check_lengths,
    parse_body,
)
from rewardlab.serve.scoring import (
    NORM_KEY,
    Sample,
    Scorer,
    extra_logs,
    fit_normalization,
    store_normalization,
)
from rewardlab.serve.template import split_sample

if TYPE_CHECKING:
    from rewardlab.loading import LoadedRM
    from rewardlab.serve.template import PolicyTemplate

log = logging.getLogger(__name__)
RETRY_AFTER_S = 1


@dataclass
class ServerState:
    """Everything the handlers share: config, model, scorer, batcher, policy template."""

    cfg: ServeConfig
    loaded: LoadedRM
    scorer: Scorer
    batcher: MicroBatcher
    template: PolicyTemplate | None

    @classmethod
    def build(cls, cfg: ServeConfig, loaded: LoadedRM | None = None) -> ServerState:
        """Load the model (refusing a critique-conditioned one), fit or read the normalisation,
        learn the policy template; the worker is not started yet."""
        from rewardlab.loading import load

        loaded = loaded or load(cfg.model, uncertainty=cfg.uncertainty, precision=cfg.precision)
        if loaded.needs_critiques:
            raise ValueError(
                f"{loaded.path}: this reward model reads an LLM critique of every response; the server "
                "has no critic backend, and generating critiques per request would not fit OpenRLHF's "
                "180 s request budget. Serve a model trained without --critiques."
            )
        norm = None
        if cfg.normalize_on is not None:
            norm = fit_normalization(loaded, cfg.normalize_on, cfg.batch_tokens)
            store_normalization(loaded.path, norm)
            loaded.meta[NORM_KEY] = norm
            log.info(
                "reward mean %.4f std %.4f on %s, stored in %s",
                norm["mean"],
                norm["std"],
                cfg.normalize_on,
                loaded.path,
            )
        elif cfg.normalize:
            norm = loaded.meta.get(NORM_KEY)
            if norm is None:
                raise ValueError(
                    f"{loaded.path}: --normalize, but no normalization is stored; pass --normalize-on FILE"
                )
        template = None
        if cfg.policy_tokenizer:
            from rewardlab.serve.template import PolicyTemplate

            template = PolicyTemplate.load(cfg.policy_tokenizer)
        pack = cfg.batch_policy == BatchPolicy.PACKED
        scorer = Scorer(loaded, norm, cfg.batch_tokens, cfg.max_batch, pack=pack)
        plan = PlanConfig(cfg.pass_overhead_tokens, cfg.batch_tokens, cfg.max_batch)
        batcher = MicroBatcher(
            scorer,
            cfg.max_batch,
            cfg.max_wait_ms,
            cfg.max_queue,
            cfg.batch_policy,
            plan,
            None if cfg.rss_bound_mib < 0 else cfg.rss_bound_mib,
            cfg.plan_window or None,
        )
        return cls(cfg, loaded, scorer, batcher, template)

    def health(self) -> dict[str, Any]:
        """The ``/health`` body."""
        rm = self.loaded.rm
        return {
            "status": "ok",
            "model": self.loaded.path.name,
            "path": str(self.loaded.path),
            "backbone": rm.cfg.backbone,
            "kind": getattr(rm.cfg.kind, "value", rm.cfg.kind),
            "objectives": self.loaded.objectives,
            "scalarizer": rm.cfg.scalarizer if len(self.loaded.objectives) > 1 else None,
            "posterior": self.loaded.uncertainty_source is not None,
            "precision": self.loaded.precision.value,
            "uncertainty_source": self.loaded.uncertainty_source,
            "normalization": self.scorer.norm,
            "policy_template": self.template is not None,
            "queue_depth": self.batcher.depth,
            "max_batch": self.cfg.max_batch,
            "batch_policy": self.cfg.batch_policy.value,
            "packed": self.scorer.pack,
            "rss_mib": None if (rss := rss_mib()) is None else round(rss, 1),
            **self.batcher.stats.as_dict(),
        }

    async def run(self, samples: list[Sample]) -> list:
        """Score through the batcher: 503 when full, 504 after the request timeout."""
        try:
            return await asyncio.wait_for(self.batcher.submit(samples), self.cfg.timeout_s)
        except Overloaded as e:
            raise ServeError(503, "overloaded", str(e), {"Retry-After": str(RETRY_AFTER_S)}) from None
        except asyncio.TimeoutError:
            raise ServeError(504, "timeout", f"not scored within {self.cfg.timeout_s:g} s") from None


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServeError(413, "body_too_large", f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(413, "body_too_large", f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _authorize(state: ServerState, request: Request) -> None:
    """401 unless the bearer token matches (constant-time compare); no token configured: open."""
    token = state.cfg.token
    if not token:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise ServeError(401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


async def get_reward(state: ServerState, raw: bytes) -> dict[str, Any]:
    """OpenRLHF ``/get_reward``: one reward per query."""
    cfg = state.cfg
    req = parse_body(raw, GetRewardRequest, cfg.max_body_bytes)
    n = len(req.query)
    if n > cfg.max_items:
        raise ServeError(413, "too_many_items", f"{n} queries; the limit is {cfg.max_items}")
    if req.prompts is not None and len(req.prompts) not in (0, n):
        raise ServeError(422, "bad_request", f"field 'prompts': {len(req.prompts)} prompts for {n} queries")
    prompts = req.prompts or [None] * n
    check_lengths(req.query, cfg.max_text_chars, "query")
    check_lengths([p or "" for p in prompts], cfg.max_text_chars, "prompts")
    samples = [Sample(*split_sample(state.template, q, p)) for q, p in zip(req.query, prompts, strict=True)]
    scored = await state.run(samples)
    rewards = [s.reward for s in scored]
    logs = extra_logs(state.loaded.objectives, scored)
    return GetRewardReply(rewards=rewards, scores=rewards, extra_logs=logs).model_dump()


def _prompt_text(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else "".join(m.get("content", "") for m in prompt)


async def score(state: ServerState, raw: bytes) -> dict[str, Any]:
    """``/score``: rewards of {prompt, response} items with a scalarizer and an uncertainty penalty."""
    from rewardlab.objectives import get_scalarizer

    cfg = state.cfg
    req = parse_body(raw, ScoreRequest, cfg.max_body_bytes)
    if len(req.items) > cfg.max_items:
        raise ServeError(413, "too_many_items", f"{len(req.items)} items; the limit is {cfg.max_items}")
    if req.scalarizer is not None:
        try:
            get_scalarizer(req.scalarizer)
        except ValueError as e:
            raise ServeError(422, "bad_request", f"field 'scalarizer': {e}") from None
    if req.penalty_k < 0:
        raise ServeError(422, "bad_request", "field 'penalty_k': must be >= 0")
    if req.penalty_k and state.loaded.uncertainty_source is None:
        raise ServeError(
            422, "bad_request", "field 'penalty_k': the model has no posterior or ensemble (no std)"
        )
    check_lengths([i.response for i in req.items], cfg.max_text_chars, "items.response")
    check_lengths([_prompt_text(i.prompt) for i in req.items], cfg.max_text_chars, "items.prompt")
    samples = [Sample(i.prompt, i.response, req.scalarizer, req.penalty_k) for i in req.items]
    scored = await state.run(samples)
    names = state.loaded.objectives
    results = [
        ScoreResult(
            reward=s.reward,
            rewards=dict(zip(names, s.rewards, strict=True)),
            reward_std=s.reward_std,
            std=None if s.std is None else dict(zip(names, s.std, strict=True)),
        )
        for s in scored
    ]
    scalarizer = (req.scalarizer or state.loaded.rm.cfg.scalarizer) if len(names) > 1 else None
    return ScoreReply(
        results=results,
        scalarizer=scalarizer,
        penalty_k=req.penalty_k,
        normalized=state.scorer.normalizes(req.scalarizer),
    ).model_dump(exclude_none=False)


def create_app(state: ServerState) -> FastAPI:
    """The FastAPI app; its lifespan starts and stops the worker thread."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state.batcher.start()
        yield
        state.batcher.stop()

    app = FastAPI(title="rewardlab reward server", lifespan=lifespan)
    app.state.rewardlab = state

    @app.exception_handler(ServeError)
    async def _serve_error(_request: Request, e: ServeError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, e: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"error": "internal", "detail": f"{type(e).__name__}: {e}"}, status_code=500)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        _authorize(state, request)
        return state.health()

    @app.post("/get_reward")
    async def get_reward_route(request: Request) -> dict[str, Any]:
        _authorize(state, request)
        return await get_reward(state, await _read_body(request, state.cfg.max_body_bytes))

    @app.post("/score")
    async def score_route(request: Request) -> dict[str, Any]:
        _authorize(state, request)
        return await score(state, await _read_body(request, state.cfg.max_body_bytes))

    return app


def serve(cfg: ServeConfig) -> None:
    """Load the model and serve it with uvicorn until interrupted."""
    import uvicorn

    state = ServerState.build(cfg)
    log.info(
        "serving %s on http://%s:%d (auth: %s)",
        state.loaded.path,
        cfg.host,
        cfg.port,
        "bearer" if cfg.token else "none",
    )
    uvicorn.run(create_app(state), host=cfg.host, port=cfg.port, log_level="warning", access_log=False)
