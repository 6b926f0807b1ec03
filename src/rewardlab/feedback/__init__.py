"""AI feedback: synthetic critiques, per-principle judging, RMBoost pairs and their baselines.

Front doors (each resumable into an append-only JSONL ``out``):
:func:`critique_pairs`, :func:`judge_pairs`, :func:`generate_rmboost`, :func:`generate_rlaif`,
:func:`generate_west_of_n`. Open option sets are registries: :data:`PRINCIPLES`,
:data:`ASPECT_SETS`, :data:`DEGRADE_MODES`, :data:`QC_CHECKS`.
"""

from __future__ import annotations

from rewardlab.feedback.aspects import ASPECT_SETS, DIRECTIONS
from rewardlab.feedback.baselines import (
    RLAIFConfig,
    WestOfNConfig,
    generate_rlaif,
    generate_west_of_n,
)
from rewardlab.feedback.common import PromptItem, Template, load_prompts
from rewardlab.feedback.critique import DEGRADE_MODES, CritiqueConfig, critique_pairs
from rewardlab.feedback.judge import JudgeConfig, JudgeStats, judge_pairs
from rewardlab.feedback.principles import PRINCIPLES, Principle, register_principle
from rewardlab.feedback.qc import QC_CHECKS, QCReport
from rewardlab.feedback.rmboost import RMBoostConfig, generate_rmboost

__all__ = [
    "ASPECT_SETS",
    "CritiqueConfig",
    "DEGRADE_MODES",
    "DIRECTIONS",
    "JudgeConfig",
    "JudgeStats",
    "PRINCIPLES",
    "Principle",
    "PromptItem",
    "QCReport",
    "QC_CHECKS",
    "RLAIFConfig",
    "RMBoostConfig",
    "Template",
    "WestOfNConfig",
    "critique_pairs",
    "generate_rlaif",
    "generate_rmboost",
    "generate_west_of_n",
    "judge_pairs",
    "load_prompts",
    "register_principle",
]
