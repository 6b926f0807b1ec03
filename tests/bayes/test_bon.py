"""Pure best-of-n selection and its exact expectation over random subsets."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rewardlab.bayes import expected_best_of_n, kl_best_of_n, penalized_score, select_best


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
