"""How the server's worker cuts the samples it took from the queue into forward passes.

The window's samples are cut into passes by :func:`rewardlab.models.pass_plan.plan_batches` (least
padded tokens + per-pass cost, the same planner offline scoring uses), or packed into one pass;
:func:`passes_now` picks, by the :class:`BatchPolicy`, which of them the worker scores next.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from rewardlab.models.pass_plan import PlanConfig, pass_cost, plan_batches

__all__ = ["BatchPolicy", "PlanConfig", "pass_cost", "passes_now", "plan_batches"]


class BatchPolicy(str, Enum):
    """Which passes the worker scores from the oldest queued samples (see :func:`passes_now`)."""

    PLANNED = "planned"  # the planned pass holding the oldest sample; re-planned after every pass
    TAKE = "take"  # every planned pass of the window, shortest first
    SORTED = "sorted"  # the whole window as one length-sorted batch (the design planned replaced)
    PACKED = "packed"  # the whole window as one packed pass (encoders: no padding between samples)


def passes_now(
    lengths: Sequence[int], policy: BatchPolicy | str, cfg: PlanConfig | None = None
) -> list[list[int]]:
    """The passes to score next from a window of queued samples, ``lengths`` oldest first.

    ``planned``: the one pass of :func:`plan_batches` that holds the oldest sample (so it is
    never overtaken for long; the rest wait for the next plan, made with newer arrivals);
    ``take``: every planned pass; ``sorted``: one pass of the whole window, by length;
    ``packed``: one pass of the whole window, oldest first (the scorer packs it into rows, see
    :mod:`rewardlab.models.encoder_pack`; so nobody is overtaken and lengths need not match)."""
    policy = BatchPolicy(policy)
    if not lengths:
        return []
    if policy == BatchPolicy.PACKED:
        return [list(range(len(lengths)))]
    if policy == BatchPolicy.SORTED:
        return [sorted(range(len(lengths)), key=lambda i: (lengths[i], i))]
    passes = plan_batches(lengths, cfg)
    return passes if policy == BatchPolicy.TAKE else [next(p for p in passes if 0 in p)]
