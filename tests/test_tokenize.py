"""A saved RM scores the same when fed the way TRL (GRPO's reward-model path, RewardTrainer) and
RewardBench feed it: ``apply_chat_template(messages, tokenize=False)`` → ``tokenizer(text,
add_special_tokens=False)`` → ``AutoModelForSequenceClassification`` logits."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.tokenize import MIN_PROMPT, fit_to_budget

TOL = 1e-5
PROMPTS = [
    "How do I fix a flat bicycle tyre?",
    [
        {"role": "user", "content": "Can you help me plan a trip?"},
        {"role": "assistant", "content": "Sure, where would you like to go?"},
        {"role": "user", "content": "Somewhere warm in March, on a budget."},
    ],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}],
]
RESPONSES = [
    "Remove the wheel, find the puncture, patch it and pump the tyre back up.",
    "Lisbon or Seville: mild weather, cheap flights and lots to see on foot.",
    "4",
]


def _perturbed(rm: RewardModel) -> RewardModel:
    with torch.no_grad():  # LoRA B starts at zero: make the adapter matter
        for n, p in rm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    return rm


def trl_rewards(model_dir, prompts, responses) -> torch.Tensor:
    """TRL's recipe with plain transformers only (no rewardlab code), batched with right padding
    as GRPO's reward-model path does, and one at a time as RewardBench's pipeline may."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    convs = [
        ([{"role": "user", "content": p}] if isinstance(p, str) else list(p))
        + [{"role": "assistant", "content": r}]
        for p, r in zip(prompts, responses, strict=True)
    ]
    texts = [tok.apply_chat_template(c, tokenize=False) for c in convs]
    with torch.no_grad():
        batch = tok(texts, padding=True, padding_side="right", add_special_tokens=False, return_tensors="pt")
        batched = model(**batch).logits
        single = torch.cat(
            [model(**tok(t, add_special_tokens=False, return_tensors="pt")).logits for t in texts]
        )
    torch.testing.assert_close(batched, single, atol=TOL, rtol=0)
    return single


@pytest.mark.parametrize("backbone", ["tiny_bert", "tiny_llama"])
def test_trl_recipe_scores_like_rewardlab(backbone, request, tmp_path):
    torch.manual_seed(0)
    path = request.getfixturevalue(backbone)
    rm = _perturbed(RewardModel.build(ModelConfig(backbone=path, max_length=128, objectives=["a", "b"])))
    expected = rm.score(PROMPTS, RESPONSES)
    rm.save(tmp_path / "m")
    got = trl_rewards(tmp_path / "m", PROMPTS, RESPONSES)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)
    assert expected[:, 0].std() > 0


def test_bert_rm_reads_one_segment(tiny_bert):
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, max_length=64))
    seq = rm.encode(["hello"], ["world"])[0]
    tok = rm.tokenizer
    ids = tok.convert_tokens_to_ids(["[CLS]", "hello", "[SEP]", "world", "[SEP]"])
    assert seq == {"input_ids": ids}  # no token_type_ids: all 0, as the template path feeds it


def test_saved_tokenizer_has_no_truncation_side_effect(tiny_backbone, tmp_path):
    rm = RewardModel.build(ModelConfig(backbone=tiny_backbone, max_length=64))
    rm.encode(["p " * 100], ["r " * 100])
    rm.save(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert tok.truncation_side == "right" and tok.chat_template


def test_fit_to_budget_keeps_leading_specials_and_response_end():
    special = {0}
    ids = [0] + list(range(100, 140)) + list(range(200, 230))  # lead, 40 prompt, 30 response
    out = fit_to_budget(ids, 41, 32, special)
    assert len(out) == 32 and out[0] == 0
    assert out[1 : 1 + MIN_PROMPT] == list(range(140 - MIN_PROMPT, 140))  # the prompt's end
    assert out[-(31 - MIN_PROMPT) :] == list(range(230 - (31 - MIN_PROMPT), 230))  # the response's end
    short = fit_to_budget(ids, 41, 60, special)  # only the prompt is cut
    assert short[-30:] == list(range(200, 230)) and short[1] == 100 + 40 - (60 - 31)
    assert fit_to_budget(ids, 41, 100, special) == ids


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["minilm", "smollm2"])
def test_trl_recipe_on_real_backbones(backbone, tmp_path):
    torch.manual_seed(0)
    rm = _perturbed(RewardModel.build(ModelConfig(backbone=backbone, max_length=256)))
    expected = rm.score(PROMPTS, RESPONSES)
    rm.save(tmp_path / "m")
    torch.testing.assert_close(trl_rewards(tmp_path / "m", PROMPTS, RESPONSES), expected, atol=TOL, rtol=0)
