"""Pure losses and metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from rewardlab.evaluate.metrics import (
    brier_score,
    expected_calibration_error,
    length_heuristics,
    pair_metrics,
    pairwise_accuracy,
)
from rewardlab.train.losses import bradley_terry_loss


def test_bradley_terry_matches_formula():
    rc, rr = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = -(math.log(1 / (1 + math.exp(-1))) + math.log(1 / (1 + math.exp(1)))) / 2
    assert bradley_terry_loss(rc, rr).item() == pytest.approx(expected, rel=1e-6)
    # margin m: −log σ(Δ − m)
    m = torch.tensor([0.5, 0.5])
    assert bradley_terry_loss(rc, rr, m).item() == pytest.approx(
        bradley_terry_loss(rc - 0.5, rr).item(), rel=1e-6
    )
    # soft target ½ is symmetric in Δ
    t = torch.full((2, 1), 0.5)
    a = bradley_terry_loss(rc[:, None], rr[:, None], targets=t)
    b = bradley_terry_loss(rr[:, None], rc[:, None], targets=t)
    assert a.item() == pytest.approx(b.item())


def test_ties_are_wrong():
    assert pairwise_accuracy(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([1.0, 0.0, 3.0])) == pytest.approx(
        1 / 3
    )


def test_ece_brier_known_values():
    p = torch.tensor([0.9, 0.9, 0.2, 0.6], dtype=torch.float64)
    # confidences 0.9, 0.9, 0.8, 0.6; correct 1, 1, 0, 1
    ece = expected_calibration_error(p, bins=5)
    expected = (2 / 4) * abs(1 - 0.9) + (1 / 4) * abs(0 - 0.8) + (1 / 4) * abs(1 - 0.6)
    assert ece == pytest.approx(expected)
    assert brier_score(p) == pytest.approx(((0.1**2) * 2 + 0.8**2 + 0.4**2) / 4)
    assert pair_metrics(torch.tensor([3.0]), torch.tensor([0.0]))["nll"] == pytest.approx(
        -math.log(1 / (1 + math.exp(-3)))
    )


def test_length_heuristics_ties_wrong():
    h = length_heuristics(["aaa", "a", "bb"], ["a", "aaa", "cc"])
    assert h == {"longer_accuracy": pytest.approx(1 / 3), "shorter_accuracy": pytest.approx(1 / 3)}


def test_mean_ci95_on_known_values():
    from rewardlab.evaluate.metrics import mean_ci95

    m, h = mean_ci95([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.303
    assert m == 2.0 and abs(h - 4.303 / 3**0.5) < 1e-12
    assert mean_ci95([0.7]) == (0.7, 0.0)


def test_t95_matches_the_student_t_quantile_at_every_df():
    """The table and its large-df formula against scipy's exact quantile (12 pooled seeds used
    to get the normal 1.96 instead of 2.201)."""
    from scipy.stats import t

    from rewardlab.evaluate.metrics import t95

    for df in range(1, 400):
        assert abs(t95(df) - t.ppf(0.975, df)) < 2e-3, df
    with pytest.raises(ValueError, match="df >= 1"):
        t95(0)
