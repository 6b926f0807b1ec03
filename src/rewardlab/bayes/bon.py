"""Best-of-n selection with an uncertainty penalty, and its expected value over random subsets.

Given n candidates with reward means μ_i and variances v_i, choose

    argmax_i  μ_i − k·√v_i   (``penalty="std"``)   or   argmax_i  μ_i − k·v_i   (``penalty="var"``),

k = 0 being plain best-of-n. Ties go to the lowest index. Gao et al. (2022) measure best-of-n
against the KL from the policy, KL_bon(n) = log n − (n − 1)/n; :func:`expected_best_of_n` gives the
exact expected gold reward of the choice over all n-subsets of N ≥ n samples (their unbiased
estimator): with samples ranked by the selection score, sample of rank j (1 = lowest) is chosen
from a random n-subset with probability C(j − 1, n − 1) / C(N, n).
"""

from __future__ import annotations

import math
from enum import Enum

import torch


class Penalty(str, Enum):
    """How the uncertainty enters the selection score."""

    STD = "std"  # μ − k·σ
    VAR = "var"  # μ − k·σ²


def penalized_score(
    mean: torch.Tensor, var: torch.Tensor, k: float = 1.0, penalty: Penalty | str = Penalty.STD
) -> torch.Tensor:
    """Selection score μ − k·σ or μ − k·σ² (same shape as ``mean``)."""
    penalty = Penalty(penalty)
    u = var.clamp_min(0).sqrt() if penalty == Penalty.STD else var.clamp_min(0)
    return mean - k * u


def select_best(
    mean: torch.Tensor, var: torch.Tensor | None = None, k: float = 0.0, penalty: Penalty | str = Penalty.STD
) -> torch.Tensor:
    """Index of the chosen candidate per prompt: ``mean``/``var`` (..., n) → (...,)."""
    score = mean if var is None or k == 0 else penalized_score(mean, var, k, penalty)
    return torch.argmax(score, dim=-1)


def kl_best_of_n(n: int) -> float:
    """KL(best-of-n ‖ policy) = log n − (n − 1)/n (Gao et al. 2022; Stiennon et al. 2020)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return math.log(n) - (n - 1) / n


def expected_best_of_n(score: torch.Tensor, gold: torch.Tensor, n: int) -> torch.Tensor:
    """E[gold of the argmax-``score`` candidate] over uniformly random n-subsets of the N samples.

    ``score``/``gold``: (..., N) → (...,). Score ties are broken by sample order (stable sort).
    """
    big_n = score.shape[-1]
    if not 1 <= n <= big_n:
        raise ValueError(f"n must lie in [1, {big_n}]")
    order = torch.argsort(score, dim=-1, stable=True)  # ascending: rank j = position + 1
    gold_sorted = torch.gather(gold.double(), -1, order)
    j = torch.arange(1, big_n + 1, dtype=torch.float64)
    log_w = _log_comb(j - 1, n - 1) - _log_comb(torch.tensor(float(big_n)), n)
    w = torch.where(j >= n, log_w.exp(), torch.zeros_like(j))  # P(rank j is the subset max)
    return (gold_sorted * w).sum(-1)


def _log_comb(a: torch.Tensor, b: int) -> torch.Tensor:
    """log C(a, b) (−inf where a < b)."""
    b_t = torch.tensor(float(b), dtype=torch.float64)
    a = a.double()
    out = torch.lgamma(a + 1) - torch.lgamma(b_t + 1) - torch.lgamma((a - b_t).clamp_min(0) + 1)
    return torch.where(a >= b_t, out, torch.full_like(out, -math.inf))
