"""Evaluate a reward model on preference pairs: overall, per subset / source, and heuristics."""

from __future__ import annotations

from collections import defaultdict

import torch

from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import length_heuristics, pair_metrics, pairwise_accuracy
from rewardlab.models.reward_model import RewardModel
from rewardlab.objectives import label_agreement, label_targets, scalarize


def score_pairs(rm: RewardModel, pairs: list[PreferencePair], **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of chosen and rejected responses: two (N, K) tensors."""
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    critiques = [p.critiques.get("chosen") for p in pairs] + [p.critiques.get("rejected") for p in pairs]
    r = rm.score(prompts, responses, critiques if rm.cfg.critiques else None, **kw)
    return r[: len(pairs)], r[len(pairs) :]


def _groups(pairs: list[PreferencePair], key: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        value = getattr(p, key)
        if value is not None:
            groups[value].append(i)
    return dict(groups)


def evaluate_rewards(
    pairs: list[PreferencePair],
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
) -> dict:
    """Metrics from precomputed rewards (N,) or (N, K); objective 0 is the headline reward."""
    rc = r_chosen if r_chosen.dim() == 1 else r_chosen[:, 0]
    rr = r_rejected if r_rejected.dim() == 1 else r_rejected[:, 0]
    result: dict = {"n": len(pairs), **pair_metrics(rc, rr)}
    result.update(length_heuristics([p.chosen for p in pairs], [p.rejected for p in pairs]))
    for key in ("source", "subset"):
        groups = _groups(pairs, key)
        if groups:
            result[f"by_{key}"] = {
                name: {"n": len(idx), "accuracy": pairwise_accuracy(rc[idx], rr[idx])}
                for name, idx in sorted(groups.items())
            }
    return result


def objective_accuracy(
    pairs: list[PreferencePair], r_chosen: torch.Tensor, r_rejected: torch.Tensor, objectives: list[str]
) -> dict[str, dict]:
    """Per objective {n, accuracy} from rewards (N, K), by the label rule: objective k is judged on
    the pairs whose ``labels`` name it and on every pair without labels; a label < ½ means the
    rejected response is better on k (ties wrong either way)."""
    lt = label_targets(pairs, objectives)
    right = label_agreement(r_chosen, r_rejected, lt.targets, lt.mask)  # (N, K)
    out = {}
    for k, name in enumerate(objectives):
        n = int(lt.mask[:, k].sum())
        out[name] = {"n": n, "accuracy": float(right[:, k].sum()) / n if n else None}
    return out


def evaluate(rm: RewardModel, pairs: list[PreferencePair], scalarizer: str | None = None, **kw) -> dict:
    """Score ``pairs`` with ``rm`` and return :func:`evaluate_rewards`' metrics. A multi-objective
    model's headline is its scalarized reward (``scalarizer`` or the model's default), with
    per-objective accuracies under ``objectives``."""
    rc, rr = score_pairs(rm, pairs, **kw)
    if rm.cfg.num_objectives == 1:
        return evaluate_rewards(pairs, rc, rr)
    name = scalarizer or rm.cfg.scalarizer
    result = evaluate_rewards(pairs, scalarize(rm, rc, name), scalarize(rm, rr, name))
    result["scalarizer"] = name
    result["objectives"] = objective_accuracy(pairs, rc, rr, rm.cfg.objectives)
    return result


HEADLINE = ("n", "accuracy", "longer_accuracy", "shorter_accuracy")


def heldout_accuracy(
    rms: dict[str, RewardModel],
    sets: tuple[str, ...],
    limit: int,
    seed: int = 0,
    scalarizer: str | None = None,
) -> dict[str, dict[str, dict]]:
    """``set → RM name → {n, accuracy, longer_accuracy, shorter_accuracy}`` on a seeded sample of
    ``limit`` pairs of each bundled set (all when smaller): each RM beside both length heuristics
    on the same pairs (a multi-objective RM scalarized by ``scalarizer`` or its own)."""
    import random

    from rewardlab.data.bundled import bundled_set

    out: dict[str, dict[str, dict]] = {}
    for s in sets:
        pairs = bundled_set(s, seed)
        pairs = random.Random(seed).sample(pairs, min(limit, len(pairs)))
        for name, rm in rms.items():
            m = evaluate(rm, pairs, scalarizer=scalarizer)
            out.setdefault(s, {})[name] = {k: m[k] for k in HEADLINE if k in m}
    return out
