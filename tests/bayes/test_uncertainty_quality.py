"""Issue 12 §1: the metrics that judge uncertainty (AUROC with ties, P(wrong) from the mean and std,
bootstrap intervals, the summary `rewardlab evaluate --json` prints), the ``lora_only`` subset, the
[CLS]-only top in the Laplace function, and the shared trunk store of a fit."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest
import torch
from typer.testing import CliRunner

from conftest import make_pairs, perturb, tiny_config
from rewardlab.bayes import (
    LaplaceConfig,
    PreferencePrediction,
    auroc,
    bootstrap_ci,
    error_auroc,
    error_auroc_combined,
    fit_laplace,
    pair_lengths,
    prediction_metrics,
    uncertainty_summary,
    wrong_probability,
)
from rewardlab.bayes.function import select_params, trunk_states
from rewardlab.bayes.laplace import Posterior
from rewardlab.data.schema import PreferencePair


def _pairwise_auroc(scores: list[float], labels: list[int]) -> float:
    """The definition: P(score of a positive > score of a negative) + ½ P(equal)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_with_ties_matches_the_pairwise_definition():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(2, 40)
        scores = [float(rng.randint(0, 5)) for _ in range(n)]  # many ties
        labels = [rng.randint(0, 1) for _ in range(n)]
        if 0 < sum(labels) < n:
            got = auroc(torch.tensor(scores), torch.tensor(labels))
            assert got == pytest.approx(_pairwise_auroc(scores, labels), abs=1e-12)


def test_wrong_probability_known_values():
    mean = torch.tensor([0.0, 1.96, -1.96, 3.0, 0.0, 1.0])
    var = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 4.0])
    p = wrong_probability(mean, var)
    expected = [0.5, 0.025, 0.025, 0.0, 0.5, 0.5 * math.erfc(0.5 / math.sqrt(2))]
    assert p.tolist() == pytest.approx(expected, abs=1e-4)


def test_combined_uses_the_mean_where_the_std_alone_fails():
    # the std grows with the margin (as the Laplace std does), so alone it flags the right pairs;
    # margin/std is smallest on the two wrong pairs, so the combined score finds them
    mean = torch.tensor([4.0, 3.0, 2.0, -0.1, -0.2])
    std = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.4])
    assert error_auroc(mean, std) == 0.0
    assert error_auroc_combined(mean, std**2) == 1.0
    pred = PreferencePrediction(torch.sigmoid(mean).double(), mean, std**2)
    assert prediction_metrics(pred)["error_auroc_combined"] == 1.0


def test_bootstrap_ci_brackets_the_statistic_and_resamples_groups_independently():
    x = torch.arange(50, dtype=torch.float64)
    point, lo, hi = bootstrap_ci(lambda v: float(v.mean()), (x,), n_boot=300, seed=1)
    assert point == 24.5 and lo < point < hi
    assert (lo, hi) == bootstrap_ci(lambda v: float(v.mean()), (x,), n_boot=300, seed=1)[1:]  # seeded
    assert 24.5 - 2 * 2.06 < lo < 24.5 - 1.5 * 2.06  # ≈ mean − 1.96·s/√n, s/√n = 2.06
    const = bootstrap_ci(lambda v: 3.0, (x,), n_boot=50)
    assert const == (3.0, 3.0, 3.0)
    # two groups of different sizes, each resampled within itself (sizes are kept)
    a, b = torch.zeros(7), torch.ones(3)
    sizes = set()
    bootstrap_ci(
        lambda u, v: sizes.add((len(u), float(u.sum()), len(v), float(v.sum()))) or 0.0, (a,), (b,), n_boot=5
    )
    assert sizes == {(7, 0.0, 3, 3.0)}
    # resamples with one class missing give NaN and are skipped
    mean, unc = torch.tensor([1.0, -1.0]), torch.tensor([0.1, 0.9])
    _, lo, hi = bootstrap_ci(error_auroc, (mean, unc), n_boot=200)
    assert lo == hi == 1.0


def test_pair_lengths():
    pairs = [PreferencePair("p", "abc", "de"), PreferencePair("p", "", "x")]
    assert pair_lengths(pairs).tolist() == [5.0, 1.0]


def test_uncertainty_summary_fields():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(60, generator=g, dtype=torch.float64)
    var = (mu.abs() + 0.1) ** 2
    pred = PreferencePrediction(torch.sigmoid(mu), mu, var)
    shifted = PreferencePrediction(torch.sigmoid(mu), mu, var + 1e4)  # every σ larger: OOD-AUROC 1
    lengths = {"in": torch.arange(60.0), "out": torch.arange(60.0) + 1000}
    s = uncertainty_summary({"in": pred, "out": shifted}, lengths, n_boot=100)
    assert set(s) == {"in", "out"} and "ood_auroc" not in s["in"]
    assert s["in"]["error_auroc"] == error_auroc(mu, var.sqrt())
    lo, hi = s["in"]["error_auroc_ci"]
    assert lo <= s["in"]["error_auroc"] <= hi
    assert s["out"]["ood_auroc"] == 1.0 and s["out"]["ood_auroc_length"] == 1.0
    assert s["out"]["ood_reference"] == "in" and s["out"]["ood_score"] == "pair_std"
    assert s["out"]["ood_auroc_pair"] == s["out"]["ood_auroc"]
    # with the responses' own variance, ood_auroc is theirs: here the shifted pairs have the same
    # pair σ_Δ but larger response σ
    pred.response_var, same = torch.ones(60, dtype=torch.float64), PreferencePrediction(pred.prob, mu, var)
    same.response_var = torch.full((60,), 4.0, dtype=torch.float64)
    s = uncertainty_summary({"in": pred, "out": same}, lengths, n_boot=50)
    assert s["out"]["ood_score"] == "response_std" and s["out"]["ood_auroc"] == 1.0
    assert s["out"]["ood_auroc_pair"] == 0.5 and s["in"]["error_auroc_response"] == 0.5
    assert s["in"]["error_auroc_combined"] == error_auroc_combined(mu, var)
    assert isinstance(s["in"]["combined_beats_confidence"], bool)


def test_lora_only_subset(tiny_rm):
    names = select_params(tiny_rm, "lora_only")
    assert names and all("lora_" in n for n in names)
    assert not any(p.requires_grad for n, p in tiny_rm.named_parameters() if "classifier" in n)
    post = fit_laplace(
        tiny_rm, make_pairs(12), LaplaceConfig(subset="lora_only", progress=False, marglik_steps=5)
    )
    assert post.param_names == names
    _, var = post.predict([p.prompt for p in make_pairs(3)], [p.chosen for p in make_pairs(3)])
    assert (var > 0).all()


def test_cls_top_jacobians_equal_the_full_top_layer(tiny_rm):
    post = Posterior(tiny_rm, LaplaceConfig(progress=False))
    assert post.fn.cls_top
    pairs = make_pairs(5)
    seqs = tiny_rm.encode([p.prompt for p in pairs], [p.chosen for p in pairs])
    batch = tiny_rm.collate(seqs)
    x = {**batch, "states": trunk_states(tiny_rm, batch)}
    post.fn.eval()
    js_fast, f_fast = post.la.backend.jacobians(x)
    post.fn.cls_top = False
    js_full, f_full = post.la.backend.jacobians(x)
    torch.testing.assert_close(f_fast, f_full)
    torch.testing.assert_close(js_fast, js_full)
    # pair mode (the curvature fit) too
    pair_x = {k: torch.stack([v[:2], v[2:4]], dim=1) for k, v in x.items()}  # (2, 2, ...)
    full = post.fn(pair_x)
    post.fn.cls_top = True
    torch.testing.assert_close(post.fn(pair_x), full)


def test_fit_with_a_shared_trunk_store_is_the_same_posterior(tiny_backbone):
    from rewardlab.models.reward_model import RewardModel

    pairs = make_pairs(10)
    posts = []
    for store in (None, {}):
        torch.manual_seed(0)
        rm = perturb(RewardModel.build(tiny_config(tiny_backbone)))
        cfg = LaplaceConfig(hessian="diag", progress=False, marglik_steps=5)
        posts.append(fit_laplace(rm, pairs, cfg, trunk_store=store))
        if store is not None:
            assert sorted(store) == list(range(2 * len(pairs)))  # ids 2i / 2i + 1, as in training
    torch.testing.assert_close(posts[0].la.H, posts[1].la.H)
    assert posts[0].prior_precision == pytest.approx(posts[1].prior_precision)


def test_tune_grid_on_precomputed_jacobians_equals_tune_grid(tiny_rm):
    pairs, val = make_pairs(12), make_pairs(6, seed=3)
    post = fit_laplace(tiny_rm, pairs, LaplaceConfig(progress=False, marglik_steps=5))
    post.tune_grid(val)
    first = dict(post.tuning)
    post.tune_grid_on(*post.validation_jacobians(val))
    assert post.tuning["best"] == first["best"] and post.tuning["val_nll"] == pytest.approx(first["val_nll"])


def test_evaluate_json_has_error_and_ood_auroc(tiny_rm, tmp_path):
    from rewardlab.cli.main import app

    model = tmp_path / "rm"
    tiny_rm.save(model)
    fit_laplace(tiny_rm, make_pairs(12), LaplaceConfig(progress=False, marglik_steps=5)).save(model)
    files = []
    for name, seed in (("in", 1), ("out", 2)):
        f = tmp_path / f"{name}.jsonl"
        f.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in make_pairs(12, seed=seed)))
        files += ["--data", str(f)]
    res = CliRunner().invoke(app, ["evaluate", "--model", str(model), *files, "--json"])
    assert res.exit_code == 0, res.output
    sets = json.loads(res.stdout.strip().splitlines()[-1])["sets"]
    first, second = (sets[f] for f in files[1::2])
    for key in ("error_auroc", "error_auroc_combined", "error_auroc_confidence"):
        assert 0.0 <= first[key] <= 1.0 or math.isnan(first[key])
        assert len(first[f"{key}_ci"]) == 2
    assert first["uncertainty_source"] == "laplace" and "error_auroc_combined" in first["bayes"]
    assert "ood_auroc" not in first
    for key in ("ood_auroc", "ood_auroc_pair", "ood_auroc_length"):
        assert 0.0 <= second[key] <= 1.0 and len(second[f"{key}_ci"]) == 2
    assert second["ood_reference"] == files[1] and second["ood_score"] == "response_std"


@pytest.mark.parametrize("hessian", ["kron", "diag"])
@pytest.mark.parametrize("prior", ["scalar", "layerwise"])
def test_rotated_variance_equals_laplace_functional_variance(tiny_rm, hessian, prior):
    from rewardlab.bayes.variance import functional_variance, rotate

    cfg = LaplaceConfig(hessian=hessian, prior_structure=prior, progress=False, marglik_steps=20)
    post = fit_laplace(tiny_rm, make_pairs(16), cfg)
    jd = torch.randn(9, post.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = post.la.functional_variance(jd.unsqueeze(1))[:, 0, 0]
    torch.testing.assert_close(functional_variance(post.la, jd, chunk=4), ref)
    rot = rotate(post.la, jd)
    torch.testing.assert_close(rot.blocks().sum(1), ref)  # the blocks add up
    assert rot.blocks().shape == (9, len(post.la.params))
    post.la.prior_precision = 2.5  # any other scalar prior from the same rotation
    torch.testing.assert_close(rot.variance(2.5), post.la.functional_variance(jd.unsqueeze(1))[:, 0, 0])


def test_response_variance_is_the_responses_own(tiny_rm):
    post = fit_laplace(tiny_rm, make_pairs(12), LaplaceConfig(progress=False, marglik_steps=5))
    pairs = make_pairs(4, seed=5)
    pred = post.preference_pairs(pairs)
    _, vc = post.predict([p.prompt for p in pairs], [p.chosen for p in pairs])
    _, vr = post.predict([p.prompt for p in pairs], [p.rejected for p in pairs])
    torch.testing.assert_close(pred.response_var, ((vc + vr) / 2)[:, 0].double(), rtol=1e-4, atol=1e-8)
