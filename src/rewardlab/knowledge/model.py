"""The interpretable Bradley-Terry model over feature differences, with a Laplace posterior.

Features are standardised with the training responses' mean μ and std s: ``z = (φ − μ) / s``.
The reward is linear, ``r(x) = wᵀ z(x)``, so ``P(a ≻ b) = σ(wᵀ (z_a − z_b))`` with no intercept
(a constant cancels in the difference). ``w`` minimises the L2-regularised logistic loss on the
soft labels y ∈ [0, 1] (and margins m, if any)::

    L(w) = −Σ_i [y_i log σ(u_i) + (1 − y_i) log(1 − σ(u_i))] + λ/2 ‖w‖²,  u_i = wᵀΔz_i − m_i

by Newton's method (the loss is convex). The Laplace posterior is ``N(w*, Σ)`` with
``Σ = (H + λI)⁻¹``, ``H = Σ_i σ(u_i)(1 − σ(u_i)) Δz_i Δz_iᵀ`` — exact closed form for the
Hessian of a linear logistic model. Weights get a standard deviation ``sqrt(Σ_kk)`` and a 95%
interval ``w ± 1.96·std``; a reward gets ``std r(x) = sqrt(zᵀ Σ z)``. The prior precision λ is
fixed, or chosen on a grid by the Laplace evidence
``log p(D|λ) ≈ −L(w*) + d/2·log λ − ½·log det(H + λI)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Z95 = 1.959963984540054
LAMBDA_GRID = tuple(10.0**e for e in (-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3))


def _loss_grad_hess(
    w: torch.Tensor, dz: torch.Tensor, y: torch.Tensor, m: torch.Tensor, lam: float
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """L(w), ∇L, ∇²L of the module docstring's objective; dz (P, D), y and m (P,)."""
    u = dz @ w - m  # (P,)
    nll = torch.nn.functional.binary_cross_entropy_with_logits(u, y, reduction="sum")
    p = torch.sigmoid(u)
    grad = dz.T @ (p - y) + lam * w  # (D,)
    hess = (dz * (p * (1 - p))[:, None]).T @ dz + lam * torch.eye(len(w), dtype=w.dtype)  # (D, D)
    return float(nll) + 0.5 * lam * float(w @ w), grad, hess


def fit_map(
    dz: torch.Tensor, y: torch.Tensor, m: torch.Tensor, lam: float, iters: int = 100
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Newton iterations with step halving: (w*, H + λI at w*, L(w*))."""
    w = torch.zeros(dz.shape[1], dtype=torch.float64)
    loss, grad, hess = _loss_grad_hess(w, dz, y, m, lam)
    for _ in range(iters):
        step = torch.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:
            new = w - t * step
            new_loss, new_grad, new_hess = _loss_grad_hess(new, dz, y, m, lam)
            if new_loss <= loss + 1e-12:
                break
            t /= 2
        converged = abs(loss - new_loss) < 1e-10 * max(1.0, abs(loss))
        w, loss, grad, hess = new, new_loss, new_grad, new_hess
        if converged or float(grad.abs().max()) < 1e-9:
            break
    return w, hess, loss


def log_evidence(loss: float, hess: torch.Tensor, lam: float) -> float:
    """Laplace log marginal likelihood (up to a constant): ``−L(w*) + d/2·log λ − ½·log det(H + λI)``."""
    d = hess.shape[0]
    return -loss + 0.5 * d * math.log(lam) - 0.5 * float(torch.linalg.slogdet(hess)[1])


@dataclass
class LinearBT:
    """A fitted linear BT model over standardised features (see the module docstring)."""

    names: list[str]
    mean: torch.Tensor  # (D,) μ of the raw features
    scale: torch.Tensor  # (D,) s of the raw features (1 where constant)
    weights: torch.Tensor  # (D,) posterior mean w*
    cov: torch.Tensor  # (D, D) posterior covariance Σ
    prior_precision: float

    @classmethod
    def fit(
        cls,
        names: list[str],
        phi_chosen: torch.Tensor,
        phi_rejected: torch.Tensor,
        targets: torch.Tensor,
        margins: torch.Tensor | None = None,
        prior_precision: float | None = None,
    ) -> LinearBT:
        """Fit on raw features (P, D) of chosen and rejected responses and soft targets (P,).
        ``prior_precision=None`` picks λ from :data:`LAMBDA_GRID` by the Laplace evidence."""
        if phi_chosen.shape != phi_rejected.shape or phi_chosen.shape[1] != len(names):
            raise ValueError(f"features must be (P, {len(names)}) for chosen and rejected alike")
        if len(targets) == 0:
            raise ValueError("need at least one training pair")
        both = torch.cat([phi_chosen, phi_rejected]).double()
        mean, scale = both.mean(0), both.std(0, unbiased=False)
        scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
        dz = (phi_chosen.double() - phi_rejected.double()) / scale  # (P, D); μ cancels
        y = targets.double()
        m = torch.zeros_like(y) if margins is None else margins.double()
        grid = LAMBDA_GRID if prior_precision is None else (prior_precision,)
        best = None
        for lam in grid:
            w, hess, loss = fit_map(dz, y, m, lam)
            ev = log_evidence(loss, hess, lam)
            if best is None or ev > best[0]:
                best = (ev, lam, w, hess)
        _, lam, w, hess = best
        cov = torch.linalg.inv(hess)
        return cls(list(names), mean, scale, w, (cov + cov.T) / 2, lam)

    def standardize(self, phi: torch.Tensor) -> torch.Tensor:
        """z = (φ − μ) / s, (N, D)."""
        return (phi.double() - self.mean) / self.scale

    def reward(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and std of r(x) = wᵀz(x) for raw features (N, D): two (N,) tensors."""
        z = self.standardize(phi)
        var = ((z @ self.cov) * z).sum(-1).clamp_min(0)
        return z @ self.weights, var.sqrt()

    def contributions(self, phi_a: torch.Tensor, phi_b: torch.Tensor) -> torch.Tensor:
        """Per feature ``w_k (z_k(a) − z_k(b))`` (D,): they sum to r(a) − r(b)."""
        return self.weights * (phi_a.double() - phi_b.double()) / self.scale

    def weight_table(self) -> list[dict]:
        """One row per feature: weight (per standard deviation of the feature), std, 95% interval."""
        std = self.cov.diagonal().clamp_min(0).sqrt()
        return [
            {
                "feature": n,
                "weight": float(w),
                "std": float(s),
                "low": float(w - Z95 * s),
                "high": float(w + Z95 * s),
            }
            for n, w, s in zip(self.names, self.weights, std, strict=True)
        ]

    def to_dict(self) -> dict:
        """JSON-ready parameters."""
        return {
            "names": self.names,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "cov": self.cov.tolist(),
            "prior_precision": self.prior_precision,
        }

    @classmethod
    def from_dict(cls, d: dict) -> LinearBT:
        """Inverse of :meth:`to_dict`."""
        t = {k: torch.tensor(d[k], dtype=torch.float64) for k in ("mean", "scale", "weights", "cov")}
        return cls(
            list(d["names"]), t["mean"], t["scale"], t["weights"], t["cov"], float(d["prior_precision"])
        )
