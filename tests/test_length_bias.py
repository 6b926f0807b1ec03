"""Length debiasing: the length expert's fit, the balanced subset, and PoE offsets in the loss."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pairs_data import make_pairs
from rewardlab.data.schema import PreferencePair
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.length_bias import (
    LengthDebias,
    balance_by_length,
    fit_length_expert,
    length_offsets,
    log_length_gap,
)
from rewardlab.train.losses import bradley_terry_loss
from rewardlab.train.trainer import train


def _pair(chosen: str, rejected: str, source: str | None = None) -> PreferencePair:
    return PreferencePair(prompt="p", chosen=chosen, rejected=rejected, source=source)


def test_log_length_gap_by_hand():
    gap = log_length_gap([_pair("abc", "a"), _pair("", "abcdefg")])
    assert gap.tolist() == pytest.approx([math.log(4) - math.log(2), math.log(1) - math.log(8)])


def test_length_expert_recovers_a_known_coefficient():
    # Soft targets equal to the true probabilities σ(a·Δℓ): the MLE is exactly a (λ → 0).
    gap = torch.linspace(-2, 2, 401, dtype=torch.float64)
    for a in (-0.7, 0.0, 1.3):
        assert fit_length_expert(gap, torch.sigmoid(a * gap), lam=1e-9) == pytest.approx(a, abs=1e-6)


def test_length_offsets_fit_each_source_separately():
    # Source "long": the longer response is chosen 3 of 4 times; "short": the shorter, 3 of 4.
    long_ = [_pair("x" * 20, "x" * 5, "long")] * 3 + [_pair("x" * 5, "x" * 20, "long")]
    short = [_pair("x" * 5, "x" * 20, "short")] * 3 + [_pair("x" * 20, "x" * 5, "short")]
    off = length_offsets(long_ + short)
    # Each source's expert agrees with its own majority: positive offsets on its majority pairs.
    assert (off[:3] > 0).all() and (off[4:7] > 0).all() and off[3] < 0 and off[7] < 0
    # σ(a·g) = 3/4 at |g| = log(21/6) for a one-gap data set: a = logit(3/4) / g.
    g = math.log(21 / 6)
    assert float(off[0]) == pytest.approx(math.log(3) / g * g, rel=1e-3)


def test_balance_keeps_ties_and_equal_sides_per_source():
    pairs = (
        [_pair("x" * 9, "x", "a")] * 6
        + [_pair("x", "x" * 9, "a")] * 2
        + [_pair("xx", "yy", "a")]
        + [_pair("x", "x" * 9, "b")] * 3
    )
    kept = balance_by_length(pairs, seed=1)
    a = [p for p in kept if p.source == "a"]
    assert sum(len(p.chosen) > len(p.rejected) for p in a) == 2
    assert sum(len(p.chosen) < len(p.rejected) for p in a) == 2
    assert sum(len(p.chosen) == len(p.rejected) for p in a) == 1
    assert not [p for p in kept if p.source == "b"]  # one-sided source: nothing balances it
    assert balance_by_length(pairs, seed=1) == kept  # seeded


def test_unknown_length_debias_is_refused():
    with pytest.raises(ValueError, match="length_debias"):
        TrainConfig(length_debias="bogus")
    assert TrainConfig(length_debias="poe").length_debias is LengthDebias.POE


@pytest.mark.parametrize("mode", ["off", "poe"])
def test_poe_offsets_enter_the_training_loss(tiny_bert, tmp_path, mode):
    """The first logged loss (computed before any update) is BT at the initial weights with the
    logit r_c − r_r + a_g·Δℓ under poe, and r_c − r_r without."""
    pairs = make_pairs(16)  # chosen mostly the shorter: a length expert with a clear sign
    m = ModelConfig(backbone=tiny_bert, max_length=64, lora_r=4)
    t = TrainConfig(epochs=1, batch_size=16, save_steps=0, progress=False, length_debias=mode, max_steps=1)
    torch.manual_seed(0)
    rm = RewardModel.build(m)
    r = rm.score(
        [p.prompt for p in pairs for _ in (0, 1)], [x for p in pairs for x in (p.chosen, p.rejected)]
    )
    rc, rr = r[0::2], r[1::2]
    off = length_offsets(pairs) if mode == "poe" else torch.zeros(len(pairs))
    want = float(bradley_terry_loss(rc, rr, margin=-off))
    train(pairs, m, t, tmp_path / "rm", rm=rm)
    first = json.loads((tmp_path / "rm" / "train_log.jsonl").read_text().splitlines()[0])
    assert first["loss"] == pytest.approx(want, abs=1e-5)
    if mode == "poe":
        assert float(off.abs().mean()) > 0.3  # the offsets are large enough to matter here
