"""The reward server (``rewardlab serve``): OpenRLHF's ``/get_reward``, a richer ``/score`` and
``/health`` over one loaded model, with dynamic micro-batching across concurrent requests.

The app needs the ``[serve]`` extra (FastAPI, uvicorn); it is imported on first use, so the
config, batcher and client import without it."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "MicroBatcher": "batching",
    "Overloaded": "batching",
    "RewardClient": "client",
    "Sample": "scoring",
    "Scorer": "scoring",
    "ServeConfig": "config",
    "ServerState": "app",
    "create_app": "app",
    "fit_normalization": "scoring",
    "serve": "app",
    "store_normalization": "scoring",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'rewardlab.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rewardlab.serve.{_WHERE[name]}"), name)
