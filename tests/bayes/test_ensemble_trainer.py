"""Ensemble members train through the one trainer (rewardlab.train.trainer.train): same loss terms
(margins), same schedule and clipping, in memory."""

from __future__ import annotations

import dataclasses

import torch

from conftest import make_pairs, tiny_config
from rewardlab.bayes import EnsembleConfig, train_ensemble
from rewardlab.bayes.ensemble import reinit_member
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

CFG = EnsembleConfig(members=2, epochs=1, lr=1e-2, batch_size=8, progress=False)


def _members(backbone, pairs) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    return train_ensemble(pairs, CFG, rm=RewardModel.build(tiny_config(backbone))).members


def test_members_are_trainer_runs_and_use_margins(tiny_backbone, tmp_path):
    pairs = make_pairs(16, seed=1)
    members = _members(tiny_backbone, pairs)
    # member 1 is exactly train() from reinit_member(seed 1) with the member's seed, nothing saved
    rm = RewardModel.build(tiny_config(tiny_backbone))
    reinit_member(rm, CFG.seed + 1)
    tcfg = TrainConfig(epochs=1, lr=1e-2, batch_size=8, seed=CFG.seed + 1, save_steps=0, progress=False)
    train(pairs, rm.cfg, tcfg, out=None, rm=rm)
    for name, p in rm.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(members[1][name], p.detach(), rtol=0, atol=1e-12, msg=name)
    # margins enter the loss, as in the trainer
    with_margin = _members(tiny_backbone, [dataclasses.replace(p, margin=3.0) for p in pairs])
    assert any(not torch.equal(members[0][n], with_margin[0][n]) for n in members[0])
