"""Forward passes of least padded work: how ``RewardModel.score_encoded`` and the server's worker
cut length-varying sequences into batches.

A forward pass over ``rows`` sequences padded to the longest, ``longest`` tokens, costs about
``overhead + rows · longest`` token-times: the padded tokens, plus a fixed cost per pass (Python
dispatch of every module, kernel launches), expressed in tokens. On the 2-core CPU this project
measures on, a MiniLM RM costs ~175 µs per padded token and ~8 ms per pass, i.e. ~48 tokens
(docs/notes/serve.md). One pass over a random mix pads every row to the longest (with the
bundled texts, ~1.9× the real tokens at 12 rows); one pass per row pays the fixed cost N times;
greedy budget batches of the sorted lengths pad the short tail (0.875 of the tokens real on 300
bundled texts, against 0.98 planned).

:func:`plan_batches` sorts the samples by length and splits them into contiguous runs with the
smallest total cost (dynamic programming, exact for this cost), each run within a padded-token
budget and a row limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PlanConfig:
    """The cost model and limits of :func:`plan_batches`."""

    overhead_tokens: float = 48.0  # fixed cost of one forward pass, in padded tokens
    max_tokens: int = 8192  # most padded tokens in one pass (a single longer row still runs)
    max_rows: int = 64  # most rows in one pass

    def __post_init__(self) -> None:
        if self.overhead_tokens < 0:
            raise ValueError(f"overhead_tokens: must be >= 0, got {self.overhead_tokens}")
        for name in ("max_tokens", "max_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


def pass_cost(lengths: Sequence[int], cfg: PlanConfig) -> float:
    """Modelled cost of one pass over ``lengths`` (padded tokens + the fixed cost)."""
    if not lengths:
        return 0.0
    return cfg.overhead_tokens + len(lengths) * max(lengths)


def plan_batches(lengths: Sequence[int], cfg: PlanConfig | None = None) -> list[list[int]]:
    """Indices of ``lengths`` grouped into forward passes, shortest first, minimising the total
    :func:`pass_cost` under ``cfg.max_tokens`` padded tokens and ``cfg.max_rows`` rows per pass.
    Every index appears exactly once; within a pass the indices are in ascending length."""
    cfg = cfg or PlanConfig()
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest plan of the j shortest
    cut = [0] * (n + 1)  # cut[j]: where the last pass of that plan begins
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(j - 1, max(j - cfg.max_rows, 0) - 1, -1):
            rows = j - i
            if rows > 1 and rows * longest > cfg.max_tokens:
                break  # more rows only add tokens
            cost = best[i] + cfg.overhead_tokens + rows * longest
            if cost <= best[j]:  # a tie: the longer pass (fewer passes)
                best[j], cut[j] = cost, i
    passes, j = [], n
    while j > 0:
        passes.append(order[cut[j] : j])
        j = cut[j]
    return passes[::-1]
