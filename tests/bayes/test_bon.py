"""Pure best-of-n selection and its exact expectation over random subsets."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rewardlab.bayes import (
    best_of_n_gains,
    bootstrap_curves,
    curve_drop,
    expected_best_of_n,
    kl_best_of_n,
    penalized_score,
    select_best,
)


def test_penalized_selection_std_and_var():
    mean = torch.tensor([[1.0, 0.9, 0.2]])
    var = torch.tensor([[1.0, 0.04, 0.0]])
    assert select_best(mean).tolist() == [0]
    assert select_best(mean, var, k=1.0, penalty="std").tolist() == [1]  # 0.0, 0.7, 0.2
    assert select_best(mean, var, k=1.0, penalty="var").tolist() == [1]  # 0.0, 0.86, 0.2
    assert select_best(mean, var, k=10.0, penalty="std").tolist() == [2]
    torch.testing.assert_close(penalized_score(mean, var, 2.0, "std"), torch.tensor([[-1.0, 0.5, 0.2]]))
    torch.testing.assert_close(penalized_score(mean, var, 2.0, "var"), torch.tensor([[-1.0, 0.82, 0.2]]))
    with pytest.raises(ValueError):
        penalized_score(mean, var, 1.0, "quantile")


def test_ties_go_to_the_first_candidate():
    assert select_best(torch.tensor([0.5, 0.5, 0.1])).item() == 0


def test_kl_best_of_n():
    assert kl_best_of_n(1) == 0.0
    assert kl_best_of_n(64) == pytest.approx(math.log(64) - 63 / 64)
    with pytest.raises(ValueError):
        kl_best_of_n(0)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_expected_best_of_n_matches_enumeration(n):
    g = torch.Generator().manual_seed(n)
    score, gold = torch.randn(2, 6, generator=g), torch.randn(2, 6, generator=g)
    got = expected_best_of_n(score, gold, n)
    for row in range(2):
        subsets = list(itertools.combinations(range(6), n))
        want = sum(float(gold[row, max(s, key=lambda i: score[row, i])]) for s in subsets) / len(subsets)
        assert float(got[row]) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert expected_best_of_n(score, gold, 1).tolist() == pytest.approx(gold.double().mean(-1).tolist())


def test_gains_start_at_zero_and_match_the_subset_mean():
    gen = torch.Generator().manual_seed(0)
    score, gold = torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen)
    gains = best_of_n_gains(score, gold, [1, 2, 6])
    torch.testing.assert_close(gains[:, 0], torch.zeros(5, dtype=torch.float64))
    # n = N: the argmax of the score over all samples, minus the mean gold
    want = gold.gather(1, score.argmax(1, keepdim=True))[:, 0].double() - gold.double().mean(1)
    torch.testing.assert_close(gains[:, 2], want)


def test_curve_drop_is_peak_minus_end():
    assert curve_drop(torch.tensor([0.0, 0.3, 0.5, 0.2])).item() == pytest.approx(0.3)
    assert curve_drop(torch.tensor([0.0, 0.1, 0.2])).item() == 0.0


def test_bootstrap_curves_pairs_methods_and_covers_the_mean():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(200, 4, generator=gen)
    gains = {
        "ref": base,
        "same": base.clone(),
        "better": base + 0.5 + 0.1 * torch.randn(200, 4, generator=gen),
    }
    out = bootstrap_curves(gains, "ref", n_boot=300)
    for name, r in out.items():
        for m, (lo, hi) in zip(r["mean"], r["ci"], strict=True):
            assert lo <= m <= hi, name
    assert out["same"]["diff"] == [0.0] * 4 and out["same"]["diff_ci"] == [[0.0, 0.0]] * 4  # paired
    assert all(lo > 0.4 for lo, _ in out["better"]["diff_ci"])  # a shift of 0.5 is seen at every n
    assert out["ref"]["drop"] == pytest.approx(float(curve_drop(base.mean(0))))
