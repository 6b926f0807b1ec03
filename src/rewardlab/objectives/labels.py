"""The label rule shared by every reward-model kind: which soft label each objective trains on.

A pair without ``labels`` is a plain preference: target 1 (chosen ≻ rejected) for every objective.
A pair with ``labels`` ({name: P(chosen ≻ rejected | name)}, e.g. from ``rewardlab judge`` or
``generate rlaif``):

* K > 1 objectives: objective k trains on ``labels[k]``; objectives the row does not name are
  masked (no loss, no gradient) — never guessed.
* K = 1: the target is ``labels[label_key]`` when ``label_key`` is set; otherwise
  ``labels[objective]`` when the row names the single objective, else ``labels["overall"]``, else 1.

No row is refused; rows carrying labels that train nothing are counted and logged once.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import torch

from rewardlab.data.schema import PreferencePair

log = logging.getLogger(__name__)
OVERALL = "overall"


@dataclass
class LabelTargets:
    """Per-objective soft targets and which of them train."""

    targets: torch.Tensor  # (P, K) P(chosen ≻ rejected); 1 where masked
    mask: torch.Tensor  # (P, K) bool: True = this objective trains on this pair
    unused: int  # rows carrying at least one label no objective read
    untrained: int  # rows whose every objective is masked
    unused_keys: Counter = field(default_factory=Counter)  # label name -> rows where it was not read
    read_keys: Counter = field(default_factory=Counter)  # label name -> rows that trained on it


def _single_key(labels: dict[str, float], objective: str, label_key: str | None) -> str | None:
    if label_key is not None:
        return label_key if label_key in labels else None
    for key in (objective, OVERALL):
        if key in labels:
            return key
    return None


def label_targets(
    pairs: list[PreferencePair], objectives: list[str], label_key: str | None = None
) -> LabelTargets:
    """Apply the label rule (module docstring) to ``pairs`` for ``objectives``."""
    k = len(objectives)
    targets = torch.ones(len(pairs), k)
    mask = torch.ones(len(pairs), k, dtype=torch.bool)
    unused = untrained = 0
    unused_keys: Counter = Counter()
    read_keys: Counter = Counter()
    for i, p in enumerate(pairs):
        if not p.labels:
            continue
        if k == 1:
            key = _single_key(p.labels, objectives[0], label_key)
            read = {key} if key else set()
            if key:
                targets[i, 0] = p.labels[key]
        else:
            read = set(objectives) & set(p.labels)
            for j, o in enumerate(objectives):
                mask[i, j] = o in p.labels
                targets[i, j] = p.labels.get(o, 1.0)
            untrained += not read
        unused += bool(set(p.labels) - read)
        unused_keys.update(set(p.labels) - read)
        read_keys.update(read)
    return LabelTargets(targets, mask, unused, untrained, unused_keys, read_keys)


def log_label_use(
    lt: LabelTargets, objectives: list[str], label_key: str | None, what: str = "pairs"
) -> None:
    """One log line when some rows carried labels that training does not use."""
    if not lt.unused and not lt.untrained:
        return
    how = (
        f"objective(s) {objectives} read labels by name"
        if len(objectives) > 1
        else f"the single objective reads labels[{label_key!r}]"
        if label_key
        else f"the single objective reads labels[{objectives[0]!r}], else labels['overall'], else 1; "
        "set --label-key to train on a principle"
    )

    def counts(c: Counter) -> str:
        return ", ".join(f"{k!r} x{n}" for k, n in sorted(c.items())) or "none"

    log.warning(
        "%d of %d %s carry labels not used for training: %s (%s); labels trained on: %s; "
        "%d train no objective at all",
        lt.unused,
        len(lt.targets),
        what,
        counts(lt.unused_keys),
        how,
        counts(lt.read_keys),
        lt.untrained,
    )


def label_agreement(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Per (pair, objective) entry of (B, K) rewards, whether the reward order agrees with the label
    rule's target: a target < ½ means the rejected response is better on that objective; a tie in
    reward is wrong either way; masked entries are False. Returns a (B, K) bool tensor."""
    right = torch.where(targets < 0.5, r_rejected > r_chosen, r_chosen > r_rejected)
    return right & mask
