"""The report page without a browser: sections found from what a run holds, absent ones named,
every image an embedded PNG, demo-side scoring identical to ``evaluate``, bad files named by
file, line and field, and the ``rewardlab report RUN_DIR`` contract."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import pytest
import torch
from report_runs import evaluated_run, grpo_log, overoptimization_files

from pairs_data import make_pairs
from rewardlab.data.schema import DataError
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.evaluate.metrics import expected_calibration_error, preference_prob
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.objectives import calibrate, save_config
from rewardlab.report import write_report
from rewardlab.report.html import render
from rewardlab.report.scores import score_and_evaluate
from rewardlab.report.sections import ordered_sections
from rewardlab.report.sections.evaluation import reliability_bins, wilson


@pytest.fixture(scope="module")
def full_run(tiny_bert, tmp_path_factory):
    """A demo-like run (tiny RM) plus over-optimization and GRPO files."""
    out = evaluated_run(tmp_path_factory.mktemp("full-run"), tiny_bert)
    overoptimization_files(out)
    grpo_log(out)
    return out


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def _titles(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def _absent(page: str) -> str:
    m = re.search(r'<p class="note" id="absent">(.*?)</p>', page, re.S)
    return m.group(1) if m else ""


@pytest.mark.parametrize("objectives", [["reward"], ["helpful", "harmless"]])
def test_score_and_evaluate_equals_evaluate(tiny_bert, objectives):
    """The demo's single scoring pass gives exactly evaluate()'s metrics, and the rewards it judged."""
    torch.manual_seed(0)
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, max_length=48, objectives=objectives))
    pairs = make_pairs(12)
    if len(objectives) > 1:
        calibrate(rm, [p for p in pairs])
    metrics, rc, rr = score_and_evaluate(rm, pairs)
    assert metrics == evaluate(rm, pairs)
    assert rc.shape == rr.shape == (12,)
    assert metrics["accuracy"] == pytest.approx(float((rc > rr).double().mean()))


def test_reliability_bins_match_the_ece_metric():
    g = torch.Generator().manual_seed(0)
    rc, rr = torch.randn(200, generator=g), torch.randn(200, generator=g) - 0.5
    b = reliability_bins(rc.tolist(), rr.tolist())
    assert sum(b["count"]) == 200 and len(b["edges"]) == 11
    assert b["ece"] == pytest.approx(expected_calibration_error(preference_prob(rc, rr)))
    # ECE from the bins themselves: Σ n_b/N |acc_b − conf_b|
    ece = sum(k / 200 * abs(a - c) for k, a, c in zip(b["count"], b["acc"], b["conf"], strict=True) if k)
    assert ece == pytest.approx(b["ece"], abs=1e-6)


def test_wilson_interval_known_values():
    lo, hi = wilson(1.0, 24)  # all right: lower bound n / (n + z²)
    assert hi == 1.0 and lo == pytest.approx(24 / (24 + 1.96**2))
    lo, hi = wilson(0.5, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_other_recipe_results_are_a_plain_table(tmp_path):
    rows = [
        {"name": "laplace", "method": "kfac", "error_auroc": 0.61234, "sets": {"x": 1}},
        {"name": "map", "ece": [0.05, 0.04, 0.061]},
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = render(tmp_path)
    assert "no figures for" in page and "<th>error_auroc</th>" in page and "0.6123" in page
    assert "0.05 [0.04, 0.061]" in page
    assert "<th>sets</th>" not in page


def test_full_run_has_every_evaluation_and_rl_section(full_run):
    page = render(full_run)
    titles = _titles(page)
    for t in (
        "Evaluation: RM vs length heuristics",
        "Per source, subset and objective",
        "Calibration: reliability diagrams",
        "Chosen vs rejected rewards",
        "Training",
        "Model",
        "Best-of-n over-optimization",
        "Uncertainty: calibration and error detection",
        "GRPO: reward during RL",
    ):
        assert t in titles, t
    absent = _absent(page)
    assert "Recipe results" in absent and "Feature contributions" in absent and "Evaluation" not in absent
    m = json.loads((full_run / "metrics.json").read_text())["sets"]["toy-train"]
    row = re.search(r"<tr><td[^>]*>toy-train</td>.*?</tr>", page).group(0)
    for key in ("accuracy", "longer_accuracy", "shorter_accuracy"):
        assert f"{100 * m[key]:.1f}" in row  # the RM beside both length heuristics
    assert "toy-a" in page and "toy-b" in page  # per-source table
    boot = json.loads((full_run / "overoptimization.json").read_text())["bootstrap"]["proxy: argmax mean"]
    lo, hi = boot["drop_ci"]
    assert f"{boot['drop']:+.3f} [{lo:+.3f}, {hi:+.3f}]" in page  # the drop with its interval


def test_every_image_is_an_embedded_png_and_nothing_is_fetched(full_run):
    page = render(full_run)
    srcs = _images(page)
    assert len(srcs) == 6  # accuracy bars, reliability, histograms, training, best-of-n, GRPO
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        png = base64.b64decode(s.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)
    assert "default-src 'none'" in page  # the browser would refuse anything else


def test_only_what_the_run_has_and_the_rest_is_named(tmp_path):
    grpo_log(tmp_path, steps=5, gold=False)
    page = render(tmp_path)
    assert _titles(page) == ["GRPO: reward during RL"]
    absent = _absent(page)
    names = [s.title for s in ordered_sections() if s.title != "GRPO: reward during RL"]
    assert all(n in absent for n in names) and "metrics.json" in absent
    assert "no gold reward logged" in page and len(_images(page)) == 1


def test_empty_directory_says_so(tmp_path):
    page = render(tmp_path)
    assert "holds nothing a report can draw" in page and _images(page) == []


def test_bad_rows_name_file_line_and_field(tmp_path):
    (tmp_path / "grpo_log.jsonl").write_text('{"step": 0, "reward": 0.1}\n{"step": 1, "reward": "high"}\n')
    with pytest.raises(DataError, match=r"grpo_log\.jsonl:2: field 'reward': expected int or float"):
        render(tmp_path)
    (tmp_path / "grpo_log.jsonl").write_text('{"step": 0, "reward": 0.1}\n{"step": 1,\n')
    with pytest.raises(DataError, match=r"grpo_log\.jsonl:2: invalid JSON"):
        render(tmp_path)
    (tmp_path / "grpo_log.jsonl").unlink()
    (tmp_path / "metrics.json").write_text('{"sets": {"hh": {"n": 3}}}')
    with pytest.raises(DataError, match=r"metrics\.json: sets\.hh: field 'accuracy': is missing"):
        render(tmp_path)


def test_multi_objective_model_weights(tiny_bert, tmp_path):
    torch.manual_seed(0)
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, max_length=48, objectives=["helpful", "harmless"]))
    pairs = [p for p in make_pairs(16)]
    for p in pairs:
        p.labels = {"overall": 1.0}
    calibrate(rm, pairs)
    rm.save(tmp_path / "model")
    save_config(rm, tmp_path / "model")
    page = render(tmp_path)
    w = rm.cfg.scalarizer_params["weighted_sum"]["weights"]
    assert "Objectives" in page and f"{w[0]:+.3f}" in page and f"{w[1]:+.3f}" in page
    assert "fitted by logistic regression" in page


def test_cli_writes_run_dir_report_html(full_run, tmp_path):
    """The contract: ``rewardlab report RUN_DIR`` writes RUN_DIR/report.html; --out elsewhere;
    a missing directory is a one-line error with exit code 2."""
    (full_run / "report.html").unlink(missing_ok=True)
    r = subprocess.run(
        [sys.executable, "-m", "rewardlab.cli", "report", str(full_run)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert (full_run / "report.html").read_text().startswith("<!DOCTYPE html>")
    out = write_report(full_run, tmp_path / "elsewhere" / "r.html")
    assert out.exists() and _titles(out.read_text()) == _titles((full_run / "report.html").read_text())
    from typer.testing import CliRunner

    from rewardlab.cli.main import app

    r = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2, r.output
    assert "not a directory" in r.output
