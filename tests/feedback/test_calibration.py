"""Judge calibration: the pure functions, and ``JudgeConfig.calibrate_on`` end to end with a
scripted judge (orchestration; the real-model run is in test_feedback_cli_real.py)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from feedback_fakes import FakeBackend, make_pairs
from test_judge import biased_judge

from rewardlab.feedback.calibration import brier, calibrate, ece, fit_scale, nll, order_logodds
from rewardlab.feedback.judge import JudgeConfig, judge_pairs


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_order_logodds_removes_a_constant_position_bias() -> None:
    for s, b in [(0.3, 2.0), (-1.2, -0.7), (0.0, 5.0)]:
        assert order_logodds(_sig(s + b), _sig(-s + b)) == pytest.approx(s)


def test_fit_scale_recovers_the_generating_scale() -> None:
    rng = random.Random(0)
    z = [rng.gauss(0, 0.05) for _ in range(4000)]
    y = [float(rng.random() < _sig(30.0 * zi)) for zi in z]
    a = fit_scale(z, y)
    assert 25.0 < a < 36.0
    assert nll(calibrate(z, a), y) < nll(calibrate(z, 1.0), y)


def test_fit_scale_is_bounded_on_separable_pairs_and_keeps_decisions() -> None:
    z = [0.01, 0.2, 0.05]
    assert fit_scale(z, [1, 1, 1], hi=500.0) == pytest.approx(500.0)
    assert fit_scale([-0.1, 0.1], [1, 1]) == pytest.approx(0.01)  # one right, one wrong: flattest
    for a in (0.5, 40.0):
        assert [p > 0.5 for p in calibrate([-0.3, 0.2, 0.01], a)] == [False, True, True]


def test_metrics_known_values_and_orientation() -> None:
    assert brier([0.8, 0.4], [1, 0]) == pytest.approx((0.04 + 0.16) / 2)
    assert nll([0.8, 0.4], [1, 0]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # confidence 0.8 (right) and 0.6 (right) land in different bins: |1-0.8|/2 + |1-0.6|/2
    assert ece([0.8, 0.4], [1, 0]) == pytest.approx(0.3)
    p, y = [0.9, 0.3, 0.55, 0.7], [1, 1, 0, 1]
    assert ece(p, y) == pytest.approx(ece([1 - q for q in p], [1 - t for t in y]))
    assert ece([0.5], [1]) == pytest.approx(0.5)  # a tie counts wrong


@pytest.mark.parametrize(
    "call", [lambda: brier([], []), lambda: nll([0.5], [1, 0]), lambda: calibrate([1.0], -1)]
)
def test_bad_inputs_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call()


def _write_pairs(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in make_pairs(n)))
    return path


def test_calibrate_on_sharpens_labels_without_changing_decisions(tmp_path: Path) -> None:
    backend = FakeBackend(judge=biased_judge(bias=2.0, signal=0.05))  # timid, position-biased
    pairs = make_pairs(4)
    raw, _, _ = judge_pairs(pairs, backend, tmp_path / "raw.jsonl", JudgeConfig(["helpfulness", "toxicity"]))
    cfg = JudgeConfig(["helpfulness", "toxicity"], calibrate_on=str(_write_pairs(tmp_path / "lab.jsonl", 6)))
    cal, _, _ = judge_pairs(pairs, backend, tmp_path / "cal.jsonl", cfg)
    assert (tmp_path / "cal.jsonl.calibration.jsonl").exists()
    for r, c in zip(raw, cal, strict=True):
        assert 0.5 < r["labels"]["helpfulness"] < 0.52  # raw: barely above a coin flip
        assert c["labels"]["helpfulness"] > 0.99  # separable labelled pairs: the scale goes high
        # the fake calls "good" more toxic too, against the labels (target 0 for "more is worse"):
        # the fit flattens that judge to a coin flip instead of trusting it
        assert c["metadata"]["judge_calibration"]["toxicity"]["scale"] == pytest.approx(0.01)
        assert c["labels"]["toxicity"] == pytest.approx(0.5, abs=1e-3)
        fit = c["metadata"]["judge_calibration"]["helpfulness"]
        assert fit["pairs"] == 6 and fit["scale"] > 100
        rec = c["metadata"]["judge"]["helpfulness"]
        z = order_logodds(rec["p_ab"], rec["p_ba"])
        assert z == pytest.approx(0.05)  # the bias cancelled
        assert c["labels"]["helpfulness"] == pytest.approx(calibrate([z], fit["scale"])[0])


def test_calibrate_on_needs_both_orders_and_pairs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both orders"):
        JudgeConfig(["helpfulness"], both_orders=False, calibrate_on="x.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    cfg = JudgeConfig(["helpfulness"], calibrate_on=str(tmp_path / "empty.jsonl"))
    with pytest.raises(ValueError, match="empty.jsonl: contains no records"):
        judge_pairs(make_pairs(1), FakeBackend(), tmp_path / "o.jsonl", cfg)
