"""What a multi-objective model learns after training: each objective's reward scale (to
normalise before scalarizing) and, when pairs carry an overall label, weighted-sum weights fitted
by logistic regression."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from rewardlab.data.schema import PreferencePair
from rewardlab.objectives.combine import normalise
from rewardlab.objectives.labels import OVERALL

if TYPE_CHECKING:
    from rewardlab.models.reward_model import RewardModel

log = logging.getLogger(__name__)


def reward_scale(rewards: torch.Tensor) -> list[dict[str, float]]:
    """Per objective {mean, std} of rewards (N, K) (population std; 1 where it is ~0)."""
    mu, sd = rewards.double().mean(0), rewards.double().std(0, unbiased=False)
    sd = torch.where(sd > 1e-8, sd, torch.ones_like(sd))
    return [{"mean": float(m), "std": float(s)} for m, s in zip(mu, sd, strict=True)]


def fit_weights(
    z_chosen: torch.Tensor, z_rejected: torch.Tensor, targets: torch.Tensor, l2: float = 1e-3
) -> list[float]:
    """Weighted-sum weights w (K,) by logistic regression on pairs (no intercept):
    P(chosen ≻ rejected) = σ(w·Δ), Δ = z_c − z_r (N, K); minimises the soft-label cross-entropy
    −mean_i[y_i·log σ(w·Δ_i) + (1 − y_i)·log σ(−w·Δ_i)] + (λ/2)‖w‖² with L-BFGS. A weight may be
    negative (an objective that predicts the overall label backwards)."""
    delta = (z_chosen - z_rejected).double()
    y = targets.double()
    w = torch.zeros(delta.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logit = delta @ w
        loss = -(y * F.logsigmoid(logit) + (1 - y) * F.logsigmoid(-logit)).mean() + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return [float(x) for x in w.detach()]


def _score_pairs(rm: RewardModel, pairs: list[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
    from rewardlab.evaluate.evaluator import score_pairs

    return score_pairs(rm, pairs)


def calibrate(rm: RewardModel, pairs: list[PreferencePair], label_key: str = OVERALL) -> RewardModel:
    """Set ``rm.cfg.reward_scale`` from the rewards of every training response (chosen and
    rejected) and, when some pairs carry ``labels[label_key]``, fit the weighted-sum weights on
    them (saved under ``scalarizer_params["weighted_sum"]``). K = 1: nothing to do."""
    if rm.cfg.num_objectives == 1:
        return rm
    rc, rr = _score_pairs(rm, pairs)  # (N, K) each
    rm.cfg.reward_scale = reward_scale(torch.cat([rc, rr]))
    idx = [i for i, p in enumerate(pairs) if label_key in p.labels]
    if len(idx) >= 2:
        zc, _ = normalise(rc[idx], rm.cfg.reward_scale)
        zr, _ = normalise(rr[idx], rm.cfg.reward_scale)
        y = torch.tensor([pairs[i].labels[label_key] for i in idx])
        weights = fit_weights(zc, zr, y)
        rm.cfg.scalarizer_params = {**rm.cfg.scalarizer_params, "weighted_sum": {"weights": weights}}
        log.info("weighted_sum weights fitted on %d pairs with labels[%r]: %s", len(idx), label_key, weights)
    return rm


def save_config(rm: RewardModel, out: str | Path) -> Path:
    """Rewrite the model config in ``out/rewardlab.json`` (objectives, reward scale, scalarizer)
    without re-saving the weights."""
    from rewardlab.models.reward_model import META

    path = Path(out) / META
    meta = json.loads(path.read_text())
    meta["model"] = json.loads(json.dumps(asdict(rm.cfg)))
    path.write_text(json.dumps(meta, indent=2))
    return path
