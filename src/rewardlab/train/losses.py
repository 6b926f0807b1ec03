"""Pure loss functions over reward tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bradley-Terry negative log-likelihood, averaged over the unmasked (pair, objective) entries.

    With Δ_bk = r_c,bk − r_r,bk − m_b (m the optional margin, shape (B,) or (B, K)) and soft target
    p_bk = P(chosen ≻ rejected | objective k) (default 1):

        ℓ_bk = −[p_bk·log σ(Δ_bk) + (1 − p_bk)·log σ(−Δ_bk)]
        L    = Σ_bk M_bk·ℓ_bk / max(1, Σ_bk M_bk)

    with M the optional boolean mask (shape of the rewards; default all ones). A masked entry
    contributes neither loss nor gradient; a fully masked batch gives L = 0 with zero gradient.
    Shapes: rewards (B,) or (B, K); ``targets`` and ``mask`` like the rewards.
    """
    delta = r_chosen - r_rejected
    if margin is not None:
        delta = delta - (margin if margin.dim() == delta.dim() else margin.unsqueeze(-1))
    if targets is None:
        nll = -F.logsigmoid(delta)
    else:
        nll = -(targets * F.logsigmoid(delta) + (1 - targets) * F.logsigmoid(-delta))
    if mask is None:
        return nll.mean()
    mask = mask.to(torch.bool).expand_as(nll)
    return torch.where(mask, nll, torch.zeros_like(nll)).sum() / mask.sum().clamp_min(1)
