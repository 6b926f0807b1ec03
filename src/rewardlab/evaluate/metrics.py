"""Pure metrics over reward margins Δ = r_chosen − r_rejected (a tie is wrong)."""

from __future__ import annotations

import math
import statistics

import torch

# Two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30 (see :func:`t95` beyond).
T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
}  # fmt: skip


def t95(df: int) -> float:
    """t_{0.975, df}: the table up to df 30, then 1.96 + 2.5/df (within 0.002 of the exact
    quantile for df > 30)."""
    if df < 1:
        raise ValueError(f"t95 needs df >= 1, got {df}")
    return T95[df] if df in T95 else 1.96 + 2.5 / df


def pairwise_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """Share of pairs with r_c > r_r strictly; ties count as wrong."""
    return float((r_chosen > r_rejected).float().mean())


def preference_prob(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry P(chosen ≻ rejected) = σ(r_c − r_r)."""
    return torch.sigmoid(r_chosen.double() - r_rejected.double())


def expected_calibration_error(p: torch.Tensor, bins: int = 10) -> float:
    """ECE of P(chosen ≻ rejected) = p for pairs whose true label is "chosen".

    Each pair predicts the side with confidence c = max(p, 1 − p) and is right when p > ½;
    ECE = Σ_b (n_b / N)·|acc_b − conf_b| over ``bins`` equal-width confidence bins on [½, 1].
    """
    conf = torch.maximum(p, 1 - p)
    correct = (p > 0.5).double()
    edges = torch.linspace(0.5, 1.0, bins + 1, dtype=p.dtype)
    idx = torch.bucketize(conf, edges[1:-1], right=True)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += float(m.double().mean() * (correct[m].mean() - conf[m].mean()).abs())
    return ece


def negative_log_likelihood(p: torch.Tensor) -> float:
    """Mean −log P(chosen ≻ rejected)."""
    return float(-torch.log(p.clamp_min(1e-12)).mean())


def brier_score(p: torch.Tensor) -> float:
    """Mean (1 − P(chosen ≻ rejected))²."""
    return float(((1 - p) ** 2).mean())


def length_heuristics(chosen: list[str], rejected: list[str]) -> dict[str, float]:
    """Accuracy of "the longer response wins" and "the shorter wins" (characters; ties wrong)."""
    n = len(chosen)
    longer = sum(len(c) > len(r) for c, r in zip(chosen, rejected, strict=True)) / n
    shorter = sum(len(c) < len(r) for c, r in zip(chosen, rejected, strict=True)) / n
    return {"longer_accuracy": longer, "shorter_accuracy": shorter}


def pair_metrics(r_chosen: torch.Tensor, r_rejected: torch.Tensor, bins: int = 10) -> dict[str, float]:
    """Accuracy, ECE, NLL and Brier for rewards of shape (N,)."""
    p = preference_prob(r_chosen, r_rejected)
    return {
        "accuracy": pairwise_accuracy(r_chosen, r_rejected),
        "ece": expected_calibration_error(p, bins),
        "nll": negative_log_likelihood(p),
        "brier": brier_score(p),
    }


def mean_ci95(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval over runs (seeds, folds):
    x̄ ± t_{0.975, n−1}·s/√n, s the sample standard deviation; half-width 0 for one run."""
    m = statistics.fmean(xs)
    h = t95(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
    return m, h
