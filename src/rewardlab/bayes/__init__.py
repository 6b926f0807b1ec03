"""Bayesian reward models: Laplace-LoRA posteriors, LoRA ensembles, uncertainty quality, and
uncertainty-penalised best-of-n (MISSION §2; Yang et al. 2024, arXiv 2402.13210)."""

from __future__ import annotations

from rewardlab.bayes.bon import (
    Penalty,
    best_of_n_gains,
    bootstrap_curves,
    curve_drop,
    expected_best_of_n,
    kl_best_of_n,
    penalized_score,
    select_best,
)
from rewardlab.bayes.config import (
    EnsembleConfig,
    HessianStructure,
    LaplaceConfig,
    PriorMethod,
    PriorStructure,
    Subset,
)
from rewardlab.bayes.uncertainty import (
    MapPredictor,
    PreferencePrediction,
    auroc,
    bootstrap_ci,
    error_auroc,
    error_auroc_combined,
    ood_auroc,
    pair_lengths,
    prediction_metrics,
    probit_preference,
    uncertainty_report,
    uncertainty_summary,
    wrong_probability,
)

# laplace-torch is heavy and optional: modules that need it load on first use.
_LAZY = {
    "Ensemble": "ensemble",
    "load_ensemble": "ensemble",
    "train_ensemble": "ensemble",
    "Posterior": "laplace",
    "fit_laplace": "laplace",
    "load_posterior": "laplace",
    "best_of_n": "predictive",
    "load_predictive": "predictive",
    "score_uncertainty": "predictive",
    "uncertainty_metrics": "predictive",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"rewardlab.bayes.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'rewardlab.bayes' has no attribute {name!r}")


__all__ = [
    "Ensemble",
    "EnsembleConfig",
    "HessianStructure",
    "LaplaceConfig",
    "MapPredictor",
    "Penalty",
    "best_of_n_gains",
    "bootstrap_curves",
    "curve_drop",
    "Posterior",
    "PreferencePrediction",
    "PriorMethod",
    "PriorStructure",
    "Subset",
    "auroc",
    "best_of_n",
    "bootstrap_ci",
    "error_auroc",
    "error_auroc_combined",
    "expected_best_of_n",
    "fit_laplace",
    "kl_best_of_n",
    "load_ensemble",
    "load_posterior",
    "load_predictive",
    "ood_auroc",
    "pair_lengths",
    "penalized_score",
    "prediction_metrics",
    "probit_preference",
    "score_uncertainty",
    "select_best",
    "train_ensemble",
    "uncertainty_metrics",
    "uncertainty_report",
    "uncertainty_summary",
    "wrong_probability",
]
