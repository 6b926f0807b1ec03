"""Knowledge-infused, interpretable reward models (Nath et al. 2024, arXiv 2402.15473).

Experts name a domain's quality dimensions; each becomes a feature (:mod:`.features`,
:mod:`.summeval`); a Bradley-Terry model over standardised feature differences learns the
preference with a Laplace posterior over its weights (:mod:`.model`); a fused RM adds a neural
reward as one more feature (:mod:`.rm`); :mod:`.explain` splits r(a) − r(b) into per-feature
contributions.
"""

from __future__ import annotations

from rewardlab.knowledge import summeval as _summeval  # noqa: F401  (registers opinion_summary)
from rewardlab.knowledge.explain import explain_pair
from rewardlab.knowledge.features import (
    FEATURE_SETS,
    FeatureSet,
    extract,
    feature_names,
    get_feature_set,
    register_feature_set,
)
from rewardlab.knowledge.model import LinearBT
from rewardlab.knowledge.rm import KnowledgeConfig, KnowledgeRM, train_knowledge

__all__ = [
    "FEATURE_SETS",
    "FeatureSet",
    "KnowledgeConfig",
    "KnowledgeRM",
    "LinearBT",
    "explain_pair",
    "extract",
    "feature_names",
    "get_feature_set",
    "register_feature_set",
    "train_knowledge",
]
