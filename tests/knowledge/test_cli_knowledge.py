"""``rewardlab train --kind knowledge|fused`` and ``rewardlab explain``, end to end on bundled data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rewardlab.data.bundled import bundled_set
from rewardlab.data.load import write_pairs


def rl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardlab.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def knowledge_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-k") / "krm"
    r = rl("train", "--kind", "knowledge", "--data", "summeval-validation", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_train_score_evaluate(knowledge_model, tmp_path):
    write_pairs(bundled_set("summeval-test")[:5], tmp_path / "pairs.jsonl")
    r = rl(
        "score",
        "--model",
        str(knowledge_model),
        "--data",
        str(tmp_path / "pairs.jsonl"),
        "--out",
        str(tmp_path / "s.jsonl"),
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(isinstance(x["reward"], float) for x in rows)
    r = rl("evaluate", "--model", str(knowledge_model), "--data", "summeval-test", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 486 and res["accuracy"] > 0.8 and "error_auroc" in res


def test_explain_a_bundled_pair(knowledge_model):
    r = rl("explain", "--model", str(knowledge_model), "--data", "summeval-test", "--index", "3", "--json")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)
    contrib = [f["contribution"] for f in e["features"]]
    assert sum(contrib) == pytest.approx(e["delta"]) and abs(contrib[0]) == max(map(abs, contrib))
    assert {w["feature"] for w in e["weights"]} == {f["feature"] for f in e["features"]}
    table = rl("explain", "--model", str(knowledge_model), "--data", "summeval-test", "--index", "3")
    assert table.returncode == 0 and "contribution" in table.stderr


def test_explain_free_text_and_weights(knowledge_model):
    r = rl(
        "explain",
        "--model",
        str(knowledge_model),
        "--prompt",
        "Review 1: Great price.",
        "--a",
        "Good value.",
        "--b",
        "I like it",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["features"]) > 5
    r = rl("explain", "--model", str(knowledge_model))
    assert r.returncode == 0 and "95% interval" in r.stderr


def test_explain_bad_input_is_a_clear_error(knowledge_model):
    r = rl("explain", "--model", str(knowledge_model), "--data", "summeval-test", "--index", "9999")
    assert r.returncode == 2 and "--index must be in [0, 485]" in r.stderr
    r = rl("explain", "--model", str(knowledge_model), "--prompt", "p", "--a", "x")
    assert r.returncode == 2 and "together" in r.stderr


@pytest.mark.slow
def test_fused_with_minilm_through_the_cli(tmp_path):
    """The real MiniLM as the neural part (kept small for CI: 48 training and 40 test pairs of
    SummEval-OP, 128 tokens)."""
    out, train_file, test_file = tmp_path / "fused", tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    write_pairs(bundled_set("summeval-validation")[:48], train_file)
    write_pairs(bundled_set("summeval-test")[:40], test_file)
    args = [
        "--data",
        str(train_file),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--no-progress",
        "--max-length",
        "128",
    ]
    r = rl("train", "--kind", "fused", *args)
    assert r.returncode == 0, r.stderr
    r = rl("explain", "--model", str(out), "--data", str(test_file), "--index", "3")
    assert r.returncode == 0 and "neural part" in r.stderr, r.stderr
    r = rl("evaluate", "--model", str(out), "--data", str(test_file), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["n"] == 40, r.stderr
