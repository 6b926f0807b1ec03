"""rewardlab.rl.grpo_log: the per-step GRPO log (through a real TRL GRPOTrainer on a tiny policy),
the prompt-column wrapper, resume truncation, the validated reader, the trend statistics, the plot."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerState
from trl import GRPOConfig, GRPOTrainer

from rewardlab.data.schema import DataError
from rewardlab.rl import trl_reward_func
from rewardlab.rl.grpo_log import (
    GRPOLogCallback,
    PromptColumnReward,
    plot_log,
    read_log,
    regold,
    slope_ci95,
    trend,
)

USERS = ["Name a colour.", "Say yes.", "What is 2+2?", "Hi"]
ROWS = [
    {"prompt": [{"role": "user", "content": u}], "rm_prompt": f"\n\nHuman: {u}\n\nAssistant:"} for u in USERS
]


def test_prompt_column_reward_scores_the_column(multi_dir):
    f = trl_reward_func(multi_dir)
    g = PromptColumnReward(f, name="proxy")
    chat, text, done = (
        [r["prompt"] for r in ROWS],
        [r["rm_prompt"] for r in ROWS],
        ["4.", "Blue.", "Yes", "Hello"],
    )
    assert g.__name__ == "proxy" and PromptColumnReward(f).__name__ == f.__name__
    assert g(chat, done, rm_prompt=text, trainer_state=None) == f(text, done)
    assert g(chat, done) == f(chat, done)  # no column: TRL's prompts
    assert f(text, done) != f(chat, done)  # the column matters for this RM


@pytest.fixture
def grpo_run(tiny_llama, multi_dir, scalar_dir, tmp_path):
    """Two GRPO steps of a tiny random policy: proxy = worst case of a 2-head RM, gold (weight 0)."""
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.model_input_names = [
        "input_ids",
        "attention_mask",
    ]  # a BERT tokenizer: no token_type_ids for a decoder
    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama)
    proxy = PromptColumnReward(trl_reward_func(multi_dir, scalarizer="worst_case"), name="proxy")
    gold = PromptColumnReward(trl_reward_func(scalar_dir), name="gold", samples=tmp_path / "samples.jsonl")
    cfg = GRPOConfig(
        output_dir=str(tmp_path / "policy"),
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        learning_rate=1e-3,
        max_steps=2,
        logging_steps=1,
        reward_weights=[1.0, 0.0],
        save_strategy="no",
        report_to="none",
    )
    log, metrics = tmp_path / "grpo_log.jsonl", tmp_path / "metrics.jsonl"
    log.write_text('{"step": 7, "reward": 0.0, "gold_reward": null, "reward_std": null}\n')  # a stale run
    cb = GRPOLogCallback(log, "gold", metrics, tmp_path / "samples.jsonl")
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[proxy, gold],
        args=cfg,
        train_dataset=Dataset.from_list(ROWS),
        processing_class=tok,
        callbacks=[cb],
    )
    trainer.train()
    return trainer, log, metrics, gold, multi_dir


def test_callback_logs_proxy_and_gold_of_the_same_completions(grpo_run):
    trainer, log, metrics, gold, proxy_dir = grpo_run
    rows = read_log(log)
    assert [r["step"] for r in rows] == [1, 2]  # the stale row is gone: a fresh run starts at step 0
    assert all(math.isfinite(r[k]) for r in rows for k in ("reward", "gold_reward", "reward_std"))
    last = trainer._logs  # the last step's completions and each function's rewards (TRL keeps them)
    assert rows[-1]["reward"] == pytest.approx(statistics.fmean(last["rewards"]["proxy"]), abs=1e-6)
    assert rows[-1]["gold_reward"] == pytest.approx(statistics.fmean(last["rewards"]["gold"]), abs=1e-6)
    by_user = {r["prompt"][0]["content"]: r["rm_prompt"] for r in ROWS}
    rm_prompts = [by_user[p[0]["content"]] for p in last["prompt"]]
    rescored = gold(list(last["prompt"]), list(last["completion"]), rm_prompt=rm_prompts)
    assert rescored == pytest.approx(list(last["rewards"]["gold"]), abs=1e-5)  # gold saw these samples
    extra = [json.loads(ln) for ln in metrics.read_text().splitlines()]
    assert [e["step"] for e in extra] == [1, 2] and "completions/mean_length" in extra[0]

    samples = [json.loads(ln) for ln in (log.parent / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [1] * 4 + [2] * 4 + [0] * 4  # + the direct call above
    assert [s["reward"] for s in samples[4:8]] == pytest.approx(list(last["rewards"]["gold"]), abs=1e-6)
    # rescoring the recorded samples with the proxy as "gold" reproduces the proxy's logged means
    regolded = regold(log, log.parent / "samples.jsonl", trl_reward_func(proxy_dir, scalarizer="worst_case"))
    assert [r["gold_reward"] for r in regolded] == pytest.approx([r["reward"] for r in rows], abs=1e-5)
    assert read_log(log) == regolded


def test_resume_keeps_rows_up_to_the_checkpoint(tmp_path):
    log = tmp_path / "grpo_log.jsonl"
    log.write_text(
        "".join(
            json.dumps({"step": s, "reward": s, "gold_reward": None, "reward_std": None}) + "\n"
            for s in (1, 2, 3)
        )
    )
    cb = GRPOLogCallback(log, gold_name=None)
    cb.on_train_begin(None, TrainerState(global_step=2), None)
    cb.on_log(None, TrainerState(global_step=3), None, logs={"reward": 1.5, "reward_std": float("nan")})
    cb.on_log(None, TrainerState(global_step=3), None, logs={"train_runtime": 9.0})  # not a step row
    assert read_log(log) == [
        {"step": 1, "reward": 1, "gold_reward": None, "reward_std": None},
        {"step": 2, "reward": 2, "gold_reward": None, "reward_std": None},
        {"step": 3, "reward": 1.5, "gold_reward": None, "reward_std": None},  # NaN → null
    ]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", "2: invalid JSON"),
        ('{"step": 2, "reward": 1.0, "reward_std": null}', "2: field 'gold_reward': missing"),
        ('{"step": "2", "reward": 1.0, "gold_reward": null, "reward_std": null}', "2: field 'step'"),
        ('{"step": 2, "reward": "x", "gold_reward": null, "reward_std": null}', "2: field 'reward'"),
    ],
)
def test_read_log_names_file_line_field(tmp_path, line, match):
    path = tmp_path / "grpo_log.jsonl"
    path.write_text('{"step": 1, "reward": 1.0, "gold_reward": 0.5, "reward_std": 0.1}\n' + line + "\n")
    with pytest.raises(DataError, match=f"grpo_log.jsonl:{match}"):
        read_log(path)


def test_slope_and_trend_on_known_values(tmp_path):
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert slope_ci95(xs, [2 * x + 1 for x in xs]) == pytest.approx((2.0, 0.0))
    b, h = slope_ci95(xs, [1.0, 3.0, 2.0, 5.0, 4.0])  # b = 0.8, SSR = 3.6, Sxx = 10, t_{0.975,3} = 3.182
    assert b == pytest.approx(0.8) and h == pytest.approx(3.182 * math.sqrt(3.6 / 3 / 10))
    rows = [
        {"step": s, "reward": float(s), "gold_reward": None if s < 3 else 0.0, "reward_std": None}
        for s in range(1, 21)
    ]
    t = trend(rows, "reward", window=5)
    assert t["first_mean"] == pytest.approx(3.0) and t["last_mean"] == pytest.approx(18.0)
    assert t["delta"] == pytest.approx(15.0) and t["slope_per_step"] == pytest.approx(1.0)
    assert trend(rows, "gold_reward")["steps"] == 18 and trend(rows[:1], "reward") is None
    plot_log(rows, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
