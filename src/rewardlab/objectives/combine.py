"""The one function every consumer (score, evaluate, best-of-n, the server) applies to a model's
(N, K) rewards: normalise each objective by the saved reward scale, then scalarize."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from rewardlab.objectives.scalarizers import get_scalarizer

if TYPE_CHECKING:
    from rewardlab.models.config import ModelConfig


def _cfg(model: Any) -> ModelConfig:
    return getattr(model, "cfg", model)


def normalise(
    rewards: torch.Tensor, scale: list[dict[str, float]] | None, std: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z_k = (r_k − μ_k) / s_k and σ_k / s_k with the per-objective scale {mean μ, std s}, (N, K);
    unchanged without a scale."""
    if scale is None:
        return rewards, std
    mu = torch.tensor([s["mean"] for s in scale], dtype=rewards.dtype, device=rewards.device)
    sd = torch.tensor([s["std"] for s in scale], dtype=rewards.dtype, device=rewards.device)
    return (rewards - mu) / sd, (None if std is None else std / sd)


def scalarize(
    model: Any,
    rewards: torch.Tensor,
    name: str | None = None,
    std: torch.Tensor | None = None,
    **params: Any,
) -> torch.Tensor:
    """One reward per response, (N,), from a model's rewards (N, K).

    ``model`` is a ``RewardModel`` or its ``ModelConfig``. K = 1: the reward itself (identity, no
    normalisation). K > 1: rewards are normalised by ``cfg.reward_scale`` and combined by scalarizer
    ``name`` (default ``cfg.scalarizer``) with its saved ``cfg.scalarizer_params[name]``, overridden
    by ``params``. ``std`` (N, K): per-objective predictive standard deviations, if any.
    """
    cfg = _cfg(model)
    if rewards.dim() == 1:
        rewards = rewards[:, None]
    if rewards.shape[-1] != cfg.num_objectives:
        raise ValueError(
            f"rewards have {rewards.shape[-1]} columns; the model has {cfg.num_objectives} objectives"
        )
    if cfg.num_objectives == 1:
        return rewards[:, 0]
    name = name or cfg.scalarizer
    fn = get_scalarizer(name)
    z, s = normalise(rewards, cfg.reward_scale, std)
    return fn(z, s, **{**cfg.scalarizer_params.get(name, {}), **params})


def scalarize_std(
    model: Any, mean: torch.Tensor, std: torch.Tensor | None = None, name: str | None = None, **params: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scalarized predictive mean and standard deviation, each (N,), from per-objective predictive
    means and standard deviations (N, K), by the delta method with independent objectives:
    Var s ≈ Σ_k (∂s/∂r_k)²·σ_k². Without ``std``: ``(scalarize(...), None)``. K = 1 returns
    column 0 of each unchanged.

    The scalarized mean is ``scalarize(model, mean, name, std=std)`` (so ``uncertainty`` sees the
    posterior spread); the gradient is taken through the same function.
    """
    if std is None:
        return scalarize(model, mean, name, **params), None
    if _cfg(model).num_objectives == 1:
        return mean.reshape(len(mean), -1)[:, 0], std.reshape(len(std), -1)[:, 0]
    m = mean.detach().double().requires_grad_(True)
    sd = std.double().clamp_min(0)
    with torch.enable_grad():
        s = scalarize(model, m, name, std=sd, **params)
        (g,) = torch.autograd.grad(s.sum(), m)
    return s.detach().to(mean.dtype), (g**2 * sd**2).sum(-1).sqrt().to(mean.dtype)
