"""What the rest of rewardlab calls: load a saved model's uncertainty (its Laplace posterior, else
its ensemble), score responses with a mean and a standard deviation, add uncertainty metrics to an
evaluation, and pick best-of-n with a penalty."""

from __future__ import annotations

from pathlib import Path

import torch

from rewardlab.bayes.bon import Penalty, penalized_score
from rewardlab.bayes.ensemble import Ensemble, load_ensemble
from rewardlab.bayes.laplace import Posterior, load_posterior
from rewardlab.bayes.uncertainty import prediction_metrics
from rewardlab.data.schema import PreferencePair, Prompt

Predictive = Posterior | Ensemble


def load_predictive(path: str | Path) -> Predictive | None:
    """The model's Laplace posterior if it has one, else its ensemble, else ``None``."""
    return load_posterior(path) or load_ensemble(path)


def _require(path: str | Path) -> Predictive:
    pred = load_predictive(path)
    if pred is None:
        raise FileNotFoundError(
            f"{path}: no posterior or ensemble beside the model; "
            f"run `rewardlab laplace --model {path} --data PAIRS` first"
        )
    return pred


def score_uncertainty(
    path: str | Path, prompts: list[Prompt], responses: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean and standard deviation of each response's reward, each (N, K).

    Raises ``FileNotFoundError`` when the model has neither a posterior nor an ensemble.
    """
    mean, var = _require(path).predict(prompts, responses)
    return mean, var.clamp_min(0).sqrt()


def uncertainty_metrics(path: str | Path, pairs: list[PreferencePair]) -> dict | None:
    """``{"error_auroc", "bayes": {accuracy, ece, nll, brier, error_auroc, ...}}`` for a model with a
    posterior (or ensemble), ``None`` otherwise. ``error_auroc``: AUROC of the std of
    Δ = r_c − r_r for flagging the pairs the model gets wrong."""
    pred = load_predictive(path)
    if pred is None:
        return None
    m = prediction_metrics(pred.preference_pairs(pairs))
    kind = "laplace" if isinstance(pred, Posterior) else "ensemble"
    return {"error_auroc": m["error_auroc"], "uncertainty_source": kind, "bayes": m}


def best_of_n(
    path: str | Path,
    prompts: list[Prompt],
    candidates: list[list[str]],
    k: float = 1.0,
    penalty: Penalty | str = Penalty.STD,
    scalarizer: str | None = None,
) -> list[dict]:
    """Per prompt, the candidate maximising μ − k·σ (or μ − k·σ²) with the scores behind it.

    k = 0 uses the plain MAP model when there is no posterior or ensemble. A multi-objective model's
    μ and σ are those of its scalarized reward (``scalarizer`` or its default; see
    :func:`rewardlab.objectives.scalarize_std`).
    """
    from rewardlab.objectives import scalarize, scalarize_std

    flat_p = [p for p, cs in zip(prompts, candidates, strict=True) for _ in cs]
    flat_r = [r for cs in candidates for r in cs]
    pred = load_predictive(path) if k else None
    if k and pred is None:
        _require(path)
    if pred is None:
        from rewardlab.models.reward_model import RewardModel

        rm = RewardModel.load(path)
        mean = scalarize(rm, rm.score(flat_p, flat_r), scalarizer)
        var = torch.zeros_like(mean)
    else:
        m, v = pred.predict(flat_p, flat_r)
        mean, var = m[:, 0], v[:, 0]
        if pred.rm.cfg.num_objectives > 1:
            mean, std = scalarize_std(pred.rm, m, v.clamp_min(0).sqrt(), scalarizer)
            var = std**2
    score = penalized_score(mean, var, k, penalty)
    out, start = [], 0
    for prompt, cs in zip(prompts, candidates, strict=True):
        sl = slice(start, start + len(cs))
        best = int(torch.argmax(score[sl]))
        out.append(
            {
                "prompt": prompt,
                "best_index": best,
                "best_response": cs[best],
                "score": score[sl].tolist(),
                "reward": mean[sl].tolist(),
                "reward_std": var[sl].sqrt().tolist(),
            }
        )
        start += len(cs)
    return out
