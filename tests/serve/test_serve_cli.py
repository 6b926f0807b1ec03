"""`rewardlab serve` refuses what it cannot serve with one clear line and exit code 2."""

from __future__ import annotations

from typer.testing import CliRunner

from rewardlab.cli.main import app
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel


def _text(res) -> str:
    return " ".join(res.output.split())  # rich wraps long lines


def test_serve_refuses_a_critique_rm_and_a_missing_model(tiny_bert, tmp_path):
    crit = RewardModel.build(ModelConfig(backbone=tiny_bert, critiques=True)).save(tmp_path / "crit")
    res = CliRunner().invoke(app, ["serve", "--model", str(crit), "--port", "8123"])
    assert res.exit_code == 2 and "critic backend" in _text(res)
    missing = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a rewardlab model" in _text(missing)
    bad = CliRunner().invoke(app, ["serve", "--model", str(crit), "--port", "0"])
    assert bad.exit_code == 2 and "port" in _text(bad)
