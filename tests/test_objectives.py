"""Multi-objective pieces on known inputs: the label rule, the masked Bradley-Terry loss, every
scalarizer, normalisation, weight fitting and the delta-method variance."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from rewardlab.data.schema import PreferencePair
from rewardlab.models.config import ModelConfig, RMKind
from rewardlab.objectives import (
    SCALARIZERS,
    fit_weights,
    label_targets,
    log_label_use,
    reward_scale,
    scalarize,
    scalarize_std,
)
from rewardlab.train.losses import bradley_terry_loss

Z = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)  # (N=2, K=3)


def _pair(labels: dict | None = None) -> PreferencePair:
    return PreferencePair("q", "good", "bad", labels=dict(labels or {}))


# ---- label rule -------------------------------------------------------------------------------
def test_label_rule_one_objective():
    pairs = [_pair(), _pair({"helpfulness": 0.3, "harmlessness": 0.9}), _pair({"overall": 0.2})]
    lt = label_targets(pairs, ["reward"], label_key="helpfulness")
    assert lt.targets[:, 0].tolist() == pytest.approx([1.0, 0.3, 1.0])  # key absent → plain preference
    assert lt.mask.all() and lt.unused == 2 and lt.untrained == 0  # harmlessness, overall unused
    lt = label_targets(pairs, ["reward"])  # no key: the objective's name, else "overall", else 1
    assert lt.targets[:, 0].tolist() == pytest.approx([1.0, 1.0, 0.2]) and lt.unused == 1
    lt = label_targets([_pair({"helpfulness": 0.4})], ["helpfulness"])
    assert lt.targets[0, 0].item() == pytest.approx(0.4) and lt.unused == 0


def test_label_rule_k_objectives_masks_unnamed():
    pairs = [_pair(), _pair({"a": 0.3}), _pair({"b": 0.8, "overall": 0.7}), _pair({"c": 0.1})]
    lt = label_targets(pairs, ["a", "b"])
    assert lt.mask.tolist() == [[True, True], [True, False], [False, True], [False, False]]
    assert lt.targets[1, 0].item() == pytest.approx(0.3) and lt.targets[2, 1].item() == pytest.approx(0.8)
    assert lt.targets[0].tolist() == [1.0, 1.0]  # no labels: plain preference on every objective
    assert (lt.unused, lt.untrained) == (2, 1)
    assert lt.unused_keys == {"overall": 1, "c": 1} and lt.read_keys == {"a": 1, "b": 1}


def test_unused_log_names_the_keys(caplog):
    pairs = [_pair({"helpfulness": 0.4, "harmlessness": 0.6, "overall": 0.5})] * 3  # an RLAIF row
    with caplog.at_level(logging.WARNING):
        log_label_use(label_targets(pairs, ["reward"]), ["reward"], None)
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "not used for training: 'harmlessness' x3, 'helpfulness' x3" in msg
    assert "labels trained on: 'overall' x3" in msg


def test_unused_labels_logged_once(caplog):
    lt = label_targets([_pair({"helpfulness": 0.3})] * 5 + [_pair()], ["reward"])
    with caplog.at_level(logging.WARNING):
        log_label_use(lt, ["reward"], None)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and msgs[0].startswith("5 of 6 pairs carry labels not used")
    caplog.clear()
    log_label_use(label_targets([_pair()], ["reward"]), ["reward"], None)
    assert not caplog.records


# ---- masked loss ------------------------------------------------------------------------------
def test_masked_loss_averages_unmasked_and_zero_grad():
    rc = torch.tensor([[2.0, 5.0], [0.0, -1.0]], requires_grad=True)
    rr = torch.zeros(2, 2)
    t = torch.tensor([[0.3, 1.0], [1.0, 1.0]])
    m = torch.tensor([[True, False], [True, False]])
    loss = bradley_terry_loss(rc, rr, targets=t, mask=m)

    def ell(d: float, p: float) -> float:
        return -(p * math.log(1 / (1 + math.exp(-d))) + (1 - p) * math.log(1 / (1 + math.exp(d))))

    assert loss.item() == pytest.approx((ell(2.0, 0.3) + ell(0.0, 1.0)) / 2, rel=1e-6)
    loss.backward()
    assert rc.grad[:, 1].eq(0).all() and rc.grad[:, 0].ne(0).all()
    # no mask == all-true mask
    full = bradley_terry_loss(rc, rr, targets=t, mask=torch.ones(2, 2, dtype=torch.bool))
    assert full.item() == pytest.approx(bradley_terry_loss(rc, rr, targets=t).item())


def test_fully_masked_batch_is_zero_without_nan():
    rc = torch.tensor([[1e4, -1e4]], requires_grad=True)
    loss = bradley_terry_loss(rc, torch.zeros(1, 2), mask=torch.zeros(1, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and rc.grad.eq(0).all() and not rc.grad.isnan().any()


# ---- scalarizers ------------------------------------------------------------------------------
def test_scalarizers_known_values():
    s = SCALARIZERS
    assert s.get("weighted_sum")(Z).tolist() == pytest.approx([-0.5 / 3, 0.0])
    assert s.get("weighted_sum")(Z, weights=[1.0, 0.0, -2.0]).tolist() == pytest.approx([0.0, 0.0])
    assert s.get("worst_case")(Z).tolist() == [-2.0, 0.0]
    soft = -0.5 * math.log((math.exp(-2) + math.exp(4) + math.exp(-1)) / 3)
    assert s.get("soft_min")(Z, temperature=0.5).tolist() == pytest.approx([soft, 0.0])
    assert s.get("soft_min")(Z, temperature=1e-3)[0].item() == pytest.approx(-2.0, abs=1e-2)
    assert s.get("soft_min")(Z, temperature=1e4)[0].item() == pytest.approx(-0.5 / 3, abs=1e-3)
    mean, var = -0.5 / 3, ((1 + 0.5 / 3) ** 2 + (-2 + 0.5 / 3) ** 2 + (0.5 + 0.5 / 3) ** 2) / 3
    assert s.get("uncertainty")(Z, lam=2.0).tolist() == pytest.approx([mean - 2 * math.sqrt(var), 0.0])
    std = torch.tensor([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    assert s.get("uncertainty")(Z, std).tolist() == pytest.approx([mean - math.sqrt(var + 3.0), -1.0])
    ls = [math.log(1 / (1 + math.exp(-x))) for x in (1.0, -2.0, 0.5)]
    assert s.get("nash")(Z).tolist() == pytest.approx([sum(ls), 3 * math.log(0.5)])
    # sorted row 0: −2, 0.5, 1 → q = 0.25 lies halfway between −2 and 0.5
    assert s.get("lower_quantile")(Z).tolist() == pytest.approx([-0.75, 0.0])
    assert s.get("lower_quantile")(Z, q=0.0).tolist() == [-2.0, 0.0]


@pytest.mark.parametrize("name", SCALARIZERS.names())
def test_every_scalarizer_vectorised_and_monotone(name):
    z = torch.randn(7, 3, dtype=torch.float64)
    out = SCALARIZERS.get(name)(z)
    assert out.shape == (7,)
    rows = torch.stack([SCALARIZERS.get(name)(z[i : i + 1])[0] for i in range(7)])
    assert torch.allclose(out, rows)
    assert (SCALARIZERS.get(name)(z + 1.0) >= out).all()  # raising every objective never hurts


# ---- config, normalisation, scalarize front door ----------------------------------------------
def test_config_kinds():
    assert ModelConfig().kind == RMKind.NEURAL
    assert ModelConfig(objectives=["a", "b"]).kind == RMKind.MULTI
    for kind in ("knowledge", "fused"):
        assert ModelConfig(kind=kind).kind == RMKind(kind)
        with pytest.raises(ValueError, match=f"kind '{kind}' has one objective"):
            ModelConfig(kind=kind, objectives=["a", "b"])
    with pytest.raises(ValueError, match="two or more"):
        ModelConfig(kind="multi")
    with pytest.raises(ValueError, match="unknown scalarizer 'median'"):
        ModelConfig(objectives=["a", "b"], scalarizer="median")
    with pytest.raises(ValueError, match="scalarizer_params.soft_min"):
        ModelConfig(objectives=["a", "b"], scalarizer_params={"soft_min": {"tau": 1.0}})


def test_scalarize_normalises_then_combines_and_k1_is_identity():
    r = torch.tensor([[3.0, 10.0], [1.0, 30.0]])
    scale = reward_scale(r)
    assert scale == [{"mean": 2.0, "std": 1.0}, {"mean": 20.0, "std": 10.0}]
    cfg = ModelConfig(objectives=["a", "b"], reward_scale=scale, scalarizer="worst_case")
    assert scalarize(cfg, r).tolist() == [-1.0, -1.0]  # z = [[1, −1], [−1, 1]]
    assert scalarize(cfg, r, "weighted_sum").tolist() == [0.0, 0.0]
    cfg.scalarizer_params = {"weighted_sum": {"weights": [1.0, 0.5]}}
    assert scalarize(cfg, r, "weighted_sum").tolist() == [0.5, -0.5]  # saved weights apply
    assert scalarize(cfg, r, "weighted_sum", weights=[0.0, 1.0]).tolist() == [-1.0, 1.0]
    one = ModelConfig(scalarizer="worst_case")
    assert scalarize(one, torch.tensor([[4.0], [-3.0]])).tolist() == [4.0, -3.0]
    with pytest.raises(ValueError, match="3 columns"):
        scalarize(cfg, torch.zeros(2, 3))


def test_fit_weights_recovers_signs():
    torch.manual_seed(0)
    zc, zr = torch.randn(400, 3), torch.randn(400, 3)
    true = torch.tensor([2.0, 0.0, -1.0])
    y = torch.sigmoid((zc - zr) @ true)
    w = fit_weights(zc, zr, y, l2=0.0)
    assert w == pytest.approx(true.tolist(), abs=0.15)  # sycophancy-like objective: negative weight


def test_scalarize_std_delta_method():
    cfg = ModelConfig(objectives=["a", "b"], scalarizer_params={"weighted_sum": {"weights": [2.0, -1.0]}})
    mean, std = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 2.0]])
    m, s = scalarize_std(cfg, mean, std)
    assert m.tolist() == [0.0] and s.tolist() == pytest.approx([math.sqrt(4 * 0.25 + 4.0)])
    m, s = scalarize_std(cfg, mean, std, "worst_case")  # gradient flows to the worst objective only
    assert m.tolist() == [1.0] and s.tolist() == pytest.approx([0.5])
    m, s = scalarize_std(ModelConfig(), torch.tensor([[3.0]]), torch.tensor([[0.25]]))  # K = 1: unchanged
    assert (m.tolist(), s.tolist()) == ([3.0], [0.25])


def test_cli_options_for_the_new_fields():
    from rewardlab.cli.options import build_config

    cfg = build_config(
        ModelConfig,
        {"kind": "multi", "objectives": ["a", "b"], "reward_scale": [{"mean": 9.0, "std": 9.0}] * 2},
        {"scalarizer": "soft_min", "scalarizer_params": '{"soft_min": {"temperature": 0.5}}'},
    )
    assert cfg.kind == RMKind.MULTI and cfg.scalarizer_params == {"soft_min": {"temperature": 0.5}}
    assert cfg.reward_scale is None  # set by training only, never an option
    with pytest.raises(ValueError, match="JSON object"):
        build_config(ModelConfig, {}, {"scalarizer_params": "{soft_min"})
