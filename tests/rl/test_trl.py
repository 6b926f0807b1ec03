"""rewardlab RMs as TRL reward functions: local model and server, standard and conversational
inputs, micro-batching, the async variant, TRL's own name/async checks."""

from __future__ import annotations

import asyncio

import pytest
import torch
from trl.trainer.utils import get_callable_name, is_async_callable

import rewardlab
from rewardlab.rl import trl_reward_func
from rewardlab.serve import ServeConfig, ServerState
from serve.live_server import running

PROMPTS = ["What is 2+2?", "Name a colour.", "Write a haiku about rain.", "Hi", "Say yes."]
COMPLETIONS = ["4.", "Blue.", "Rain on the roof / soft drums", "Hello! How can I help?", "Yes"]
CHAT_PROMPTS = [[{"role": "user", "content": p}] for p in PROMPTS]
CHAT_COMPLETIONS = [[{"role": "assistant", "content": c}] for c in COMPLETIONS]


def _expected(model_dir, prompts, scalarizer=None) -> torch.Tensor:
    return rewardlab.load(model_dir).score(prompts, COMPLETIONS, scalarizer=scalarizer).reward


def test_local_standard_and_conversational(multi_dir):
    f = trl_reward_func(multi_dir, batch_size=2)  # 5 completions: three micro-batches
    extra = {"trainer_state": None, "log_metric": print}  # what GRPOTrainer passes besides
    std = f(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=None, **extra)
    chat = f(prompts=CHAT_PROMPTS, completions=CHAT_COMPLETIONS)
    assert isinstance(std, list) and len(std) == 5 and all(isinstance(r, float) for r in std)
    assert torch.allclose(torch.tensor(std), _expected(multi_dir, PROMPTS), atol=1e-5)
    assert torch.allclose(torch.tensor(chat), _expected(multi_dir, CHAT_PROMPTS), atol=1e-5)
    assert get_callable_name(f) == f.__name__ and f.__name__.startswith("rewardlab_")
    assert not is_async_callable(f)


def test_scalarizer_and_penalty_need(multi_dir):
    worst = trl_reward_func(multi_dir, scalarizer="worst_case")(PROMPTS, COMPLETIONS)
    assert torch.allclose(torch.tensor(worst), _expected(multi_dir, PROMPTS, "worst_case"), atol=1e-5)
    with pytest.raises(ValueError, match="posterior"):
        trl_reward_func(multi_dir, penalty_k=1.0)
    with pytest.raises(ValueError, match="prompts"):
        trl_reward_func(multi_dir)(PROMPTS[:2], COMPLETIONS)


def test_server_url_and_async_variant(multi_dir):
    with running(ServerState.build(ServeConfig(model=multi_dir, token="t0k"))) as url:
        f = trl_reward_func(url, scalarizer="worst_case", batch_size=3, token="t0k")
        remote = f(CHAT_PROMPTS, CHAT_COMPLETIONS)
        g = trl_reward_func(url + "/score", token="t0k", asynchronous=True)
        assert is_async_callable(g)
        remote_async = asyncio.run(g(prompts=PROMPTS, completions=COMPLETIONS))
        with pytest.raises(RuntimeError, match="401"):
            trl_reward_func(url)(PROMPTS, COMPLETIONS)
    assert torch.allclose(torch.tensor(remote), _expected(multi_dir, CHAT_PROMPTS, "worst_case"), atol=1e-5)
    assert torch.allclose(torch.tensor(remote_async), _expected(multi_dir, PROMPTS), atol=1e-5)
    local_async = trl_reward_func(multi_dir, asynchronous=True)
    assert asyncio.run(local_async(PROMPTS, COMPLETIONS)) == trl_reward_func(multi_dir)(PROMPTS, COMPLETIONS)
