"""`rewardlab.load`: one directory resolution, the RM loaded once with what is saved beside it
(posterior or ensemble), scores with a std, and the ensemble leaving the MAP weights intact."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import rewardlab
from conftest import make_pairs, perturb, tiny_config
from rewardlab.bayes import EnsembleConfig, LaplaceConfig, best_of_n, fit_laplace
from rewardlab.bayes.ensemble import ENSEMBLE_DIR, Ensemble
from rewardlab.bayes.laplace import POSTERIOR_DIR
from rewardlab.loading import BESIDE, LoadedRM, load
from rewardlab.models.reward_model import RewardModel


@pytest.fixture
def saved(tiny_backbone, tmp_path):
    torch.manual_seed(0)
    rm = perturb(RewardModel.build(tiny_config(tiny_backbone)))
    run = tmp_path / "run"
    rm.save(run / "model")  # a run directory, as `rewardlab demo` writes
    return rm, run


def _count_loads(monkeypatch) -> list:
    calls = []
    real = RewardModel.load.__func__

    def spy(cls, path, adapter=False):
        calls.append(adapter)
        return real(cls, path, adapter)

    monkeypatch.setattr(RewardModel, "load", classmethod(spy))
    return calls


def test_plain_model_loads_merged_once(saved, monkeypatch):
    rm, run = saved
    calls = _count_loads(monkeypatch)
    loaded = load(run)
    assert calls == [False] and loaded.path == run / "model"
    assert loaded.posterior is None and loaded.ensemble is None and loaded.uncertainty_source is None
    pairs = make_pairs(5)
    s = loaded.score([p.prompt for p in pairs], [p.chosen for p in pairs])
    assert s.std is None and s.reward_std is None
    torch.testing.assert_close(s.reward, rm.score([p.prompt for p in pairs], [p.chosen for p in pairs])[:, 0])
    with pytest.raises(FileNotFoundError, match="rewardlab laplace"):
        loaded.score([pairs[0].prompt], [pairs[0].chosen], uncertainty=True)
    assert loaded.uncertainty_metrics(pairs) is None


def test_posterior_loaded_with_the_model_once(saved, monkeypatch):
    rm, run = saved
    pairs = make_pairs(16)
    post = fit_laplace(rm, pairs, LaplaceConfig(progress=False, marglik_steps=5))
    post.save(run)
    calls = _count_loads(monkeypatch)
    rows = best_of_n(run, [p.prompt for p in pairs[:3]], [[p.chosen, p.rejected] for p in pairs[:3]], k=1.0)
    assert calls == [True]  # one load, adapter on, shared by the posterior (was up to three)
    loaded = load(run)
    assert isinstance(loaded, LoadedRM) and loaded.uncertainty_source == "laplace"
    prompts, responses = [p.prompt for p in pairs[:4]], [p.rejected for p in pairs[:4]]
    mean, var = post.predict(prompts, responses)
    s = loaded.score(prompts, responses)  # uncertainty by default when a posterior exists
    torch.testing.assert_close(s.rewards, mean, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(s.reward_std, var[:, 0].sqrt(), rtol=1e-5, atol=1e-9)
    assert rows[0]["reward_std"][0] > 0
    plain = loaded.score(prompts, responses, uncertainty=False)
    torch.testing.assert_close(plain.rewards, mean.to(plain.rewards), rtol=1e-5, atol=1e-6)


def test_ensemble_scores_keep_the_map_weights(saved):
    rm, run = saved
    trainable = {n: p.detach().clone() for n, p in rm.named_parameters() if p.requires_grad}
    members = [{n: v + 0.1 * (m + 1) * torch.randn_like(v) for n, v in trainable.items()} for m in range(3)]
    Ensemble(rm, members, EnsembleConfig(members=3)).save(run)
    loaded = load(run)
    assert loaded.uncertainty_source == "ensemble"
    pairs = make_pairs(4)
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    before = loaded.score(prompts, responses, uncertainty=False).rewards
    s = loaded.score(prompts, responses)
    assert (s.std > 0).all()
    after = loaded.score(prompts, responses, uncertainty=False).rewards
    torch.testing.assert_close(after, before)  # the members were swapped in and back out
    torch.testing.assert_close(before, rm.score(prompts, responses).to(before), rtol=1e-5, atol=1e-6)
    assert loaded.uncertainty_metrics(pairs)["uncertainty_source"] == "ensemble"


def test_beside_names_match_the_savers():
    assert BESIDE == (POSTERIOR_DIR, ENSEMBLE_DIR)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a rewardlab model"):
        load(tmp_path)


def test_public_api_is_lazy_sorted_and_resolves():
    code = (
        "import sys, rewardlab; assert 'torch' not in sys.modules, 'import rewardlab pulled in torch'\n"
        "from rewardlab.train.config import TrainConfig\nimport rewardlab.evaluate.metrics\n"
        "assert callable(rewardlab.train) and callable(rewardlab.evaluate)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert rewardlab.__all__ == sorted(rewardlab.__all__)
    for name in rewardlab.__all__:
        assert getattr(rewardlab, name) is not None, name
    assert rewardlab.load is load and rewardlab.RewardModel is RewardModel
