"""Per-pair rewards a run keeps for its report (``RUN_DIR/pair_rewards.jsonl``).

One row per evaluated pair: ``{"set", "source", "subset", "chosen", "rejected", "chosen_chars",
"rejected_chars"}`` — the headline rewards (the scalarized reward of a multi-objective RM) and the
response lengths in characters. From them the report draws reliability diagrams (P(chosen ≻
rejected) = σ(r_c − r_r)) and chosen-vs-rejected reward histograms without rescoring anything."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rewardlab.data.schema import PreferencePair

PAIR_REWARDS = "pair_rewards.jsonl"


def score_and_evaluate(rm, pairs: list[PreferencePair], scalarizer: str | None = None) -> tuple[dict, ...]:
    """``(metrics, r_chosen, r_rejected)``: the metrics of
    :func:`rewardlab.evaluate.evaluator.evaluate` (same calls, one scoring pass) and the headline
    rewards it judged, two (N,) tensors."""
    from rewardlab.evaluate.evaluator import evaluate_rewards, objective_accuracy, score_pairs
    from rewardlab.objectives import scalarize

    rc, rr = score_pairs(rm, pairs)  # (N, K) each
    if rm.cfg.num_objectives == 1:
        return evaluate_rewards(pairs, rc, rr), rc[:, 0], rr[:, 0]
    name = scalarizer or rm.cfg.scalarizer
    hc, hr = scalarize(rm, rc, name), scalarize(rm, rr, name)
    result = evaluate_rewards(pairs, hc, hr)
    result["scalarizer"] = name
    result["objectives"] = objective_accuracy(pairs, rc, rr, rm.cfg.objectives)
    return result, hc, hr


def pair_reward_rows(
    set_name: str, pairs: list[PreferencePair], r_chosen: torch.Tensor, r_rejected: torch.Tensor
) -> list[dict]:
    """Rows of :data:`PAIR_REWARDS` for one evaluation set; rewards (N,)."""
    return [
        {
            "set": set_name,
            "source": p.source,
            "subset": p.subset,
            "chosen": round(float(c), 6),
            "rejected": round(float(r), 6),
            "chosen_chars": len(p.chosen),
            "rejected_chars": len(p.rejected),
        }
        for p, c, r in zip(pairs, r_chosen.tolist(), r_rejected.tolist(), strict=True)
    ]


def write_pair_rewards(path: str | Path, rows: list[dict]) -> Path:
    """Write ``rows`` as JSONL to ``path`` (a run directory's :data:`PAIR_REWARDS`)."""
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
