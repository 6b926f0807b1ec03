"""Multi-objective reward models: the label rule, scalarizers (a registry), the per-objective
reward scale and weight fitting. :func:`scalarize` is what every consumer applies."""

from __future__ import annotations

from rewardlab.objectives.combine import normalise, scalarize, scalarize_std
from rewardlab.objectives.fit import calibrate, fit_weights, reward_scale, save_config
from rewardlab.objectives.labels import LabelTargets, label_agreement, label_targets, log_label_use
from rewardlab.objectives.scalarizers import SCALARIZERS, check_scalarizer, get_scalarizer

__all__ = [
    "SCALARIZERS",
    "LabelTargets",
    "calibrate",
    "check_scalarizer",
    "fit_weights",
    "get_scalarizer",
    "label_agreement",
    "label_targets",
    "log_label_use",
    "normalise",
    "reward_scale",
    "save_config",
    "scalarize",
    "scalarize_std",
]
