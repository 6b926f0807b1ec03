"""Knowledge and fused RMs: train, save, ``rewardlab.load``, score, evaluate, explain, best-of-n."""

from __future__ import annotations

import random

import pytest
import torch

import rewardlab
from rewardlab.bayes.predictive import best_of_n
from rewardlab.data.bundled import bundled_set
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.knowledge import KnowledgeConfig, KnowledgeRM, explain_pair, train_knowledge
from rewardlab.knowledge.rm import NEURAL_FEATURE
from rewardlab.models.config import ModelConfig, RMKind
from rewardlab.train.config import TrainConfig


@pytest.fixture(scope="module")
def summeval():
    train = bundled_set("summeval-train")
    return random.Random(0).sample(train, 60), bundled_set("summeval-test")


@pytest.fixture(scope="module")
def knowledge_dir(summeval, tmp_path_factory):
    out = tmp_path_factory.mktemp("krm")
    train_knowledge(summeval[0], out=out)
    return out


def test_knowledge_rm_saves_loads_and_scores_through_rewardlab_load(summeval, knowledge_dir):
    train, test = summeval
    loaded = rewardlab.load(knowledge_dir)
    assert loaded.knowledge and loaded.rm.cfg.kind == RMKind.KNOWLEDGE
    assert loaded.rm.feature_sets == ["general", "opinion_summary"]  # chosen for SummEval-OP pairs
    prompts, responses = [p.prompt for p in test[:8]], [p.chosen for p in test[:8]]
    s = loaded.score(prompts, responses)
    assert s.rewards.shape == (8, 1) and s.reward.shape == (8,) and (s.reward_std > 0).all()
    assert loaded.score(prompts, responses, uncertainty=False).reward_std is None
    fresh = train_knowledge(train)  # deterministic: the same fit in memory
    assert torch.allclose(fresh.score(prompts, responses)[:, 0], s.reward, atol=1e-5)


def test_knowledge_rm_beats_chance_and_evaluates_like_any_rm(summeval, knowledge_dir):
    loaded = rewardlab.load(knowledge_dir)
    test = summeval[1]
    r = evaluate(loaded.rm, test)  # the evaluate CLI's path
    assert r["n"] == len(test) and r["accuracy"] > 0.8  # 60 labels; longer-wins is ≈ 0.90 here
    m = loaded.uncertainty_metrics(test)
    assert m["uncertainty_source"] == "laplace" and 0 <= m["error_auroc"] <= 1


def test_explain_contributions_sum_to_the_reward_difference(summeval, knowledge_dir):
    rm = KnowledgeRM.load(knowledge_dir)
    p = summeval[1][3]
    e = explain_pair(rm, p.prompt, p.chosen, p.rejected)
    contrib = [f["contribution"] for f in e["features"]]
    assert sum(contrib) == pytest.approx(e["delta"])
    assert [abs(c) for c in contrib] == sorted((abs(c) for c in contrib), reverse=True)
    assert e["neural"] is None and len(e["features"]) == len(rm.names)


def test_best_of_n_accepts_a_knowledge_rm(summeval, knowledge_dir):
    p = summeval[1][0]
    rows = best_of_n(rewardlab.load(knowledge_dir), [p.prompt], [[p.rejected, p.chosen]], k=1.0)
    assert rows[0]["best_index"] in (0, 1) and all(s > 0 for s in rows[0]["reward_std"])


def test_label_rule_and_chosen_feature_sets(summeval):
    train = summeval[0]
    flipped = [type(p)(**{**p.__dict__, "labels": {"overall": 0.0}}) for p in train]  # all say rejected
    rm = train_knowledge(
        flipped, knowledge_cfg=KnowledgeConfig(feature_sets=["general"], prior_precision=1.0)
    )
    k = rm.names.index("general.log_length")
    assert rm.names[0].startswith("general.") and len(rm.feature_sets) == 1
    assert rm.bt.weights[k] < 0  # longer chosen responses, labelled worse: length gets a negative weight
    with pytest.raises(ValueError, match="unknown feature set 'nope'"):
        KnowledgeConfig(feature_sets=["nope"])
    with pytest.raises(ValueError, match="no_such_module"):
        KnowledgeConfig(feature_sets=["no_such_module:x"])
    with pytest.raises(ValueError, match="knowledge or fused"):
        train_knowledge(train, ModelConfig())


def test_fused_rm_trains_saves_loads_and_explains(tiny_bert, summeval, tmp_path):
    train, test = summeval[0][:24], summeval[1][:16]
    cfg = ModelConfig(kind="fused", backbone=tiny_bert, max_length=64, lora_r=2, lora_alpha=4)
    tcfg = TrainConfig(epochs=1, batch_size=8, save_steps=0, progress=False)
    rm = train_knowledge(train, cfg, KnowledgeConfig(prior_precision=1.0), tcfg, tmp_path / "f", test[:8])
    assert rm.names[-1] == NEURAL_FEATURE and (tmp_path / "f" / "neural" / "rewardlab.json").exists()
    loaded = rewardlab.load(tmp_path / "f")
    assert loaded.rm.cfg.kind == RMKind.FUSED and loaded.rm.neural is not None
    prompts, responses = [p.prompt for p in test], [p.chosen for p in test]
    nn_loaded, nn_trained = (m.neural.score(prompts, responses)[:, 0] for m in (loaded.rm, rm))
    assert torch.allclose(nn_loaded, nn_trained, rtol=1e-5, atol=0)
    # The fused reward weighs the neural reward by w / s, s its spread on the training pairs: this
    # random tiny BERT's rewards spread by ~1e-5, so fp32 noise in them is amplified ~1e4-fold.
    amp = float(abs(rm.bt.weights[-1]) / rm.bt.scale[-1])
    assert torch.allclose(
        loaded.score(prompts, responses).reward, rm.score(prompts, responses)[:, 0], atol=1e-4 + amp * 1e-8
    )
    e = explain_pair(loaded.rm, test[0].prompt, test[0].chosen, test[0].rejected)
    neural_row = next(f for f in e["features"] if f["feature"] == NEURAL_FEATURE)
    assert e["neural"] == neural_row["contribution"]
    nn_r = loaded.rm.neural.score([test[0].prompt] * 2, [test[0].chosen, test[0].rejected])[:, 0]
    assert neural_row["a"] - neural_row["b"] == pytest.approx(float(nn_r[0] - nn_r[1]), abs=1e-4)
    assert evaluate(loaded.rm, test)["n"] == len(test)
