"""Training: the loss falls and weights move; checkpoints resume; trunk cache matches no cache."""

from __future__ import annotations

import json

import torch

from pairs_data import make_pairs
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


def _cfgs(path, **train_kw):
    m = ModelConfig(backbone=path, max_length=64, train_layers=1, lora_r=4)
    t = TrainConfig(epochs=4, lr=1e-2, batch_size=8, save_steps=0, progress=False, **train_kw)
    return m, t


def test_training_lowers_loss_and_changes_weights(tiny_backbone, tmp_path):
    m, t = _cfgs(tiny_backbone)
    torch.manual_seed(0)
    before = RewardModel.build(m)
    start = {k: v.clone() for k, v in before.named_parameters() if v.requires_grad}
    pairs = make_pairs(32)
    res = train(pairs, m, t, tmp_path / "rm", validation=make_pairs(8), rm=before)
    rows = [json.loads(line) for line in open(tmp_path / "rm" / "train_log.jsonl")]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    after = dict(res.model.named_parameters())
    assert any(not torch.equal(start[k], after[k]) for k in start)
    assert evaluate(RewardModel.load(tmp_path / "rm"), pairs)["accuracy"] > 0.9
    assert len(res.history) == 4 and "val_accuracy" in res.history[0]


def test_trunk_cache_trains_like_no_cache(tiny_bert, tmp_path):
    out = {}
    for cache in (True, False):
        m, t = _cfgs(tiny_bert, cache_trunk=cache)
        t.epochs = 2
        torch.manual_seed(0)
        res = train(make_pairs(16), m, t, tmp_path / str(cache))
        out[cache] = {k: v.detach() for k, v in res.model.named_parameters() if v.requires_grad}
    for k in out[True]:
        assert torch.allclose(out[True][k], out[False][k], atol=1e-4), k


def test_resume_from_checkpoint_continues(tiny_bert, tmp_path):
    m, t = _cfgs(tiny_bert)
    t.epochs, t.save_steps = 2, 2
    torch.manual_seed(0)
    full = train(make_pairs(32), m, t, tmp_path / "full")
    # a run stopped mid-epoch (step 3 of 4 per epoch), then resumed with the same config
    t1 = TrainConfig(**{**t.__dict__, "max_steps": 3})
    torch.manual_seed(0)
    train(make_pairs(32), m, t1, tmp_path / "part")
    state = json.loads((tmp_path / "part" / "checkpoint" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (0, 3, 3)
    t2 = TrainConfig(**{**t.__dict__, "resume": True})
    torch.manual_seed(0)
    resumed = train(make_pairs(32), m, t2, tmp_path / "part")
    assert resumed.steps == full.steps
    steps = [
        json.loads(line).get("loss") and json.loads(line)["step"]
        for line in open(tmp_path / "part" / "train_log.jsonl")
    ]
    assert [s for s in steps if s] == list(range(1, full.steps + 1))  # no step lost or repeated
    # Same batches in the same order from restored weights and optimizer state; dropout RNG and
    # float summation order differ after a restart, so weights agree closely, not bitwise.
    a = dict(full.model.named_parameters())
    for k, v in resumed.model.named_parameters():
        if v.requires_grad:
            assert torch.allclose(v, a[k], atol=5e-2), k


def test_critique_conditioned_rm_reads_critiques(tiny_bert, tmp_path):
    import pytest

    m, t = _cfgs(tiny_bert)
    m.critiques = True
    t.epochs = 1
    pairs = make_pairs(8)
    with pytest.raises(ValueError, match="rewardlab critique"):
        train(pairs, m, t, tmp_path / "no")
    for p in pairs:
        p.critiques = {"chosen": "polite and correct", "rejected": "rude, unhelpful"}
    res = train(pairs, m, t, tmp_path / "yes")
    rm = RewardModel.load(tmp_path / "yes")
    assert rm.cfg.critiques
    a = rm.score(["q"], ["answer"], ["polite and correct"])
    b = rm.score(["q"], ["answer"], ["rude, unhelpful"])
    assert not torch.equal(a, b)  # the critique is part of the input
    assert res.steps == 1
