"""Reward-server configuration (every field is a ``rewardlab serve`` flag)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.models.fast_score import Precision
from rewardlab.serve.plan import BatchPolicy

TOKEN_ENV = "REWARDLAB_TOKEN"  # the bearer token when --token is not given


@dataclass
class ServeConfig:
    """Where the server listens, who may call it, how requests are batched and bounded."""

    model: Path = field(default=Path("model"), metadata={"help": "a saved rewardlab model directory"})
    host: str = field(default="127.0.0.1", metadata={"help": "interface to bind (loopback unless told)"})
    port: int = field(default=8000, metadata={"help": "TCP port"})
    token: str | None = field(
        default=None,
        metadata={"help": f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV} if set, else none)"},
    )
    policy_tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "the policy's tokenizer (path or alias, e.g. smollm2): its chat template is parsed "
            "out of OpenRLHF queries and its end-of-turn tokens are stripped from responses"
        },
    )
    normalize: bool = field(
        default=False,
        metadata={"help": "apply the reward mean/std stored with the model (rewardlab.json 'normalization')"},
    )
    normalize_on: Path | None = field(
        default=None,
        metadata={
            "help": "fit the reward mean/std on this responses or pairs file at start-up, store it with "
            "the model and apply it (implies --normalize)"
        },
    )
    max_batch: int = field(
        default=32, metadata={"help": "most responses the worker takes from the queue at once (and per pass)"}
    )
    batch_policy: BatchPolicy = field(
        default=BatchPolicy.PACKED,
        metadata={
            "help": "packed: the oldest queued responses as one pass, packed into rows without padding "
            "between them (encoder RMs; decoders: the offline path over them) | planned: cut them into "
            "passes of similar lengths (least padding + per-pass cost), answered pass by pass | take: "
            "every planned pass | sorted: one length-sorted batch"
        },
    )
    plan_window: int = field(
        default=16,
        metadata={
            "help": "planned/take/packed: how many of the oldest queued responses each pass is made from "
            "(0: --max-batch; sorted always takes --max-batch); smaller: a shorter latency tail"
        },
    )
    pass_overhead_tokens: float = field(
        default=48.0,
        metadata={"help": "the fixed cost of one forward pass in padded tokens (the planner's cost model)"},
    )
    max_wait_ms: float = field(
        default=5.0, metadata={"help": "how long the worker waits for a batch to fill (milliseconds)"}
    )
    max_queue: int = field(
        default=4096, metadata={"help": "most responses waiting; beyond it requests get 503 + Retry-After"}
    )
    rss_bound_mib: float = field(
        default=128.0,
        metadata={
            "help": "return freed heap memory to the OS (glibc malloc_trim) whenever the resident set "
            "grew this many MiB since the last trim (checked after every take, at most one trim a "
            "second); -1: never"
        },
    )
    batch_tokens: int = field(default=8192, metadata={"help": "padded tokens per forward pass"})
    max_body_bytes: int = field(default=4_000_000, metadata={"help": "largest request body (413 above)"})
    max_text_chars: int = field(
        default=32_000, metadata={"help": "longest query, prompt or response text (413 above)"}
    )
    max_items: int = field(default=1024, metadata={"help": "most samples in one request (413 above)"})
    timeout_s: float = field(default=120.0, metadata={"help": "per-request timeout (504 after it)"})
    uncertainty: bool = field(
        default=True,
        metadata={"help": "load the model's posterior/ensemble when saved (std in replies); off: MAP only"},
    )
    precision: Precision = field(
        default=Precision.FP32,
        metadata={
            "help": "fp32 (exact) | mixed (lower half of the blocks in bf16) | bf16 (whole model): faster "
            "on CPUs with AMX, rewards move slightly (docs/notes/scoring_speed.md); needs --no-uncertainty "
            "for a model with a posterior/ensemble"
        },
    )

    def __post_init__(self) -> None:
        self.model = Path(self.model)
        try:
            self.precision = Precision(self.precision)
        except ValueError:
            choices = [p.value for p in Precision]
            raise ValueError(f"precision: unknown {self.precision!r}; choose one of {choices}") from None
        try:
            self.batch_policy = BatchPolicy(self.batch_policy)
        except ValueError:
            choices = [p.value for p in BatchPolicy]
            raise ValueError(
                f"batch_policy: unknown {self.batch_policy!r}; choose one of {choices}"
            ) from None
        if self.plan_window < 0:
            raise ValueError(f"plan_window: must be >= 0, got {self.plan_window}")
        if self.pass_overhead_tokens < 0:
            raise ValueError(f"pass_overhead_tokens: must be >= 0, got {self.pass_overhead_tokens}")
        if self.normalize_on is not None:
            self.normalize_on = Path(self.normalize_on)
            self.normalize = True
        if self.token is None:
            self.token = os.environ.get(TOKEN_ENV) or None
        if not 0 < self.port < 65536:
            raise ValueError(f"port: must be in 1..65535, got {self.port}")
        for name in (
            "max_batch",
            "max_queue",
            "batch_tokens",
            "max_body_bytes",
            "max_text_chars",
            "max_items",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: must be >= 0, got {self.max_wait_ms}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s: must be > 0, got {self.timeout_s}")
