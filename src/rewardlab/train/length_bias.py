"""Length debiasing for Bradley-Terry training: the RM should learn what length does not explain.

Preference data is confounded with response length, and in opposite directions per source (on HH
harmless the shorter response wins 55% of pairs, on PandaLM the longer wins 65%): an RM trained on
it learns the length preference of its source and carries it to every other set. Two remedies,
chosen by :class:`LengthDebias` (``TrainConfig.length_debias``):

* ``poe`` — product of experts with a fixed length expert (Clark et al. 2019; Shen et al. 2023
  "Loose lips sink ships" for RMs). Per length group g (a pair's ``source``), a one-parameter BT
  model on the log-length gap Δℓ = log(1 + |chosen|) − log(1 + |rejected|) (characters) is fitted
  first: P(chosen ≻ rejected) = σ(a_g·Δℓ). The RM then trains on the product of the two experts,
  i.e. the BT logit r_c − r_r + a_g·Δℓ (an offset, like a margin with the opposite sign). Scoring
  uses r alone: the part of the preference the length expert already explains gives the RM no
  gradient.
* ``balance`` — drop pairs so that within every group the longer response wins exactly half of the
  (length-decided) pairs: the data no longer rewards either length preference.
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from enum import Enum

import torch

from rewardlab.data.schema import PreferencePair

log = logging.getLogger(__name__)


class LengthDebias(str, Enum):
    """How training removes the length preference of its data (module docstring)."""

    OFF = "off"
    POE = "poe"
    BALANCE = "balance"


def length_group(pair: PreferencePair) -> str:
    """The group whose length preference is fitted separately: the pair's source ("" if none)."""
    return pair.source or ""


def log_length_gap(pairs: list[PreferencePair]) -> torch.Tensor:
    """Δℓ_i = log(1 + |chosen_i|) − log(1 + |rejected_i|) in characters; shape (P,), float64."""
    return torch.tensor(
        [math.log1p(len(p.chosen)) - math.log1p(len(p.rejected)) for p in pairs], dtype=torch.float64
    )


def fit_length_expert(gap: torch.Tensor, targets: torch.Tensor, lam: float = 1e-3) -> float:
    """The length expert's coefficient a = argmin_a −Σ_i [y_i log σ(a·Δℓ_i) + (1−y_i) log σ(−a·Δℓ_i)]
    + λ/2·a² (one-parameter Bradley-Terry on the log-length gap, no intercept; Newton's method via
    :func:`rewardlab.knowledge.model.fit_map`). ``gap`` and soft ``targets`` y have shape (P,)."""
    from rewardlab.knowledge.model import fit_map

    w, _, _ = fit_map(
        gap[:, None].double(), targets.double(), torch.zeros(len(gap), dtype=torch.float64), lam
    )
    return float(w[0])


def length_offsets(pairs: list[PreferencePair], targets: torch.Tensor | None = None) -> torch.Tensor:
    """PoE offsets o_i = a_{g(i)}·Δℓ_i (shape (P,)) with a_g fitted per length group on that group's
    pairs; ``targets`` (P,) are the soft preference labels (default 1: chosen is preferred)."""
    gap = log_length_gap(pairs)
    y = torch.ones(len(pairs), dtype=torch.float64) if targets is None else targets.double()
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        groups[length_group(p)].append(i)
    out = torch.zeros(len(pairs), dtype=torch.float64)
    for g, idx in sorted(groups.items()):
        a = fit_length_expert(gap[idx], y[idx])
        out[idx] = a * gap[idx]
        log.info("length expert %r: a = %+.3f over %d pairs", g or "(no source)", a, len(idx))
    return out.float()


def balance_by_length(pairs: list[PreferencePair], seed: int = 0) -> list[PreferencePair]:
    """Keep, per length group, every pair of equal length, and as many pairs where the longer
    response wins as where the shorter wins (a seeded sample of the majority side). Order kept."""
    groups: dict[str, dict[int, list[int]]] = defaultdict(lambda: {1: [], -1: []})
    keep: set[int] = set()
    for i, p in enumerate(pairs):
        d = (len(p.chosen) > len(p.rejected)) - (len(p.chosen) < len(p.rejected))
        if d == 0:
            keep.add(i)
        else:
            groups[length_group(p)][d].append(i)
    rng = random.Random(seed)
    for g, sides in sorted(groups.items()):
        n = min(len(sides[1]), len(sides[-1]))
        for side in (1, -1):
            keep.update(rng.sample(sides[side], n) if len(sides[side]) > n else sides[side])
        log.info("length balance %r: kept %d longer-wins + %d shorter-wins pairs", g or "(no source)", n, n)
    return [p for i, p in enumerate(pairs) if i in keep]
