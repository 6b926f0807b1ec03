"""Uncertainty quality: pure metrics, and a report comparing MAP, Laplace and ensemble predictors.

A pair predictor gives, per pair, the mean μ_Δ and variance v_Δ of Δ = r_c − r_r and the
probability p = P(chosen ≻ rejected). The pair is right when μ_Δ > 0 (a tie is wrong).

- calibration of p: accuracy, ECE, NLL, Brier (``rewardlab.evaluate.metrics``);
- error-detection AUROC: how well the uncertainty √v_Δ ranks wrong pairs above right ones;
- OOD AUROC: how well √v_Δ ranks pairs of a shifted set above the in-distribution set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import brier_score, expected_calibration_error, negative_log_likelihood


@dataclass
class PreferencePrediction:
    """Per pair: ``prob`` = P(chosen ≻ rejected), ``mean``/``var`` of Δ = r_c − r_r; all (N,)."""

    prob: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        return self.var.clamp_min(0).sqrt()


class PairPredictor(Protocol):
    """Anything that predicts preferences with uncertainty (Posterior, Ensemble, MapPredictor)."""

    def preference_pairs(self, pairs: list[PreferencePair]) -> PreferencePrediction: ...


def probit_preference(mean: torch.Tensor, var: torch.Tensor) -> PreferencePrediction:
    """P(Δ > 0 in logit space) ≈ σ(μ / √(1 + π v / 8)) for Δ ~ N(μ, v) (MacKay's probit)."""
    mean, var = mean.double(), var.double().clamp_min(0)
    prob = torch.sigmoid(mean / torch.sqrt(1 + math.pi * var / 8))
    return PreferencePrediction(prob, mean, var)


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive), ties counted
    half: the Mann-Whitney U statistic / (n₊ n₋). NaN when one class is empty."""
    scores, labels = scores.double().flatten(), labels.bool().flatten()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    for v in torch.unique(scores):  # average ranks over ties
        m = scores == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def error_auroc(mean: torch.Tensor, uncertainty: torch.Tensor) -> float:
    """AUROC of ``uncertainty`` for detecting wrong pairs (μ_Δ ≤ 0); 0.5 = no signal."""
    return auroc(uncertainty, mean <= 0)


def ood_auroc(u_in: torch.Tensor, u_out: torch.Tensor) -> float:
    """AUROC of the uncertainty for telling shifted pairs (positive) from in-distribution ones."""
    return auroc(torch.cat([u_in, u_out]), torch.cat([torch.zeros(len(u_in)), torch.ones(len(u_out))]))


def prediction_metrics(pred: PreferencePrediction, bins: int = 10) -> dict[str, float]:
    """Accuracy, calibration (ECE/NLL/Brier of p), error AUROC of √v_Δ and of 1 − max(p, 1 − p)."""
    p = pred.prob.double()
    conf = torch.maximum(p, 1 - p)
    return {
        "accuracy": float((pred.mean > 0).double().mean()),
        "ece": expected_calibration_error(p, bins),
        "nll": negative_log_likelihood(p),
        "brier": brier_score(p),
        "error_auroc": error_auroc(pred.mean, pred.std),
        "error_auroc_confidence": error_auroc(pred.mean, 1 - conf),
        "mean_std": float(pred.std.mean()),
    }


class MapPredictor:
    """The plain MAP reward model as a pair predictor: p = σ(Δ), zero variance."""

    def __init__(self, rm, objective: int = 0) -> None:
        self.rm, self.objective = rm, objective

    def preference_pairs(self, pairs: list[PreferencePair]) -> PreferencePrediction:
        from rewardlab.evaluate.evaluator import score_pairs

        rc, rr = score_pairs(self.rm, pairs)
        mu = (rc[:, self.objective] - rr[:, self.objective]).double()
        return PreferencePrediction(torch.sigmoid(mu), mu, torch.zeros_like(mu))


def uncertainty_report(
    predictors: dict[str, PairPredictor],
    sets: dict[str, list[PreferencePair]],
    in_distribution: str | None = None,
) -> dict[str, dict]:
    """Metrics of every predictor on every set, plus OOD AUROC of each other set against
    ``in_distribution`` (default: the first set). Returns ``{predictor: {set: metrics}}``."""
    in_name = in_distribution or next(iter(sets))
    report: dict[str, dict] = {}
    for name, predictor in predictors.items():
        preds = {s: predictor.preference_pairs(pairs) for s, pairs in sets.items()}
        rows = {s: {"n": len(sets[s]), **prediction_metrics(p)} for s, p in preds.items()}
        for s, p in preds.items():
            if s != in_name:
                rows[s]["ood_auroc"] = ood_auroc(preds[in_name].std, p.std)
        report[name] = rows
    return report
