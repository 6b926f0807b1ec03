"""Laplace-LoRA on a tiny in-code BERT RM (float64), over every Hessian structure and subset."""

from __future__ import annotations

import math

import pytest
import torch
from laplace.curvature import CurvatureInterface

from conftest import make_pairs, perturb, tiny_config
from rewardlab.bayes import LaplaceConfig, fit_laplace, load_posterior, probit_preference
from rewardlab.bayes.function import trunk_states
from rewardlab.bayes.laplace import _PairLoader
from rewardlab.models.reward_model import RewardModel

STRUCTURES = ["kron", "diag"]
SUBSETS = ["lora", "last_layer"]


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(24, seed=0)


def _fit(tiny_rm, pairs, **kw):
    return fit_laplace(tiny_rm, pairs, LaplaceConfig(progress=False, marglik_steps=30, **kw))


@pytest.mark.parametrize("subset", SUBSETS)
def test_fast_jacobians_match_jacrev(tiny_rm, pairs, subset):
    post = _fit(tiny_rm, pairs, subset=subset)
    batch = tiny_rm.collate(tiny_rm.encode([p.prompt for p in pairs[:5]], [p.chosen for p in pairs[:5]]))
    x = {**batch, "states": trunk_states(tiny_rm, batch)}
    fast, f = post.la.backend.jacobians(x)
    ref, f_ref = CurvatureInterface.jacobians(post.la.backend, x)  # torch.func.jacrev
    assert fast.shape == ref.shape == (5, 1, post.n_params)
    torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(f, f_ref)
    # pair mode (B, 2, T): logit c of pair b only depends on its own response
    loader = _PairLoader(tiny_rm, pairs[:4], batch_size=4)
    xp = loader.batch([0, 1, 2, 3])
    fast_p, _ = post.la.backend.jacobians(xp)
    ref_p, _ = CurvatureInterface.jacobians(post.la.backend, xp)
    torch.testing.assert_close(fast_p, ref_p, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("subset", SUBSETS)
def test_diag_ggn_is_exact_bradley_terry_ggn(tiny_rm, pairs, subset):
    """diag H = Σ_b diag(J_bᵀ Λ_b J_b), Λ = diag(p) − ppᵀ of the 2-logit softmax [r_c, r_r]."""
    post = _fit(tiny_rm, pairs, hessian="diag", subset=subset)
    loader = _PairLoader(tiny_rm, pairs, batch_size=24)
    x = loader.batch(list(range(24)))
    js, f = CurvatureInterface.jacobians(post.la.backend, x)  # (B, 2, P)
    p = torch.softmax(f, -1)
    lam = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (B, 2, 2)
    expected = torch.einsum("bcp,bcd,bdp->p", js, lam, js)
    torch.testing.assert_close(post.la.H, expected, rtol=1e-8, atol=1e-12)
    # the BT NLL is the laplace loss
    bt = -torch.nn.functional.logsigmoid(f[:, 0] - f[:, 1]).sum()
    torch.testing.assert_close(torch.as_tensor(post.la.loss), bt)


@pytest.mark.parametrize("hessian", STRUCTURES)
@pytest.mark.parametrize("subset", SUBSETS)
def test_fit_predict_preference(tiny_rm, pairs, hessian, subset):
    post = _fit(tiny_rm, pairs, hessian=hessian, subset=subset)
    prompts, chosen, rejected = ([getattr(p, a) for p in pairs[:6]] for a in ("prompt", "chosen", "rejected"))
    mean, var = post.predict(prompts, chosen)
    assert mean.shape == var.shape == (6, 1)
    torch.testing.assert_close(mean, tiny_rm.score(prompts, chosen).float(), rtol=1e-5, atol=1e-6)
    assert (var > 0).all()
    pref = post.preference(prompts, chosen, rejected)
    mc, _ = post.predict(prompts, chosen)
    mr, vr = post.predict(prompts, rejected)
    torch.testing.assert_close(pref.mean.float(), (mc - mr)[:, 0], rtol=1e-5, atol=1e-6)
    assert ((pref.prob > 0) & (pref.prob < 1)).all()
    # the probit predictive is less confident than σ(μ)
    assert ((pref.prob - 0.5).abs() <= (torch.sigmoid(pref.mean) - 0.5).abs() + 1e-12).all()
    assert post.tuning["method"] == "marglik" and post.prior_precision[0] > 0


def test_glm_variance_is_j_sigma_jt_for_diag(tiny_rm, pairs):
    post = _fit(tiny_rm, pairs, hessian="diag")
    batch = tiny_rm.collate(tiny_rm.encode([pairs[0].prompt], [pairs[0].chosen]))
    js, _ = post.la.backend.jacobians({**batch, "states": trunk_states(tiny_rm, batch)})
    sigma = 1.0 / (post.la.H + post.la.prior_precision_diag)
    expected = (js[0, 0] ** 2 * sigma).sum()
    _, var = post.predict([pairs[0].prompt], [pairs[0].chosen])
    assert math.isclose(float(var[0, 0]), float(expected), rel_tol=1e-5)


def test_marglik_improves_evidence(tiny_rm, pairs):
    post = _fit(tiny_rm, pairs, prior_precision=1e3)
    before = float(post.la.log_marginal_likelihood(torch.tensor([1e3], dtype=torch.float64)))
    assert post.tuning["log_marglik"] > before
    layerwise = _fit(tiny_rm, pairs, prior_structure="layerwise")
    assert len(layerwise.prior_precision) == len(layerwise.la.params)


@pytest.mark.parametrize("hessian", STRUCTURES)
def test_grid_prior_minimises_validation_nll(tiny_rm, pairs, hessian):
    post = fit_laplace(
        tiny_rm,
        pairs,
        LaplaceConfig(hessian=hessian, prior_method="grid", grid_size=5, progress=False),
        validation=make_pairs(8, seed=3),
    )
    t = post.tuning
    assert t["method"] == "grid" and len(t["grid"]) == 5
    assert post.prior_precision[0] == pytest.approx(t["grid"][min(range(5), key=t["val_nll"].__getitem__)])
    with pytest.raises(ValueError, match="validation"):
        fit_laplace(tiny_rm, pairs, LaplaceConfig(prior_method="grid"))


@pytest.mark.parametrize("hessian", STRUCTURES)
@pytest.mark.parametrize("subset", SUBSETS)
def test_save_load_identical_predictions(tiny_backbone, pairs, tmp_path, hessian, subset):
    torch.manual_seed(0)
    rm = perturb(RewardModel.build(tiny_config(tiny_backbone)))
    rm.save(tmp_path)
    assert load_posterior(tmp_path) is None
    post = _fit(rm, pairs, hessian=hessian, subset=subset)
    post.save(tmp_path)
    loaded = load_posterior(tmp_path)
    assert loaded is not None and loaded.param_names == post.param_names
    prompts, responses = [p.prompt for p in pairs[:5]], [p.rejected for p in pairs[:5]]
    m1, v1 = post.predict(prompts, responses)
    m2, v2 = loaded.predict(prompts, responses)
    torch.testing.assert_close(m1, m2, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-9)
    assert loaded.prior_precision == pytest.approx(post.prior_precision)


def test_probit_preference_math():
    pred = probit_preference(torch.tensor([0.0, 2.0, 2.0]), torch.tensor([1.0, 0.0, 8 / math.pi]))
    torch.testing.assert_close(
        pred.prob,
        torch.tensor(
            [
                0.5,
                torch.sigmoid(torch.tensor(2.0)).item(),
                torch.sigmoid(torch.tensor(2.0 / math.sqrt(2))).item(),
            ],
            dtype=torch.float64,
        ),
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"hessian": "full"},
        {"subset": "everything"},
        {"prior_precision": 0},
        {"grid_min": 2, "grid_max": 1},
        {"marglik_steps": 0},
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        LaplaceConfig(**bad)


def test_needs_trainable_weights(tiny_backbone, tmp_path, pairs):
    rm = RewardModel.build(tiny_config(tiny_backbone))
    rm.save(tmp_path)
    merged = RewardModel.load(tmp_path)  # merged: no LoRA parameters
    merged.requires_grad_(False)
    with pytest.raises(ValueError, match="adapter=True"):
        fit_laplace(merged, pairs, LaplaceConfig(progress=False))


def _with_margins_and_labels(pairs, seed=1):
    import dataclasses
    import random

    rng = random.Random(seed)
    return [
        dataclasses.replace(p, margin=rng.uniform(0, 2), labels={"reward": rng.uniform(0.55, 1.0)})
        for p in pairs
    ]


@pytest.mark.parametrize("hessian", STRUCTURES)
def test_laplace_uses_margins_and_soft_labels(tiny_rm, pairs, hessian):
    """The Laplace likelihood is the trainer's: −[t log σ(Δ − m) + (1 − t) log σ(−(Δ − m))], and
    the GGN is taken at p = softmax([r_c − m, r_r]) (for diag: checked against J_bᵀ Λ_b J_b)."""
    data = _with_margins_and_labels(pairs)
    post = fit_laplace(tiny_rm, data, LaplaceConfig(hessian=hessian, progress=False, marglik_steps=5))
    loader = _PairLoader(tiny_rm, data, batch_size=24)
    assert loader.soft
    x = loader.batch(list(range(24)))
    js, f = CurvatureInterface.jacobians(post.la.backend, x)  # (B, 2, P), (B, 2) = [Δ-shifted r_c, r_r]
    m = torch.tensor([p.margin for p in data], dtype=f.dtype)
    t = torch.tensor([p.labels["reward"] for p in data], dtype=f.dtype)
    r = tiny_rm.score([p.prompt for p in data] * 2, [p.chosen for p in data] + [p.rejected for p in data])
    delta = (r[:24, 0] - r[24:, 0]).to(f.dtype) - m
    torch.testing.assert_close(f[:, 0] - f[:, 1], delta, rtol=1e-6, atol=1e-6)
    nll = -(
        t * torch.nn.functional.logsigmoid(delta) + (1 - t) * torch.nn.functional.logsigmoid(-delta)
    ).sum()
    torch.testing.assert_close(torch.as_tensor(post.la.loss), nll, rtol=1e-6, atol=1e-6)
    if hessian == "diag":
        p = torch.softmax(f, -1)
        lam = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
        torch.testing.assert_close(
            post.la.H, torch.einsum("bcp,bcd,bdp->p", js, lam, js), rtol=1e-8, atol=1e-12
        )


def test_grid_prior_uses_soft_labels_and_margins(tiny_rm, pairs):
    val = _with_margins_and_labels(make_pairs(8, seed=3), seed=2)
    post = fit_laplace(
        tiny_rm, pairs, LaplaceConfig(prior_method="grid", grid_size=3, progress=False), validation=val
    )
    lam = post.tuning["grid"][0]
    post.la.prior_precision = lam
    pv = post.preference_pairs(val)
    m = torch.tensor([p.margin for p in val], dtype=torch.float64)
    t = torch.tensor([p.labels["reward"] for p in val], dtype=torch.float64)
    prob = probit_preference(pv.mean.double() - m, pv.var.double()).prob
    nll = float(-(t * prob.log() + (1 - t) * (1 - prob).log()).mean())
    assert post.tuning["val_nll"][0] == pytest.approx(nll, rel=1e-5)


def _critique_pairs(n):
    import dataclasses

    return [
        dataclasses.replace(p, critiques={"chosen": "polite and safe", "rejected": "rude: " + p.rejected})
        for p in make_pairs(n, seed=4)
    ]


def test_critique_rm_gets_a_posterior(tiny_backbone, tmp_path):
    """A critique-conditioned RM: Laplace fits on the critiques, predicts with them, and refuses
    responses without one, as the RM itself does."""
    torch.manual_seed(0)
    rm = perturb(RewardModel.build(tiny_config(tiny_backbone, critiques=True)))
    data = _critique_pairs(12)
    post = fit_laplace(rm, data, LaplaceConfig(progress=False, marglik_steps=5))
    prompts, chosen = [p.prompt for p in data[:4]], [p.chosen for p in data[:4]]
    crit = [p.critiques["chosen"] for p in data[:4]]
    mean, var = post.predict(prompts, chosen, crit)
    torch.testing.assert_close(mean, rm.score(prompts, chosen, crit).to(mean), rtol=1e-5, atol=1e-6)
    assert (var > 0).all()
    pref = post.preference_pairs(data[:4])
    assert torch.isfinite(pref.prob).all()
    with pytest.raises(ValueError, match="critique"):
        post.predict(prompts, chosen)
    rm.save(tmp_path)
    post.save(tmp_path)
    from rewardlab.loading import load

    loaded = load(tmp_path)
    assert loaded.needs_critiques and loaded.uncertainty_source == "laplace"
    s = loaded.score(prompts, chosen, crit)
    torch.testing.assert_close(s.rewards, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s.std, var.sqrt(), rtol=1e-5, atol=1e-8)
    assert loaded.uncertainty_metrics(data[:4])["uncertainty_source"] == "laplace"
