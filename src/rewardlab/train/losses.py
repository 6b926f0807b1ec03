"""Pure loss functions over reward tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bradley-Terry negative log-likelihood, averaged over pairs and objectives.

    With Δ = r_c − r_r − m (m the optional margin, shape (B,) or (B, K)) and soft target
    p = P(chosen ≻ rejected) (default 1):  L = −[p·log σ(Δ) + (1 − p)·log σ(−Δ)].
    Shapes: rewards (B,) or (B, K).
    """
    delta = r_chosen - r_rejected
    if margin is not None:
        delta = delta - (margin if margin.dim() == delta.dim() else margin.unsqueeze(-1))
    if target is None:
        return -F.logsigmoid(delta).mean()
    return -(target * F.logsigmoid(delta) + (1 - target) * F.logsigmoid(-delta)).mean()
