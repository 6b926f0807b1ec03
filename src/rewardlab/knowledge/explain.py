"""Why a knowledge or fused RM prefers one response: r(a) − r(b) split into per-feature parts.

For ``r(x) = Σ_k w_k z_k(x)`` the difference is exactly ``Σ_k w_k (z_k(a) − z_k(b))``; each term
is a feature's contribution (a fused model's ``neural.reward`` term is its neural part). The
contribution's posterior std is ``|z_k(a) − z_k(b)|·sqrt(Σ_kk)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from rewardlab.data.schema import Prompt

if TYPE_CHECKING:
    from rewardlab.knowledge.rm import KnowledgeRM


def explain_pair(rm: KnowledgeRM, prompt: Prompt, a: str, b: str) -> dict:
    """``{"reward_a", "reward_b", "delta", "delta_std", "neural", "features": [...]}``, features
    sorted by |contribution|, largest first; each ``{feature, a, b, weight, contribution, std}``
    with raw feature values. ``neural`` is the fused model's neural contribution (``None`` for a
    knowledge RM)."""
    from rewardlab.knowledge.rm import NEURAL_FEATURE

    phi = rm.features([prompt, prompt], [a, b])  # (2, D)
    contrib = rm.bt.contributions(phi[0], phi[1])  # (D,)
    dz = rm.bt.standardize(phi[0:1]) - rm.bt.standardize(phi[1:2])  # (1, D)
    rows = [
        {
            "feature": name,
            "a": float(phi[0, k]),
            "b": float(phi[1, k]),
            "weight": float(rm.bt.weights[k]),
            "contribution": float(contrib[k]),
            "std": float(dz[0, k].abs() * rm.bt.cov[k, k].clamp_min(0).sqrt()),
        }
        for k, name in enumerate(rm.names)
    ]
    rows.sort(key=lambda r: abs(r["contribution"]), reverse=True)
    reward, _ = rm.bt.reward(phi)
    neural = next((r["contribution"] for r in rows if r["feature"] == NEURAL_FEATURE), None)
    return {
        "reward_a": float(reward[0]),
        "reward_b": float(reward[1]),
        "delta": float(reward[0] - reward[1]),
        "delta_std": float(((dz @ rm.bt.cov) * dz).sum().clamp_min(0).sqrt()),
        "prob_a": float(torch.sigmoid(reward[0] - reward[1])),
        "neural": neural,
        "features": rows,
    }
