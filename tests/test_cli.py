"""The CLI contracts, end to end on the real embedded MiniLM and real bundled data (slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rewardlab.data.bundled import hh_splits
from rewardlab.data.load import write_pairs

pytestmark = pytest.mark.slow


def rl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardlab.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    s = hh_splits()
    write_pairs(s["train"][:24], d / "train.jsonl")
    write_pairs(s["test"][:12], d / "test.jsonl")
    return d


@pytest.fixture(scope="module")
def trained(files):
    out = files / "rm"
    r = rl(
        "train",
        "--data",
        str(files / "train.jsonl"),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--no-progress",
        "--batch-size",
        "8",
    )
    assert r.returncode == 0, r.stderr
    return out


def test_train_writes_a_standard_model(trained):
    from transformers import AutoModelForSequenceClassification

    assert (trained / "rewardlab.json").exists() and (trained / "adapter" / "adapter_config.json").exists()
    assert AutoModelForSequenceClassification.from_pretrained(trained).config.num_labels == 1
    assert any(json.loads(line).get("loss") for line in open(trained / "train_log.jsonl"))


def test_evaluate_json_contract(trained, files):
    r = rl("evaluate", "--model", str(trained), "--data", str(files / "test.jsonl"), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 12 and 0 <= res["accuracy"] <= 1 and res["ece"] >= 0
    assert res["by_source"]["hh-harmless"]["n"] == 12


def test_score_one_row_per_response(trained, files, tmp_path):
    out = tmp_path / "scores.jsonl"
    r = rl("score", "--model", str(trained), "--data", str(files / "test.jsonl"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in open(out)]
    assert len(rows) == 24 and all(isinstance(x["reward"], float) for x in rows)
    assert {x["role"] for x in rows} == {"chosen", "rejected"}


def test_demo_contract_small(tmp_path):
    out = tmp_path / "demo"
    r = rl(
        "demo",
        "--out",
        str(out),
        "--train-limit",
        "16",
        "--eval-limit",
        "8",
        "--epochs",
        "1",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["sets"]) == {"hh-test", "llmbar", "hhh", "pandalm-test", "qafeedback-test", "summeval-test"}
    assert "seconds" in m and m["peak_memory_mb"] > 0 and m["train_set"] == "harmless"
    for v in m["sets"].values():
        assert {"n", "accuracy", "ece", "longer_accuracy", "shorter_accuracy"} <= set(v)
    assert (out / "model" / "rewardlab.json").exists()
    assert "hh-test" in r.stderr + r.stdout


def test_demo_multi_objective_train_set(tmp_path):
    """--train-set multi: two heads (harmlessness on HH, helpfulness on PandaLM/qa-feedback), scale
    and weights saved, scalarized headline + per-objective accuracy in metrics.json."""
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--train-set", "multi", "--train-limit", "8", "--eval-limit", "6"]
    r = rl(*args, "--eval-sets", "hh-test,pandalm-test", "--epochs", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["train_set"] == "multi" and m["train"]["pairs"] == 8 + 2 * 8
    assert set(m["sets"]["pandalm-test"]["objectives"]) == {"harmlessness", "helpfulness"}
    cfg = json.loads((out / "model" / "rewardlab.json").read_text())["model"]
    assert cfg["objectives"] == ["harmlessness", "helpfulness"] and len(cfg["reward_scale"]) == 2
    assert len(cfg["scalarizer_params"]["weighted_sum"]["weights"]) == 2


def test_config_file_and_bad_option(tmp_path, files):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  max_length: 64\n  train_layers: 1\ntrain:\n  epochs: 1\n  bogus: 3\n")
    r = rl("train", "--config", str(cfg), "--data", str(files / "train.jsonl"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "bogus" in r.stderr
