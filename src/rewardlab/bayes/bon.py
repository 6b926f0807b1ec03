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


def best_of_n_gains(score: torch.Tensor, gold: torch.Tensor, ns: list[int]) -> torch.Tensor:
    """Per-prompt gold gain of the argmax-``score`` choice over n = 1: (P, N) → (P, len(ns)).

    gain_p(n) = E[gold of the choice among n of prompt p's samples] − mean_j gold_pj (the n = 1
    value), exact over random n-subsets (:func:`expected_best_of_n`)."""
    base = gold.double().mean(-1, keepdim=True)  # (P, 1)
    return torch.stack([expected_best_of_n(score, gold, n) for n in ns], dim=-1) - base


def curve_drop(curve: torch.Tensor) -> torch.Tensor:
    """Over-optimization drop of a curve over n: max_n c(n) − c(n_max) (≥ 0; 0 = never turned down).

    ``curve``: (..., K) → (...,)."""
    return curve.max(-1).values - curve[..., -1]


def bootstrap_curves(
    gains: dict[str, torch.Tensor],
    reference: str,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, list]]:
    """Percentile-bootstrap intervals over prompts for best-of-n curves, paired across methods.

    ``gains``: method → (P, K) per-prompt gains (:func:`best_of_n_gains`, same prompts for every
    method). One resample of the P prompts is shared by all methods, so differences are paired.
    Per method: ``mean`` (K), ``ci`` (K × [lo, hi]), ``drop`` / ``drop_ci`` (:func:`curve_drop`
    of the mean curve) and, against ``reference``, ``diff`` / ``diff_ci`` (mean gain minus the
    reference's at each n) and ``drop_diff`` / ``drop_diff_ci`` (drop minus the reference's drop).
    """
    names = list(gains)
    stack = torch.stack([gains[k].double() for k in names])  # (M, P, K)
    ref = names.index(reference)
    n_prompts = stack.shape[1]
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(n_prompts, (n_boot, n_prompts), generator=gen)  # (B, P)
    boot = stack[:, idx].mean(2)  # (M, B, K): mean curve of each resample
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)

    def interval(x: torch.Tensor) -> list:  # (B, ...) → [..., [lo, hi]]
        return x.quantile(q, dim=0).movedim(0, -1).tolist()

    point = stack.mean(1)  # (M, K)
    drops, boot_drops = curve_drop(point), curve_drop(boot)  # (M,), (M, B)
    out = {}
    for m, name in enumerate(names):
        out[name] = {
            "mean": point[m].tolist(),
            "ci": interval(boot[m]),
            "drop": float(drops[m]),
            "drop_ci": interval(boot_drops[m]),
            "diff": (point[m] - point[ref]).tolist(),
            "diff_ci": interval(boot[m] - boot[ref]),
            "drop_diff": float(drops[m] - drops[ref]),
            "drop_diff_ci": interval(boot_drops[m] - boot_drops[ref]),
        }
    return out
