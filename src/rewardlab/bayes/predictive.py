"""What the rest of rewardlab calls for uncertainty, over :func:`rewardlab.load`: a saved model's
predictive (its Laplace posterior, else its ensemble), rewards with a standard deviation,
uncertainty metrics for an evaluation, and best-of-n with a penalty."""

from __future__ import annotations

from pathlib import Path

import torch

from rewardlab.bayes.bon import Penalty, penalized_score
from rewardlab.bayes.ensemble import Ensemble
from rewardlab.bayes.laplace import Posterior
from rewardlab.data.schema import PreferencePair, Prompt
from rewardlab.loading import LoadedRM, load

Predictive = Posterior | Ensemble


def _loaded(model: str | Path | LoadedRM, uncertainty: bool = True) -> LoadedRM:
    return model if isinstance(model, LoadedRM) else load(model, uncertainty=uncertainty)


def load_predictive(path: str | Path) -> Predictive | None:
    """The model's Laplace posterior if it has one, else its ensemble, else ``None``."""
    loaded = load(path)
    return loaded.posterior or loaded.ensemble


def score_uncertainty(
    model: str | Path | LoadedRM,
    prompts: list[Prompt],
    responses: list[str],
    critiques: list[str | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean and standard deviation of each response's reward, each (N, K).

    Raises ``FileNotFoundError`` when the model has neither a posterior nor an ensemble.
    """
    s = _loaded(model).score(prompts, responses, critiques, uncertainty=True)
    return s.rewards, s.std


def uncertainty_metrics(model: str | Path | LoadedRM, pairs: list[PreferencePair]) -> dict | None:
    """``{"error_auroc", "bayes": {accuracy, ece, nll, brier, error_auroc, ...}}`` for a model with a
    posterior (or ensemble), ``None`` otherwise. ``error_auroc``: AUROC of the std of
    Δ = r_c − r_r for flagging the pairs the model gets wrong."""
    return _loaded(model).uncertainty_metrics(pairs)


def best_of_n(
    model: str | Path | LoadedRM,
    prompts: list[Prompt],
    candidates: list[list[str]],
    k: float = 1.0,
    penalty: Penalty | str = Penalty.STD,
    scalarizer: str | None = None,
    critiques: list[list[str | None]] | None = None,
) -> list[dict]:
    """Per prompt, the candidate maximising μ − k·σ (or μ − k·σ²) with the scores behind it.

    k = 0 uses the plain MAP model (no posterior or ensemble needed). A multi-objective model's μ
    and σ are those of its scalarized reward (``scalarizer`` or its default; see
    :func:`rewardlab.objectives.scalarize_std`). ``critiques``: one per candidate, for a
    critique-conditioned RM. The model is loaded once.
    """
    loaded = _loaded(model, uncertainty=bool(k))
    flat_p = [p for p, cs in zip(prompts, candidates, strict=True) for _ in cs]
    flat_r = [r for cs in candidates for r in cs]
    flat_c = [c for cs in critiques for c in cs] if critiques is not None else None
    s = loaded.score(flat_p, flat_r, flat_c, uncertainty=bool(k), scalarizer=scalarizer)
    mean = s.reward
    var = s.reward_std**2 if s.reward_std is not None else torch.zeros_like(mean)
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
