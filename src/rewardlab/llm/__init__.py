"""LLM backends: the embedded local model, any OpenAI-compatible server, a persistent cache.

Front door: ``build_backend(BackendConfig(...))`` returns a :class:`CachedBackend` around the
registered backend named by ``cfg.backend`` (``"local"`` or ``"openai"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.llm import local as _local  # noqa: F401  (registers "local")
from rewardlab.llm import openai_compat as _openai  # noqa: F401  (registers "openai")
from rewardlab.llm.base import BACKENDS, GenerationConfig, LLMBackend
from rewardlab.llm.cache import CachedBackend, GenerationCache
from rewardlab.llm.jobs import resumable_map
from rewardlab.llm.local import DEFAULT_LOCAL_MODEL, LocalBackend
from rewardlab.llm.openai_compat import OpenAIBackend, normalize_base_url


def default_cache_path() -> Path:
    """``<rewardlab cache dir>/llm-cache.sqlite``."""
    from rewardlab.assets import cache_dir

    return cache_dir() / "llm-cache.sqlite"


@dataclass
class BackendConfig:
    """Which LLM to talk to and how."""

    backend: str = field(default="local", metadata={"help": "LLM backend: local or openai"})
    model: str = field(
        default="",
        metadata={
            "help": "local: alias (qwen2.5-1.5b, smollm2 for speed, qwen2.5-0.5b) or HF path; "
            f"openai: served model name (empty: {DEFAULT_LOCAL_MODEL} for local, the server's "
            "first model for openai)"
        },
    )
    base_url: str | None = field(
        default=None,
        metadata={
            "help": "OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL)"
        },
    )
    api_key: str | None = field(
        default=None, metadata={"help": "API key (default: $OPENAI_API_KEY, else 'none')"}
    )
    device: str = field(default="auto", metadata={"help": "local: auto, cpu, cuda, cuda:1, mps"})
    threads: int = field(
        default=0, metadata={"help": "local: torch CPU threads while generating (0: torch default)"}
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "local: auto (accelerator: bfloat16; CPU: float32, but bfloat16 for "
            "qwen2.5-1.5b where the CPU has native bf16), float32, bfloat16, float16"
        },
    )
    concurrency: int = field(default=4, metadata={"help": "openai: parallel requests"})
    timeout: float = field(default=120.0, metadata={"help": "openai: seconds per request"})
    max_retries: int = field(default=4, metadata={"help": "openai: retries with exponential backoff"})
    batch_size: int = field(default=8, metadata={"help": "local: conversations per batch"})
    cache_path: str | None = field(
        default=None,
        metadata={"help": "SQLite generation cache (default: <cache dir>/llm-cache.sqlite)"},
    )
    no_cache: bool = field(default=False, metadata={"help": "do not read or write the cache"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: unknown {self.backend!r}; choose one of {BACKENDS.names()}")
        if not self.model and self.backend == "local":
            self.model = DEFAULT_LOCAL_MODEL
        if self.base_url is None:
            self.base_url = os.environ.get("OPENAI_BASE_URL") or None
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY") or "none"
        for name in ("concurrency", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype: unknown {self.dtype!r}")

    def identity(self) -> dict[str, Any]:
        """The identity the built backend will report (:func:`~rewardlab.llm.base.backend_identity`),
        read from the config alone: kind, model name and, for ``openai``, the server URL."""
        ident: dict[str, Any] = {"backend": self.backend, "model": self.model}
        if self.backend == "openai":
            ident["base_url"] = normalize_base_url(self.base_url)
        if self.backend == "local":  # the dtype the backend will load (resolved without loading)
            dtype = _local.resolve_dtype(self.dtype, _local.resolve_device(self.device), self.model)
            ident["dtype"] = _local.dtype_name(dtype)
        return ident


def build_backend(cfg: BackendConfig | None = None) -> LLMBackend:
    """The backend named in ``cfg``, wrapped in a :class:`CachedBackend` unless ``no_cache``."""
    cfg = cfg or BackendConfig()
    inner = BACKENDS.get(cfg.backend).from_config(cfg)
    if cfg.no_cache:
        return inner
    return CachedBackend(inner, GenerationCache(cfg.cache_path or default_cache_path()))


__all__ = [
    "BACKENDS",
    "BackendConfig",
    "CachedBackend",
    "DEFAULT_LOCAL_MODEL",
    "GenerationCache",
    "GenerationConfig",
    "LLMBackend",
    "LocalBackend",
    "OpenAIBackend",
    "build_backend",
    "default_cache_path",
    "resumable_map",
]
