"""The GLM functional variance v = J Σ Jᵀ of one output, per weight block, for many prior precisions.

laplace-torch's ``functional_variance`` for KFAC rotates every Jacobian block into the eigenbasis,
scales it, rotates it back and multiplies by J again. For one output the same number is a sum of
squares in the eigenbasis: with block b's precision (Q₁ ⊗ Q₂)(Λ₁ ⊗ Λ₂ + δ_b)(Q₁ ⊗ Q₂)ᵀ
(laplace-torch's ``KronDecomposed``; J_b reshaped to its (p₁, p₂) matrix as there),

    v = Σ_b Σ_ij (Q₁ᵀ J_b Q₂)²_ij / (λ₁ᵢ λ₂ⱼ + δ_b)        (damped: (λ₁ᵢ + √δ_b)(λ₂ⱼ + √δ_b))

— half the matrix products, each block's share for free, and the rotated squares reused for any δ
(a prior-precision sweep costs one pass). For a diagonal posterior v = Σ_p J_p² / (h_p + δ_p).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RotatedJacobians:
    """Squared Jacobians in the posterior's eigenbasis, per block: ``squares[b]`` (n, p_b) and
    ``eigen[b]`` (p_b,) the curvature eigenvalues (diagonal: the GGN diagonal), ``damped[b]``
    whether δ enters as (λ₁ + √δ)(λ₂ + √δ) (laplace-torch's damping), ``outer[b]`` the factor
    eigenvalues (λ₁, λ₂) of a damped Kronecker block."""

    squares: list[torch.Tensor]
    eigen: list[torch.Tensor]
    outer: list[tuple[torch.Tensor, torch.Tensor] | None]
    damped: bool
    deltas: list[torch.Tensor]  # the posterior's own prior precision per block: (1,) or (p_b,)

    def blocks(self, prior: float | None = None) -> torch.Tensor:
        """Per-block variances (n, B), at the posterior's prior or at a scalar ``prior`` λ."""
        cols = []
        for sq, lam, out, own in zip(self.squares, self.eigen, self.outer, self.deltas, strict=True):
            d = own if prior is None else torch.full_like(own, prior)
            if self.damped and out is not None:
                denom = torch.outer(out[0] + d.sqrt(), out[1] + d.sqrt()).flatten()
            else:
                denom = lam + d
            cols.append(sq @ (1.0 / denom))
        return torch.stack(cols, dim=1)

    def variance(self, prior: float | None = None) -> torch.Tensor:
        """v (n,) at the posterior's prior or at a scalar ``prior`` λ."""
        return self.blocks(prior).sum(1)


def rotate(la, jd: torch.Tensor) -> RotatedJacobians:
    """Rotate Jacobians ``jd`` (n, P) of one output into the fitted posterior's eigenbasis.

    ``la``: a laplace-torch Kron or diagonal Laplace over exactly these P parameters. The
    eigenvalues include laplace-torch's likelihood/temperature factor; δ is added later."""
    jd = jd.to(la.mean.dtype)
    prec = la.posterior_precision
    if not hasattr(prec, "eigenvectors"):  # diagonal: per-parameter curvature
        sizes = [p.numel() for p in la.params]
        h = torch.split(la._H_factor * la.H, sizes)
        d = torch.split(la.prior_precision_diag, sizes)
        return RotatedJacobians(
            list(torch.split(jd**2, sizes, dim=1)), list(h), [None] * len(sizes), False, list(d)
        )
    squares, eigen, outer, cur = [], [], [], 0
    for ls, qs in zip(prec.eigenvalues, prec.eigenvectors, strict=True):
        if len(ls) == 1:
            p = len(ls[0])
            r = jd[:, cur : cur + p] @ qs[0]  # (n, p): (Qᵀ wᵀ)ᵀ
            squares.append(r**2)
            eigen.append(ls[0])
            outer.append(None)
        else:
            l1, l2 = ls
            p = len(l1) * len(l2)
            w = jd[:, cur : cur + p].reshape(-1, len(l1), len(l2))
            r = qs[0].T @ w @ qs[1]  # (n, p₁, p₂)
            squares.append((r**2).flatten(1))
            eigen.append(torch.outer(l1, l2).flatten())
            outer.append((l1, l2))
        cur += p
    if cur != jd.shape[1]:
        raise ValueError(f"Jacobians have {jd.shape[1]} columns, the posterior {cur} parameters")
    deltas = [d.reshape(1).to(jd) for d in prec.deltas.flatten()]
    return RotatedJacobians(squares, eigen, outer, bool(prec.damping), deltas)


def functional_variance(la, jd: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """v = J Σ Jᵀ (n,) for Jacobians ``jd`` (n, P) of one output, at the posterior's own prior."""
    out = [rotate(la, jd[s : s + chunk]).variance() for s in range(0, len(jd), chunk)]
    return torch.cat(out) if out else jd.new_zeros(0)
