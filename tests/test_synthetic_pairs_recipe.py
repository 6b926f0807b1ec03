"""recipes/synthetic_pairs.py end to end at toy size with the real SmolLM2-135M (generator and
judge) and the MiniLM RM: every dataset gets a row per test set, the table and the plot are
written, and a rerun resumes every generation job instead of generating again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "synthetic_pairs.py"


@pytest.mark.slow
def test_recipe_generates_trains_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, str(RECIPE), "--out", str(out), "--prompts", "4", "--max-new-tokens", "8"]
    cmd += ["--base-pairs", "16", "--epochs", "1", "--eval-limit", "12", "--seeds", "2"]
    cmd += ["--principles", "helpfulness", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    results = report["eval"]["results"]
    assert {"rmboost", "rlaif", "rlaif-hard (decisions only)", "west-of-n", "human (same prompts)"} <= set(
        results
    )
    assert report["eval"]["sets"] == {"HH test": 12, "LLMBar": 12, "HHH": 12}
    for name, r in results.items():
        assert len(r["seeds"]) == 2, name  # --seeds RMs per dataset, each evaluated
        for s in ("HH test", "LLMBar", "HHH"):
            assert 0 <= r[s] <= 1 and r["ci"][s] >= 0
    # the judge's decision alone: the same pairs without their soft labels (the file keeps them)
    assert results["rlaif-hard (decisions only)"]["train_pairs"] == results["rlaif"]["train_pairs"]
    assert all("overall" in json.loads(line)["labels"] for line in (out / "rlaif.jsonl").open())
    assert (out / "rm-rlaif-hard").is_dir() and (out / "rm-rlaif").is_dir()  # two RMs, not one reused
    table = (out / "results.md").read_text()
    assert "*longer response wins*" in table and "± = 95% t-interval over 2 RM seeds" in table
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr + rerun.stdout  # every job read its finished rows back
