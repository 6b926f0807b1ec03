"""The linear Bradley-Terry model over feature differences and its Laplace posterior."""

from __future__ import annotations

import pytest
import torch

from rewardlab.knowledge.model import LinearBT, fit_map

W_TRUE = torch.tensor([1.5, -1.0, 0.5, 0.0], dtype=torch.float64)
SCALE = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
NAMES = ["a", "b", "c", "d"]


def features(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw features of n pairs (with offsets and scales the model must standardise away) and the
    standardised differences under the empirical scale the model will use."""
    g = torch.Generator().manual_seed(seed)
    pa = torch.randn(n, 4, generator=g, dtype=torch.float64) * SCALE + 3.0
    pb = torch.randn(n, 4, generator=g, dtype=torch.float64) * SCALE + 3.0
    scale = torch.cat([pa, pb]).std(0, unbiased=False)
    return pa, pb, (pa - pb) / scale


def test_recovers_known_weights_from_sampled_labels():
    pa, pb, dz = features(6000, seed=0)
    g = torch.Generator().manual_seed(1)
    y = torch.bernoulli(torch.sigmoid(dz @ W_TRUE), generator=g)  # hard labels drawn from the model
    m = LinearBT.fit(NAMES, pa, pb, y, prior_precision=1e-3)
    table = m.weight_table()
    for row, w in zip(table, W_TRUE, strict=True):
        assert abs(row["weight"] - w) < 4 * row["std"], row  # within 4 posterior std
        assert row["low"] < row["weight"] < row["high"]
        assert 0.01 < row["std"] < 0.1  # 6,000 pairs: tight, not degenerate
    assert (torch.tensor([r["weight"] for r in table]) - W_TRUE).abs().max() < 0.15


def test_soft_labels_are_honoured_exactly():
    """With targets σ(wᵀΔz) the optimum is w itself (up to the tiny prior)."""
    pa, pb, dz = features(500, seed=2)
    m = LinearBT.fit(NAMES, pa, pb, torch.sigmoid(dz @ W_TRUE), prior_precision=1e-8)
    assert torch.allclose(m.weights, W_TRUE, atol=1e-4)
    soft = torch.sigmoid(dz @ W_TRUE)
    hard = LinearBT.fit(NAMES, pa, pb, (soft > 0.5).double(), prior_precision=1.0)  # rounded: separable
    assert hard.weights.norm() > 2 * W_TRUE.norm()


def test_margin_shifts_the_logit():
    """A margin m fits σ(wᵀΔz − m): labels made with m = 1 are recovered only when m is given."""
    pa, pb, dz = features(500, seed=3)
    y = torch.sigmoid(dz @ W_TRUE - 1.0)
    with_m = LinearBT.fit(NAMES, pa, pb, y, torch.ones(500), prior_precision=1e-8)
    assert torch.allclose(with_m.weights, W_TRUE, atol=1e-4)
    assert not torch.allclose(LinearBT.fit(NAMES, pa, pb, y, prior_precision=1e-8).weights, W_TRUE, atol=0.05)


def test_covariance_is_the_inverse_hessian_of_the_regularised_loss():
    pa, pb, dz = features(300, seed=4)
    y = torch.bernoulli(torch.sigmoid(dz @ W_TRUE), generator=torch.Generator().manual_seed(5))
    lam = 2.0
    m = LinearBT.fit(NAMES, pa, pb, y, prior_precision=lam)
    dz_model = (pa - pb) / m.scale

    def loss(w: torch.Tensor) -> torch.Tensor:
        u = dz_model @ w
        nll = torch.nn.functional.binary_cross_entropy_with_logits(u, y, reduction="sum")
        return nll + 0.5 * lam * w @ w

    w = m.weights.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(w), w)
    assert grad.abs().max() < 1e-6  # the MAP
    hess = torch.autograd.functional.hessian(loss, m.weights)
    assert torch.allclose(m.cov, torch.linalg.inv(hess), atol=1e-10)


def test_reward_std_and_contributions():
    pa, pb, dz = features(200, seed=6)
    m = LinearBT.fit(NAMES, pa, pb, torch.sigmoid(dz @ W_TRUE), prior_precision=1.0)
    mean, std = m.reward(pa[:5])
    z = m.standardize(pa[:5])
    assert torch.allclose(mean, z @ m.weights)
    assert torch.allclose(std**2, torch.stack([zi @ m.cov @ zi for zi in z]))
    ra, rb = m.reward(pa[:1])[0], m.reward(pb[:1])[0]
    assert m.contributions(pa[0], pb[0]).sum() == pytest.approx(float(ra - rb))
    again = LinearBT.from_dict(m.to_dict())
    assert torch.equal(again.reward(pa)[0], m.reward(pa)[0])


def test_evidence_prefers_a_strong_prior_on_noise():
    pa, pb, dz = features(200, seed=7)
    noise = torch.bernoulli(torch.full((200,), 0.5), generator=torch.Generator().manual_seed(8))
    signal = torch.bernoulli(torch.sigmoid(3 * dz @ W_TRUE), generator=torch.Generator().manual_seed(9))
    assert (
        LinearBT.fit(NAMES, pa, pb, noise).prior_precision
        > LinearBT.fit(NAMES, pa, pb, signal).prior_precision
    )


def test_separable_data_stays_finite_and_constant_features_are_harmless():
    pa, pb, dz = features(50, seed=10)
    pa[:, 3] = pb[:, 3] = 7.0  # constant feature: scale 1, weight 0
    m = LinearBT.fit(NAMES, pa, pb, torch.ones(50), prior_precision=0.1)
    assert torch.isfinite(m.weights).all() and m.weights[3] == 0
    w, hess, loss = fit_map(
        torch.ones(3, 1, dtype=torch.float64),
        torch.ones(3, dtype=torch.float64),
        torch.zeros(3, dtype=torch.float64),
        1.0,
    )
    assert torch.isfinite(w).all() and loss > 0


def test_bad_shapes_are_refused():
    pa, pb, _ = features(10, seed=11)
    with pytest.raises(ValueError, match=r"\(P, 4\)"):
        LinearBT.fit(NAMES, pa, pb[:, :3], torch.ones(10))
    with pytest.raises(ValueError, match="at least one"):
        LinearBT.fit(NAMES, pa[:0], pb[:0], torch.ones(0))
