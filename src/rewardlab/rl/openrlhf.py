"""OpenRLHF's Python-file reward route: point ``--reward.remote_url`` (formerly
``--remote_rm_url``) at this file and set ``REWARDLAB_MODEL=DIR``.

``reward_func(queries, prompts, labels, **kwargs)`` returns ``{"rewards", "scores",
"extra_logs"}`` as tensors, exactly what the server's ``/get_reward`` returns as JSON (the same
splitting of the query, scorer and extra logs). Optional environment: ``REWARDLAB_POLICY_TOKENIZER``
(path or alias whose chat template is removed from queries), ``REWARDLAB_SCALARIZER``,
``REWARDLAB_NORMALIZE=1`` (apply the normalisation stored with the model). The model is loaded
once, on the first call; calls from many threads are serialised around the forward pass.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import torch

MODEL_ENV = "REWARDLAB_MODEL"
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _scorer() -> tuple[Any, Any, str | None]:
    """(Scorer, PolicyTemplate | None, scalarizer), built once from the environment."""
    with _lock:
        if "scorer" not in _state:
            from rewardlab.loading import load
            from rewardlab.serve.scoring import NORM_KEY, Scorer
            from rewardlab.serve.template import PolicyTemplate

            path = os.environ.get(MODEL_ENV)
            if not path:
                raise RuntimeError(f"set {MODEL_ENV} to a saved rewardlab model directory")
            loaded = load(path)
            if loaded.needs_critiques:
                raise RuntimeError(
                    f"{path}: a critique-conditioned RM needs a critic backend; none is configured"
                )
            norm = loaded.meta.get(NORM_KEY) if os.environ.get("REWARDLAB_NORMALIZE") == "1" else None
            if os.environ.get("REWARDLAB_NORMALIZE") == "1" and norm is None:
                raise RuntimeError(
                    f"{path}: REWARDLAB_NORMALIZE=1 but no normalization is stored with the model"
                )
            tok = os.environ.get("REWARDLAB_POLICY_TOKENIZER")
            _state["scorer"] = Scorer(loaded, norm)
            _state["template"] = PolicyTemplate.load(tok) if tok else None
            _state["scalarizer"] = os.environ.get("REWARDLAB_SCALARIZER") or None
        return _state["scorer"], _state["template"], _state["scalarizer"]


def reward_func(
    queries: list[str], prompts: list[str] | None = None, labels: Any = None, **kwargs: Any
) -> dict:
    """Rewards of OpenRLHF queries (prompt + response with the policy's template):
    ``{"rewards": (N,), "scores": (N,), "extra_logs": {name: (N,)}}`` float tensors."""
    from rewardlab.serve.scoring import Sample, extra_logs
    from rewardlab.serve.template import split_sample

    scorer, template, scalarizer = _scorer()
    prompts = prompts or [None] * len(queries)
    samples = [
        Sample(*split_sample(template, q, p), scalarizer) for q, p in zip(queries, prompts, strict=True)
    ]
    with _lock:
        scored = scorer(samples) if samples else []
    rewards = torch.tensor([s.reward for s in scored], dtype=torch.float32)
    logs = extra_logs(scorer.loaded.objectives, scored)
    return {
        "rewards": rewards,
        "scores": rewards.clone(),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in logs.items()},
    }
