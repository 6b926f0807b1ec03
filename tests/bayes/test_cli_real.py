"""Slow: the real MiniLM RM, trained briefly on bundled HH pairs: fit → tune → save (CLI) → load →
predict, `rewardlab bon`, and the functions that `score --uncertainty` / `evaluate` call."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rewardlab.bayes import load_posterior, score_uncertainty, uncertainty_metrics
from rewardlab.cli.main import app
from rewardlab.data.bundled import hh_splits
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


@pytest.mark.slow
def test_laplace_cli_on_minilm(tmp_path):
    split = hh_splits()
    pairs, test = split["train"][:12], split["test"][:6]
    model = tmp_path / "rm"
    train(
        pairs,
        ModelConfig(max_length=64),
        TrainConfig(epochs=1, batch_size=4, progress=False, save_steps=0),
        model,
    )
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs))

    res = CliRunner().invoke(app, ["laplace", "--model", str(model), "--data", str(data), "--no-progress"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["n_params"] == 384 + 1 and summary["method"] == "marglik"  # the head: last_layer
    assert (model / "posterior" / "laplace.pt").exists()

    post = load_posterior(model)
    assert post is not None and post.cfg.hessian.value == "kron" and post.cfg.subset.value == "last_layer"
    prompts, responses = [p.prompt for p in test], [p.chosen for p in test]
    mean, var = post.predict(prompts, responses)
    assert mean.shape == (6, 1) and bool((var > 0).all())
    m, s = score_uncertainty(model, prompts, responses)
    torch.testing.assert_close(m, mean)
    torch.testing.assert_close(s, var.sqrt())
    metrics = uncertainty_metrics(model, test)
    assert 0.0 <= metrics["error_auroc"] <= 1.0 or metrics["error_auroc"] != metrics["error_auroc"]

    # the CLI contracts: score --uncertainty writes reward (mean) and reward_std; evaluate adds error_auroc
    test_file = tmp_path / "test.jsonl"
    test_file.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in test))
    scored = tmp_path / "scores.jsonl"
    res = CliRunner().invoke(
        app, ["score", "--model", str(model), "--data", str(test_file), "--uncertainty", "--out", str(scored)]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in scored.read_text().splitlines()]
    assert len(rows) == 12 and all(r["reward_std"] > 0 for r in rows)
    chosen = [r for r in rows if r["role"] == "chosen"]
    assert [r["reward"] for r in chosen] == pytest.approx(mean[:, 0].tolist(), abs=1e-5)
    res = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--data", str(test_file), "--json"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.stdout.strip().splitlines()[-1])
    assert ev["n"] == 6 and "error_auroc" in ev and "accuracy" in ev

    cands = tmp_path / "cands.jsonl"
    cands.write_text(
        "".join(
            json.dumps({"prompt": p.prompt, "responses": [p.chosen, p.rejected, "No."]}) + "\n"
            for p in test[:3]
        )
    )
    out = tmp_path / "bon.jsonl"
    res = CliRunner().invoke(
        app, ["bon", "--model", str(model), "--data", str(cands), "--out", str(out), "--k", "2"]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["reward_std"]) == 3 for r in rows)
    for r in rows:
        best = max(range(3), key=lambda i: r["reward"][i] - 2 * r["reward_std"][i])
        assert r["best_index"] == best

    res = CliRunner().invoke(
        app, ["laplace", "--model", str(model), "--data", str(data), "--prior-method", "grid"]
    )
    assert res.exit_code != 0 and "validation" in res.output
