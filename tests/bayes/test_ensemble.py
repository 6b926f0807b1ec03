"""LoRA ensembles on one frozen backbone: distinct members, shared trunk, save/load."""

from __future__ import annotations

import pytest
import torch

from conftest import make_pairs, tiny_config
from rewardlab.bayes import EnsembleConfig, load_ensemble, train_ensemble
from rewardlab.models.reward_model import RewardModel


@pytest.fixture(scope="module")
def trained(tiny_backbone, tmp_path_factory):
    torch.manual_seed(0)
    rm = RewardModel.build(tiny_config(tiny_backbone))
    pairs = make_pairs(16, seed=1)
    ens = train_ensemble(
        pairs, EnsembleConfig(members=3, epochs=2, lr=1e-2, batch_size=8, progress=False), rm=rm
    )
    out = tmp_path_factory.mktemp("ens")
    rm.save(out)
    ens.save(out)
    return ens, pairs, out


def test_members_differ_and_share_one_backbone(trained):
    ens, pairs, _ = trained
    assert len(ens.members) == 3
    names = list(ens.members[0])
    assert all(list(m) == names for m in ens.members)
    assert any(not torch.equal(ens.members[0][n], ens.members[1][n]) for n in names)
    frozen = [p for p in ens.rm.parameters() if not p.requires_grad]
    assert frozen  # the backbone stays shared and frozen


def test_mean_and_variance_across_members(trained):
    ens, pairs, _ = trained
    prompts, responses = [p.prompt for p in pairs[:5]], [p.chosen for p in pairs[:5]]
    r = ens.member_rewards(ens.rm.encode(prompts, responses))  # (M, N, K)
    # each member's reward on the cached trunk equals the plain forward with its weights
    for m in range(3):
        ens._use(m)
        torch.testing.assert_close(r[m], ens.rm.score(prompts, responses).float(), rtol=1e-5, atol=1e-6)
    mean, var = ens.predict(prompts, responses)
    torch.testing.assert_close(mean, r.mean(0))
    torch.testing.assert_close(var, r.var(0, unbiased=False))
    assert (var > 0).all()
    pref = ens.preference_pairs(pairs[:5])
    assert pref.prob.shape == (5,) and ((pref.prob > 0) & (pref.prob < 1)).all()


def test_training_lowers_the_loss(trained):
    ens, pairs, _ = trained
    pref = ens.preference_pairs(pairs)
    assert float(pref.prob.mean()) > 0.5  # members learnt the (easy) preference


def test_save_load_same_predictions(trained):
    ens, pairs, out = trained
    loaded = load_ensemble(out)
    assert loaded is not None and len(loaded.members) == 3
    prompts, responses = [p.prompt for p in pairs[:4]], [p.rejected for p in pairs[:4]]
    m1, v1 = ens.predict(prompts, responses)
    m2, v2 = loaded.predict(prompts, responses)
    torch.testing.assert_close(m1, m2, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-9)


def test_no_ensemble_gives_none(tmp_path):
    assert load_ensemble(tmp_path) is None


@pytest.mark.parametrize("bad", [{"members": 1}, {"epochs": 0}, {"lr": 0}])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        EnsembleConfig(**bad)
