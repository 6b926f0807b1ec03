"""Multi-objective and labelled training on tiny in-code models: the label rule reaches the loss
(K = 1 trains toward labels[label_key]; K = 2 masks unnamed objectives to exactly zero gradient),
and a multi-objective RM trains, saves, loads and scores through the library and the CLI with
every scalarizer."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch
from typer.testing import CliRunner

from pairs_data import make_pairs
from rewardlab.cli.main import app
from rewardlab.data.load import write_pairs
from rewardlab.evaluate.evaluator import evaluate, score_pairs
from rewardlab.models.config import ModelConfig, RMKind
from rewardlab.models.reward_model import RewardModel
from rewardlab.objectives import SCALARIZERS, scalarize
from rewardlab.train.batching import PairCollator, encode_pairs
from rewardlab.train.config import TrainConfig
from rewardlab.train.losses import bradley_terry_loss
from rewardlab.train.trainer import train

OBJ = ["helpful", "harmless"]


def _labelled(pairs, labels):
    return [dataclasses.replace(p, labels=dict(labels)) for p in pairs]


def _train_cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 6, "lr": 2e-2, "batch_size": 8, "save_steps": 0, "progress": False, **kw})


def test_k1_trains_toward_the_label_key_and_logs_unused(tiny_bert, tmp_path, caplog):
    pairs = _labelled(make_pairs(16), {"helpfulness": 0.3, "harmlessness": 0.9})  # RLAIF-style rows
    m = ModelConfig(backbone=tiny_bert, max_length=64, lora_r=4, label_key="helpfulness")
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="rewardlab.objectives.labels"):
        res = train(pairs, m, _train_cfg(epochs=10, lr=1e-2), tmp_path / "rm")
    unused = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert len(unused) == 1 and unused[0].startswith("16 of 16 pairs")  # harmlessness: carried, unused
    rc, rr = score_pairs(res.model, pairs)
    p = torch.sigmoid(rc - rr).mean().item()
    assert abs(p - 0.3) < 0.1, p  # not 1.0: the soft label is the target
    assert RewardModel.load(tmp_path / "rm").cfg.label_key == "helpfulness"


def test_masked_objective_gets_exactly_zero_gradient(tiny_bert):
    torch.manual_seed(0)
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, objectives=OBJ, max_length=48, lora_r=2))
    assert rm.cfg.kind == RMKind.MULTI
    pairs = _labelled(make_pairs(4), {"helpful": 0.3})  # names only objective 0
    data = encode_pairs(rm, pairs)
    batch = PairCollator(data, rm.tokenizer.pad_token_id)(list(range(4)))
    assert batch["mask"].tolist() == [[True, False]] * 4
    head = next(p for n, p in rm.named_parameters() if p.requires_grad and "classifier" in n and p.dim() == 2)
    assert head.shape[0] == 2  # one row per objective
    for mask, zero in ((batch["mask"], True), (None, False)):
        rm.zero_grad()
        rc, rr = rm(**batch["inputs"]).chunk(2)  # (B, K) each
        bradley_terry_loss(rc, rr, targets=batch["targets"], mask=mask).backward()
        assert head.grad[0].abs().sum() > 0
        assert head.grad[1].eq(0).all() == zero  # masked: exactly zero; unmasked: it would move


@pytest.fixture(scope="module")
def multi_run(tiny_bert, tmp_path_factory):
    """``rewardlab train --kind multi``: helpful prefers chosen, harmless prefers rejected; some rows
    name one objective, some both, some also carry an overall label (→ fitted weights)."""
    d = tmp_path_factory.mktemp("multi")
    base = make_pairs(24)
    rows = (
        _labelled(base[:8], {"helpful": 0.9})
        + _labelled(base[8:16], {"harmless": 0.1})
        + _labelled(base[16:], {"helpful": 0.9, "harmless": 0.1, "overall": 0.8})
    )
    write_pairs(rows, d / "train.jsonl")
    evaluation = _labelled(base[:4], {"helpful": 0.9}) + _labelled(base[4:8], {"harmless": 0.2}) + base[8:10]
    write_pairs(evaluation, d / "eval.jsonl")
    torch.manual_seed(0)
    args = ["train", "--kind", "multi", "--objectives", ",".join(OBJ), "--backbone", tiny_bert]
    args += ["--data", str(d / "train.jsonl"), "--out", str(d / "rm"), "--max-length", "64", "--lora-r", "4"]
    args += ["--epochs", "6", "--lr", "0.02", "--batch-size", "8", "--no-progress", "--save-steps", "0"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return d


def test_multi_rm_saves_objectives_scale_and_weights(multi_run):
    meta = json.loads((multi_run / "rm" / "rewardlab.json").read_text())["model"]
    assert meta["kind"] == "multi" and meta["objectives"] == OBJ and meta["scalarizer"] == "weighted_sum"
    assert len(meta["reward_scale"]) == 2 and all(s["std"] > 0 for s in meta["reward_scale"])
    rm = RewardModel.load(multi_run / "rm")
    rc, rr = score_pairs(rm, make_pairs(24))
    both = torch.cat([rc, rr])  # the training responses: normalised, each head has mean 0 and std 1
    z = (both - both.mean(0)) / both.std(0, unbiased=False)
    assert torch.allclose(scalarize(rm, both, "weighted_sum", weights=[1.0, 0.0]), z[:, 0], atol=1e-4)
    w = meta["scalarizer_params"]["weighted_sum"]["weights"]  # fitted on labels["overall"] = 0.8
    assert len(w) == 2 and w[0] > 0


def test_multi_rm_learns_each_objective(multi_run):
    rm = RewardModel.load(multi_run / "rm")
    from rewardlab.data.load import load_pairs

    res = evaluate(rm, load_pairs(multi_run / "eval.jsonl"))
    assert res["scalarizer"] == "weighted_sum" and res["n"] == 10
    objs = res["objectives"]
    assert objs["helpful"]["n"] == 6 and objs["harmless"]["n"] == 6  # named by 4 + unlabelled 2
    assert objs["helpful"]["accuracy"] >= 5 / 6
    rc, rr = score_pairs(rm, make_pairs(8))
    assert (rc[:, 0] > rr[:, 0]).all() and (rc[:, 1] < rr[:, 1]).all()  # opposite heads learned


@pytest.mark.parametrize("name", SCALARIZERS.names())
def test_multi_rm_scores_with_every_scalarizer(multi_run, tmp_path, name):
    rm = RewardModel.load(multi_run / "rm")
    out = tmp_path / "scores.jsonl"
    res = CliRunner().invoke(
        app,
        ["score", "--model", str(multi_run / "rm"), "--data", str(multi_run / "eval.jsonl")]
        + ["--out", str(out), "--scalarizer", name],
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in open(out)]
    raw = torch.tensor([[r["rewards"][o] for o in OBJ] for r in rows])
    lib = rm.score([r["prompt"] for r in rows], [r["response"] for r in rows])
    assert torch.allclose(raw, lib, atol=1e-5)
    expected = scalarize(rm, lib, name)
    assert torch.allclose(torch.tensor([r["reward"] for r in rows]), expected, atol=1e-5)
    res = CliRunner().invoke(
        app,
        ["evaluate", "--model", str(multi_run / "rm"), "--data", str(multi_run / "eval.jsonl")]
        + ["--json", "--scalarizer", name],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["scalarizer"] == name and set(report["objectives"]) == set(OBJ)


def test_bon_and_bad_scalarizer(multi_run, tmp_path):
    rows = [{"prompt": "fix my bike?", "responses": ["please check the chain", "go away stupid stupid"]}]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rm = RewardModel.load(multi_run / "rm")
    r = rm.score(["fix my bike?"] * 2, rows[0]["responses"])
    for name in ("worst_case", "weighted_sum"):
        out = tmp_path / f"{name}.jsonl"
        args = ["bon", "--model", str(multi_run / "rm"), "--data", str(tmp_path / "c.jsonl")]
        res = CliRunner().invoke(app, [*args, "--out", str(out), "--k", "0", "--scalarizer", name])
        assert res.exit_code == 0, res.output
        got = json.loads(out.read_text())
        assert got["best_index"] == int(torch.argmax(scalarize(rm, r, name)))
        assert got["reward"] == pytest.approx(scalarize(rm, r, name).tolist(), abs=1e-5)
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--scalarizer", "median"])
    assert res.exit_code == 2 and "unknown scalarizer 'median'" in res.output


def test_one_objective_evaluate_is_unchanged(tiny_bert):
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, max_length=48, lora_r=2))
    res = evaluate(rm, make_pairs(4), scalarizer="worst_case")  # ignored for K = 1
    assert "objectives" not in res and "scalarizer" not in res
    rc, rr = score_pairs(rm, make_pairs(4))
    assert res["accuracy"] == pytest.approx(float((rc[:, 0] > rr[:, 0]).float().mean()))


def test_evaluate_table_lists_objectives(multi_run):
    res = CliRunner().invoke(
        app, ["evaluate", "--model", str(multi_run / "rm"), "--data", str(multi_run / "eval.jsonl")]
    )
    assert res.exit_code == 0, res.output
    assert "objectives" in res.output and "helpful" in res.output and "harmless" in res.output


def test_heldout_accuracy_is_evaluate_on_the_seeded_sample(tiny_bert):
    import random

    from rewardlab.data.bundled import bundled_set
    from rewardlab.evaluate.evaluator import heldout_accuracy

    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, max_length=48, lora_r=2))
    got = heldout_accuracy({"a": rm}, ("hhh",), 5, seed=3)
    pairs = random.Random(3).sample(bundled_set("hhh", 3), 5)
    want = evaluate(rm, pairs)
    assert got["hhh"]["a"] == {k: want[k] for k in ("n", "accuracy", "longer_accuracy", "shorter_accuracy")}
    assert got["hhh"]["a"]["n"] == 5
