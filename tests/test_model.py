"""Reward model: readout invariances, truncation, save/load with plain HF + peft, trunk cache."""

from __future__ import annotations

import pytest
import torch

from pairs_data import make_pairs
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache

TOL = 1e-5  # stated tolerance for invariance (float32 reductions over different padding)


def _rm(path: str, **kw) -> RewardModel:
    torch.manual_seed(0)
    kw.setdefault("train_layers", 1)
    rm = RewardModel.build(ModelConfig(backbone=path, max_length=64, **kw))
    with torch.no_grad():  # make LoRA B non-zero so the adapter matters in every test
        for n, p in rm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    return rm


def _texts():
    pairs = make_pairs(7)
    return [p.prompt for p in pairs], [p.rejected if i % 2 else p.chosen for i, p in enumerate(pairs)]


def test_scores_invariant_to_batch_size_and_padding_side(tiny_backbone):
    rm = _rm(tiny_backbone)
    prompts, responses = _texts()
    seqs = rm.encode(prompts, responses)
    one = torch.cat([rm.score_encoded([s]) for s in seqs])
    batched = rm.score_encoded(seqs, max_batch=64)
    left = rm.score_encoded(seqs, max_batch=3, side="left")
    assert torch.allclose(one, batched, atol=TOL) and torch.allclose(one, left, atol=TOL)
    assert one.std() > 0  # different inputs get different rewards


def test_score_encoded_runs_the_planned_passes(tiny_backbone, monkeypatch):
    """Offline scoring pads no more than the least-work plan, keeps the token budget and the row
    limit, and every sequence gets the reward it gets alone."""
    from rewardlab.models.pass_plan import PlanConfig, plan_batches

    rm = _rm(tiny_backbone)
    prompts, responses = _texts()
    prompts, responses = prompts * 3, [r * (1 + i % 4) for i, r in enumerate(responses * 3)]
    seqs = rm.encode(prompts, responses)
    lengths = [len(s["input_ids"]) for s in seqs]
    assert len(set(lengths)) > 5
    shapes, infer = [], rm._infer
    monkeypatch.setattr(rm, "_infer", lambda b: shapes.append(tuple(b["input_ids"].shape)) or infer(b))
    got = rm.score_encoded(seqs, batch_tokens=120, max_batch=4)
    plan = plan_batches(lengths, PlanConfig(max_tokens=120, max_rows=4))
    assert sorted(shapes) == sorted((len(p), max(lengths[i] for i in p)) for p in plan)
    assert all(rows <= 4 and (rows == 1 or rows * t <= 120) for rows, t in shapes)
    assert sum(r * t for r, t in shapes) >= sum(lengths)  # every real token is scored
    monkeypatch.setattr(rm, "_infer", infer)
    alone = torch.cat([rm.score_encoded([s]) for s in seqs])
    assert torch.allclose(got, alone, atol=TOL)


def test_decoder_reads_last_real_token_when_pad_equals_eos(tiny_llama):
    rm = _rm(tiny_llama)
    assert rm.tokenizer.pad_token_id == rm.tokenizer.eos_token_id
    seq = rm.encode(["hi"], ["hello there"])[0]
    ids = torch.tensor([seq["input_ids"]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        r = rm(ids, mask)
        # the same sequence with 5 pad(=eos) tokens on either side must give the same reward
        pad = torch.full((1, 5), rm.tokenizer.pad_token_id)
        right = rm(torch.cat([ids, pad], 1), torch.cat([mask, torch.zeros_like(pad)], 1))
        left = rm(torch.cat([pad, ids], 1), torch.cat([torch.zeros_like(pad), mask], 1))
    assert torch.allclose(r, right, atol=TOL) and torch.allclose(r, left, atol=TOL)


def test_truncation_keeps_the_end_of_the_response(tiny_backbone):
    rm = _rm(tiny_backbone)
    long_prompt = "background " * 200
    response = "word " * 30 + "FINALTOKEN"
    for p, r in ((long_prompt, response), ("short", "start " * 300 + "FINALTOKEN")):
        seq = rm.encode([p], [r])[0]["input_ids"]
        assert len(seq) <= 64
        assert "finaltoken" in rm.tokenizer.decode(seq).lower().replace(" ", "")


def test_save_load_same_scores_with_plain_hf_and_peft(tiny_backbone, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    rm = _rm(tiny_backbone, objectives=["helpful", "harmless"])
    prompts, responses = _texts()
    seqs = rm.encode(prompts, responses)
    expected = rm.score_encoded(seqs)
    rm.save(tmp_path / "m")
    assert torch.allclose(RewardModel.load(tmp_path / "m").score_encoded(seqs), expected, atol=TOL)
    assert torch.allclose(
        RewardModel.load(tmp_path / "m", adapter=True).score_encoded(seqs), expected, atol=TOL
    )
    # plain transformers, right padding, no rewardlab code in the loop
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=2)
    base.config.pad_token_id = rm.tokenizer.pad_token_id
    peft = PeftModel.from_pretrained(base, tmp_path / "m" / "adapter").eval()
    assert hf.config.id2label == {0: "helpful", 1: "harmless"}
    batch = rm.collate(seqs)
    with torch.no_grad():
        assert torch.allclose(hf(**batch).logits, expected, atol=TOL)
        assert torch.allclose(peft(**batch).logits, expected, atol=TOL)


@pytest.mark.parametrize("lora_r", [0, 4])
def test_trunk_cache_gives_the_same_rewards_and_gradients(tiny_backbone, lora_r):
    rm = _rm(tiny_backbone, lora_r=lora_r)
    rm.eval()
    prompts, responses = _texts()
    batch = rm.collate(rm.encode(prompts, responses))
    trunk = TrunkCache(rm, rm.trunk_split)
    assert trunk.active and trunk.split == 1
    ids = list(range(len(prompts)))
    trunk.fill(ids, batch)
    full = rm(**batch)
    full.sum().backward()
    g_full = {n: p.grad.clone() for n, p in rm.named_parameters() if p.requires_grad}
    rm.zero_grad()
    with trunk.injected(trunk.padded(ids, batch["input_ids"].shape[1])):
        cached = rm(**batch)
    cached.sum().backward()
    assert torch.allclose(full, cached, atol=TOL)
    for n, p in rm.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, g_full[n], atol=1e-5), n
    assert all(not p.requires_grad for n, p in rm.named_parameters() if ".0." in n and "layer" in n)


@pytest.mark.parametrize("lora_r", [0, 4])
def test_cls_only_top_layer_matches_hf_forward(tiny_bert, lora_r):
    from rewardlab.models.fast_top import cls_top_rewards, supports_cls_top

    rm = _rm(tiny_bert, lora_r=lora_r, train_layers=1)
    rm.eval()
    assert supports_cls_top(rm)
    prompts, responses = _texts()
    batch = rm.collate(rm.encode(prompts, responses))
    trunk = TrunkCache(rm, rm.trunk_split)
    ids = list(range(len(prompts)))
    trunk.fill(ids, batch)
    full = rm(**batch)
    full.sum().backward()
    g_full = {n: p.grad.clone() for n, p in rm.named_parameters() if p.requires_grad}
    rm.zero_grad()
    fast = cls_top_rewards(rm, trunk.padded(ids, batch["input_ids"].shape[1]), batch["attention_mask"])
    fast.sum().backward()
    assert torch.allclose(full, fast, atol=TOL)
    for n, p in rm.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, g_full[n], atol=1e-5), n
    assert not supports_cls_top(_rm(tiny_bert, train_layers=2))


def test_fast_inference_scores_match_the_hf_forward(tiny_bert):
    rm = _rm(tiny_bert, train_layers=2)  # any BERT classifier, whatever trains
    prompts, responses = _texts()
    seqs = rm.encode(prompts, responses)
    fast = rm.score_encoded(seqs, max_batch=3, side="left")
    rm.fast_inference = False
    slow = rm.score_encoded(seqs, max_batch=3)
    assert torch.allclose(fast, slow, atol=TOL)
