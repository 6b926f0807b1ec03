"""Scalarizers: K per-objective rewards → one reward (MORLAIF, Williams 2024).

Every scalarizer is a pure, vectorised function ``f(z, std=None, **params)`` over rewards
``z`` (N, K) that were first normalised per objective (see :func:`rewardlab.objectives.scalarize`),
returning (N,). ``std`` (N, K) is an optional per-objective predictive standard deviation (from a
Laplace posterior or an ensemble), on the same normalised scale; only ``uncertainty`` reads it.
Register new ones with ``@SCALARIZERS.register("name")``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from rewardlab.registry import Registry

Scalarizer = Callable[..., torch.Tensor]
SCALARIZERS: Registry[Scalarizer] = Registry("scalarizer")


@SCALARIZERS.register("weighted_sum")
def weighted_sum(z: torch.Tensor, std: torch.Tensor | None = None, *, weights: list[float] | None = None):
    """s = Σ_k w_k·z_k; default w_k = 1/K (the mean). Weights may be negative (e.g. sycophancy) and
    can be fitted by logistic regression (:func:`rewardlab.objectives.fit_weights`)."""
    k = z.shape[-1]
    w = torch.full((k,), 1.0 / k) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (k,):
        raise ValueError(f"weighted_sum: {w.numel()} weights for {k} objectives")
    return z @ w.to(z)


@SCALARIZERS.register("worst_case")
def worst_case(z: torch.Tensor, std: torch.Tensor | None = None) -> torch.Tensor:
    """s = min_k z_k (the worst objective decides)."""
    return z.min(dim=-1).values


@SCALARIZERS.register("soft_min")
def soft_min(z: torch.Tensor, std: torch.Tensor | None = None, *, temperature: float = 1.0) -> torch.Tensor:
    """s = −τ·log((1/K)·Σ_k exp(−z_k/τ)): the worst case as τ → 0, the mean as τ → ∞."""
    if temperature <= 0:
        raise ValueError(f"soft_min: temperature must be > 0, got {temperature}")
    return -temperature * (torch.logsumexp(-z / temperature, dim=-1) - math.log(z.shape[-1]))


@SCALARIZERS.register("uncertainty")
def uncertainty_weighted(
    z: torch.Tensor, std: torch.Tensor | None = None, *, lam: float = 1.0
) -> torch.Tensor:
    """s = mean_k z_k − λ·√(var_k z_k + mean_k σ_k²).

    The square root is the standard deviation of the reward of an objective drawn uniformly, when
    objective k's reward has posterior mean z_k and standard deviation σ_k (law of total variance:
    spread across objectives plus the mean posterior variance); without ``std`` it is the spread
    across objectives alone (population variance).
    """
    var = z.var(dim=-1, unbiased=False)
    if std is not None:
        var = var + (std**2).mean(dim=-1)
    return z.mean(dim=-1) - lam * var.sqrt()


@SCALARIZERS.register("nash")
def nash(z: torch.Tensor, std: torch.Tensor | None = None) -> torch.Tensor:
    """s = Σ_k log σ(z_k) = log Π_k σ(z_k): the Nash product of per-objective win probabilities
    (against a response at the objective's mean reward)."""
    return F.logsigmoid(z).sum(dim=-1)


@SCALARIZERS.register("lower_quantile")
def lower_quantile(z: torch.Tensor, std: torch.Tensor | None = None, *, q: float = 0.25) -> torch.Tensor:
    """s = the q-quantile of z_1..z_K (linear interpolation between order statistics; q = 0 is the
    worst case, q = ½ the median)."""
    if not 0 <= q <= 1:
        raise ValueError(f"lower_quantile: q must lie in [0, 1], got {q}")
    return torch.quantile(z, q, dim=-1)


def get_scalarizer(name: str) -> Scalarizer:
    """The scalarizer registered as ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in SCALARIZERS:
        raise ValueError(f"unknown scalarizer {name!r}; choose one of {SCALARIZERS.names()}")
    return SCALARIZERS.get(name)


def check_scalarizer(name: str, params: dict) -> None:
    """Validate a scalarizer name and ``{scalarizer: {param: value}}``; ``ValueError`` naming the field."""
    get_scalarizer(name)
    if not isinstance(params, dict):
        raise ValueError("scalarizer_params: expected {scalarizer: {param: value}}")
    for sname, kw in params.items():
        fn = get_scalarizer(sname)
        allowed = {p.name for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY}
        if not isinstance(kw, dict) or set(kw) - allowed:
            raise ValueError(
                f"scalarizer_params.{sname}: expected a mapping with keys from {sorted(allowed)}, got {kw!r}"
            )
