"""Uncertainty quality: pure metrics, and a report comparing MAP, Laplace and ensemble predictors.

A pair predictor gives, per pair, the mean μ_Δ and variance v_Δ of Δ = r_c − r_r and the
probability p = P(chosen ≻ rejected). The pair is right when μ_Δ > 0 (a tie is wrong).

- calibration of p: accuracy, ECE, NLL, Brier (``rewardlab.evaluate.metrics``);
- error-detection AUROC (``error_auroc``): how well the uncertainty √v_Δ *alone* ranks wrong pairs
  above right ones; ``error_auroc_confidence``: the same for 1 − max(p, 1 − p);
  ``error_auroc_combined``: for P(wrong) = Φ(−|μ_Δ| / √v_Δ), which uses the mean too;
- OOD AUROC: how well √v_Δ ranks pairs of a shifted set above the in-distribution set (beside it,
  the same AUROC for the pair's total response length, a baseline any score must beat);
- :func:`bootstrap_ci`: a percentile bootstrap interval for any of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import brier_score, expected_calibration_error, negative_log_likelihood


@dataclass
class PreferencePrediction:
    """Per pair: ``prob`` = P(chosen ≻ rejected), ``mean``/``var`` of Δ = r_c − r_r; all (N,).
    ``response_var`` (N,), when the predictor gives it: the responses' own variance
    (v_c + v_r) / 2, which the pair's v_Δ = v_c + v_r − 2 cov(r_c, r_r) cancels where the two
    responses are alike."""

    prob: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor
    response_var: torch.Tensor | None = None

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
    half: the Mann-Whitney U statistic / (n₊ n₋) over average ranks. NaN when one class is empty."""
    scores, labels = scores.double().flatten(), labels.bool().flatten()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ordered, order = torch.sort(scores)
    _, inverse, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()  # 1-based rank of each tie group's last member
    ranks = torch.empty_like(scores)
    ranks[order] = (ends - (counts.double() - 1) / 2)[inverse]  # average rank over ties
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def error_auroc(mean: torch.Tensor, uncertainty: torch.Tensor) -> float:
    """AUROC of ``uncertainty`` for detecting wrong pairs (μ_Δ ≤ 0); 0.5 = no signal."""
    return auroc(uncertainty, mean <= 0)


def ood_auroc(u_in: torch.Tensor, u_out: torch.Tensor) -> float:
    """AUROC of the uncertainty for telling shifted pairs (positive) from in-distribution ones."""
    return auroc(torch.cat([u_in, u_out]), torch.cat([torch.zeros(len(u_in)), torch.ones(len(u_out))]))


def wrong_probability(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """P(the sign of μ_Δ is wrong) under Δ ~ N(μ_Δ, v_Δ): Φ(−|μ_Δ| / √v_Δ), in [0, ½].

    It uses the mean and the posterior std together (a pair is doubtful when its margin is small
    *relative to* its std); v_Δ = 0 gives 0 (½ when μ_Δ = 0 too)."""
    mean, std = mean.double(), var.double().clamp_min(0).sqrt()
    z = mean.abs() / std.clamp_min(torch.finfo(torch.float64).tiny)
    p = 0.5 * torch.erfc(z / math.sqrt(2))  # Φ(−z)
    return torch.where((std == 0) & (mean == 0), torch.full_like(p, 0.5), p)


def error_auroc_combined(mean: torch.Tensor, var: torch.Tensor) -> float:
    """Error-detection AUROC of :func:`wrong_probability` (the std *with* the mean)."""
    return error_auroc(mean, wrong_probability(mean, var))


def bootstrap_ci(
    stat: Callable[..., float],
    *groups: tuple[torch.Tensor, ...],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(statistic, lower, upper): ``stat`` on the data and its percentile bootstrap interval.

    Each group is a tuple of aligned tensors (one row per item) resampled together with
    replacement, independently of the other groups (e.g. in- and out-of-distribution pairs);
    ``stat`` receives the tensors of every group in order. Resamples where ``stat`` is NaN (one
    class empty) are skipped."""
    args = [t for g in groups for t in g]
    point = stat(*args)
    gen = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(n_boot):
        sample = []
        for g in groups:
            idx = torch.randint(len(g[0]), (len(g[0]),), generator=gen)
            sample += [t[idx] for t in g]
        v = stat(*sample)
        if not math.isnan(v):
            draws.append(v)
    if not draws:
        return point, float("nan"), float("nan")
    q = torch.tensor(draws, dtype=torch.float64).quantile(
        torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    )
    return point, float(q[0]), float(q[1])


def pair_lengths(pairs: list[PreferencePair]) -> torch.Tensor:
    """Characters of chosen + rejected per pair (N,): the length baseline for OOD detection."""
    return torch.tensor([float(len(p.chosen) + len(p.rejected)) for p in pairs], dtype=torch.float64)


def prediction_metrics(pred: PreferencePrediction, bins: int = 10) -> dict[str, float]:
    """Accuracy, calibration (ECE/NLL/Brier of p), error AUROC of √v_Δ alone, of the confidence
    1 − max(p, 1 − p) and of the combined P(wrong) (:func:`wrong_probability`)."""
    p = pred.prob.double()
    conf = torch.maximum(p, 1 - p)
    return {
        "accuracy": float((pred.mean > 0).double().mean()),
        "ece": expected_calibration_error(p, bins),
        "nll": negative_log_likelihood(p),
        "brier": brier_score(p),
        "error_auroc": error_auroc(pred.mean, pred.std),
        "error_auroc_confidence": error_auroc(pred.mean, 1 - conf),
        "error_auroc_combined": error_auroc_combined(pred.mean, pred.var),
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


def uncertainty_summary(
    preds: dict[str, PreferencePrediction],
    lengths: dict[str, torch.Tensor],
    reference: str | None = None,
    n_boot: int = 1000,
) -> dict[str, dict]:
    """What ``rewardlab evaluate --json`` adds for a model with a posterior (or ensemble), per set.

    ``error_auroc`` (√v_Δ alone), ``error_auroc_confidence`` (1 − max(p, 1 − p)) and
    ``error_auroc_combined`` (:func:`wrong_probability`), each with ``*_ci`` = its 95% bootstrap
    interval, and ``combined_beats_confidence``: whether the paired interval of combined −
    confidence lies above 0 (only then does the combined score count). Every set but
    ``reference`` (default: the first) also gets, with intervals, ``ood_auroc``: the AUROC of the
    responses' own std √((v_c + v_r) / 2) of the set vs the reference's (``ood_score``:
    ``response_std``; the pair std √v_Δ when the predictor gives no response variance,
    ``ood_score``: ``pair_std``), ``ood_auroc_pair`` (√v_Δ), ``ood_auroc_length`` (the pair-length
    baseline, ``lengths`` from :func:`pair_lengths`) and ``ood_reference``."""
    ref = reference or next(iter(preds))
    out: dict[str, dict] = {}
    for name, pred in preds.items():
        mu, var, std = pred.mean.double(), pred.var.double(), pred.std.double()
        p = pred.prob.double()
        conf = 1 - torch.maximum(p, 1 - p)
        row: dict = {}
        for key, fn, args in (
            ("error_auroc", error_auroc, (mu, std)),
            ("error_auroc_confidence", error_auroc, (mu, conf)),
            ("error_auroc_combined", error_auroc_combined, (mu, var)),
        ):
            row[key], lo, hi = bootstrap_ci(fn, args, n_boot=n_boot)
            row[f"{key}_ci"] = [lo, hi]
        _, lo, _ = bootstrap_ci(
            lambda m, v, c: error_auroc_combined(m, v) - error_auroc(m, c), (mu, var, conf), n_boot=n_boot
        )
        row["combined_beats_confidence"] = bool(lo > 0)
        has_resp = pred.response_var is not None and preds[ref].response_var is not None
        if pred.response_var is not None:
            row["error_auroc_response"] = error_auroc(mu, pred.response_var.double().clamp_min(0).sqrt())
        if name != ref:
            ref_std = preds[ref].std.double()
            scores = [("ood_auroc_pair", ref_std, std), ("ood_auroc_length", lengths[ref], lengths[name])]
            if has_resp:
                rs = [x.response_var.double().clamp_min(0).sqrt() for x in (preds[ref], pred)]
                scores.insert(0, ("ood_auroc", *rs))
            for key, u_in, u_out in scores:
                row[key], lo, hi = bootstrap_ci(ood_auroc, (u_in,), (u_out,), n_boot=n_boot)
                row[f"{key}_ci"] = [lo, hi]
            if not has_resp:
                row["ood_auroc"], row["ood_auroc_ci"] = row["ood_auroc_pair"], row["ood_auroc_pair_ci"]
            row["ood_score"] = "response_std" if has_resp else "pair_std"
            row["ood_reference"] = ref
        out[name] = row
    return out
