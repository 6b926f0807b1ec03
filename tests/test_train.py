"""Training: the loss falls and weights move; checkpoints resume; trunk cache matches no cache."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from accelerate.utils import set_seed

from pairs_data import make_pairs
from rewardlab.data.schema import PreferencePair
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


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def _assert_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def _step_rows(folder) -> list[int]:
    return [r["step"] for r in map(json.loads, open(folder / "train_log.jsonl")) if "loss" in r]


@pytest.mark.parametrize("cache_trunk", [False, True])
def test_resume_from_checkpoint_continues(tiny_bert, tmp_path, cache_trunk):
    m, t = _cfgs(tiny_bert, cache_trunk=cache_trunk)
    t.epochs, t.save_steps = 2, 2
    full = train(make_pairs(32), m, t, tmp_path / "full")
    # a run stopped mid-epoch (step 3 of 4 per epoch), then resumed with the same config
    train(make_pairs(32), m, TrainConfig(**{**t.__dict__, "max_steps": 3}), tmp_path / "part")
    state = json.loads((tmp_path / "part" / "checkpoint" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (0, 3, 3)
    resumed = train(make_pairs(32), m, TrainConfig(**{**t.__dict__, "resume": True}), tmp_path / "part")
    assert resumed.steps == full.steps
    assert _step_rows(tmp_path / "part") == list(range(1, full.steps + 1))  # none lost or repeated
    # Same weights, optimizer, scheduler, RNG and batch order, dropout-free model: exact. With the
    # trunk cache, the resumed run recomputes the cached states of the skipped batches' sequences
    # inside other batches (other padding length, so another float summation order): ~1e-8.
    _assert_weights(_weights(resumed.model), _weights(full.model), atol=1e-6 if cache_trunk else 0.0)


def test_max_steps_on_an_epoch_end_stops_there(tiny_bert, tmp_path):
    m, t = _cfgs(tiny_bert, max_steps=4)  # 32 pairs in batches of 8: 4 steps per epoch
    res = train(make_pairs(32), m, t, tmp_path / "rm", validation=make_pairs(8))
    assert res.steps == 4 and _step_rows(tmp_path / "rm") == [1, 2, 3, 4]
    state = json.loads((tmp_path / "rm" / "checkpoint" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (1, 0, 4)
    assert state["best"]["epoch"] == 0 and [r["epoch"] for r in res.history] == [0]


def test_max_steps_before_any_validation_keeps_the_last_weights(tiny_bert, tmp_path, caplog):
    m, t = _cfgs(tiny_bert, max_steps=2)  # inside epoch 0: nothing validated
    plain = train(make_pairs(32), m, t, tmp_path / "plain")
    with caplog.at_level(logging.WARNING, logger="rewardlab.train.trainer"):
        res = train(make_pairs(32), m, t, tmp_path / "val", validation=make_pairs(8))
    _assert_weights(_weights(res.model), _weights(plain.model), atol=0.0)  # trained, not the init
    assert "no epoch was validated" in caplog.text
    set_seed(t.seed)
    init = _weights(RewardModel.build(m))
    assert any(not torch.equal(init[k], v) for k, v in _weights(res.model).items())
    texts = (["how do I fix my bike?"], ["please check the chain"])
    saved = RewardModel.load(tmp_path / "val").score(*texts)
    assert torch.equal(saved, RewardModel.load(tmp_path / "plain").score(*texts))


def test_resume_with_validation_returns_the_best_validated_epoch(tiny_bert, tmp_path):
    m, t = _cfgs(tiny_bert)
    t.epochs = 3
    pairs = make_pairs(32)
    # validation with chosen and rejected swapped: the more the model learns, the worse it scores,
    # so the first epoch is the best one and a later state must never replace it
    val = [PreferencePair(p.prompt, p.rejected, p.chosen) for p in make_pairs(8)]
    full = train(pairs, m, t, tmp_path / "full", validation=val)
    accuracies = [r["val_accuracy"] for r in full.history]
    assert accuracies.index(max(accuracies)) == 0
    # the weights at the end of epoch 0: the same run stopped there by max_steps, no select-best
    ref = _weights(train(pairs, m, TrainConfig(**{**t.__dict__, "max_steps": 4}), tmp_path / "ref").model)
    _assert_weights(_weights(full.model), ref, atol=0.0)
    # stopped inside epoch 1 (after epoch 0 was validated), then resumed to the end
    train(pairs, m, TrainConfig(**{**t.__dict__, "max_steps": 6}), tmp_path / "part", validation=val)
    resumed = train(
        pairs, m, TrainConfig(**{**t.__dict__, "resume": True}), tmp_path / "part", validation=val
    )
    assert resumed.steps == full.steps
    _assert_weights(_weights(resumed.model), ref, atol=1e-6)


def test_critique_conditioned_rm_reads_critiques(tiny_bert, tmp_path):
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
