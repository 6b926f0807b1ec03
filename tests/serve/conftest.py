"""Tiny reward models saved to disk, for the server tests."""

from __future__ import annotations

import pytest

from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel


@pytest.fixture(scope="session")
def multi_dir(tiny_bert, tmp_path_factory) -> str:
    """A tiny two-objective RM (random heads) with a reward scale, saved."""
    out = tmp_path_factory.mktemp("multi-rm")
    cfg = ModelConfig(
        backbone=tiny_bert,
        objectives=["helpful", "harmless"],
        reward_scale=[{"mean": 0.1, "std": 2.0}, {"mean": -0.2, "std": 0.5}],
    )
    RewardModel.build(cfg).save(out)
    return str(out)


@pytest.fixture(scope="session")
def scalar_dir(tiny_llama, tmp_path_factory) -> str:
    """A tiny one-objective decoder RM, saved."""
    out = tmp_path_factory.mktemp("scalar-rm")
    RewardModel.build(ModelConfig(backbone=tiny_llama)).save(out)
    return str(out)
