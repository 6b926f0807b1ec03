"""Pure uncertainty metrics and the report."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_pairs
from rewardlab.bayes import (
    MapPredictor,
    PreferencePrediction,
    auroc,
    error_auroc,
    ood_auroc,
    prediction_metrics,
    uncertainty_report,
)


def test_auroc_known_values():
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), torch.tensor([0, 0, 1, 1])) == 0.0
    assert auroc(torch.tensor([0.5, 0.5, 0.5, 0.5]), torch.tensor([0, 1, 0, 1])) == 0.5
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == 0.75
    assert math.isnan(auroc(torch.tensor([1.0, 2.0]), torch.tensor([1, 1])))


def test_error_and_ood_auroc():
    mean = torch.tensor([2.0, 1.0, -0.5, 0.0])  # last two wrong (a tie is wrong)
    assert error_auroc(mean, torch.tensor([0.1, 0.2, 0.9, 0.8])) == 1.0
    assert ood_auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.3, 0.4])) == 1.0


def test_prediction_metrics():
    pred = PreferencePrediction(
        torch.tensor([0.9, 0.2], dtype=torch.float64), torch.tensor([2.0, -1.0]), torch.tensor([0.1, 1.0])
    )
    m = prediction_metrics(pred)
    assert m["accuracy"] == 0.5 and m["error_auroc"] == 1.0
    assert m["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.2)) / 2)


class _Fake:
    """A predictor whose uncertainty is the response length (only to test the report's plumbing)."""

    def preference_pairs(self, pairs):
        n = torch.tensor([float(len(p.chosen)) for p in pairs])
        return PreferencePrediction(
            torch.full((len(pairs),), 0.6, dtype=torch.float64), torch.ones(len(pairs)), n
        )


def test_uncertainty_report(tiny_rm):
    sets = {"in": make_pairs(6, seed=1), "shifted": make_pairs(4, seed=2)}
    rep = uncertainty_report({"map": MapPredictor(tiny_rm), "fake": _Fake()}, sets)
    assert set(rep) == {"map", "fake"} and set(rep["map"]) == {"in", "shifted"}
    assert "ood_auroc" in rep["fake"]["shifted"] and "ood_auroc" not in rep["fake"]["in"]
    assert rep["map"]["in"]["n"] == 6 and rep["map"]["in"]["mean_std"] == 0.0
