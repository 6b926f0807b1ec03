"""Train/eval mode policy (rewardlab.models.modes) on both tiny backbones: in train mode the trained
layer (with its LoRA dropout) and the head train, the frozen layers and embeddings stay in eval;
scoring leaves every module in exactly the mode it found it in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rewardlab.models.backbone import find_layers
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel


@pytest.fixture(params=["tiny_bert", "tiny_llama"])
def rm(request) -> RewardModel:
    path = request.getfixturevalue(request.param)
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=path, max_length=64, train_layers=1, lora_r=4, lora_dropout=0.5)
    model = RewardModel.build(cfg)
    with torch.no_grad():  # LoRA B starts at 0, which would hide the LoRA dropout
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model


def _modes(rm: RewardModel) -> list[tuple[str, bool]]:
    return [(name, m.training) for name, m in rm.named_modules()]


def test_train_mode_trains_only_the_trained_part(rm):
    rm.train()
    hf = rm.hf_model
    bottom, top = find_layers(hf)
    lora_dropout = [m for n, m in top.named_modules() if "lora_dropout" in n and isinstance(m, nn.Dropout)]
    assert lora_dropout and all(m.training for m in lora_dropout)
    assert all(m.training for m in top.modules())
    assert not any(m.training for m in bottom.modules())
    assert not any(m.training for m in hf.get_input_embeddings().modules())
    if hf.config.model_type == "bert":  # the whole embedding block: LayerNorm and dropout too
        assert not any(m.training for m in hf.bert.embeddings.modules())
    head = hf.classifier if hf.config.model_type == "bert" else hf.score
    assert all(m.training for m in head.modules())
    # the LoRA dropout acts in train mode and not in eval mode
    batch = rm.collate(rm.encode(["how are you?"] * 2, ["fine, thanks", "go away"]))
    with torch.no_grad():
        assert not torch.equal(rm(**batch), rm(**batch))
        rm.eval()
        assert torch.equal(rm(**batch), rm(**batch))


@pytest.mark.parametrize("mode", [True, False])
def test_scoring_restores_every_module_mode(rm, mode):
    rm.train(mode)
    before = _modes(rm)
    rm.score(["how are you?"], ["fine, thanks"])
    assert _modes(rm) == before
