"""`rewardlab serve` as a user runs it (the CLI in its own process) with the real MiniLM RM,
answering SmolLM2-templated OpenRLHF queries."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from live_server import free_port

import rewardlab
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.serve.client import RewardClient

pytestmark = pytest.mark.slow

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a primary colour."},
    ],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a fact about cats."},
    ],
]
RESPONSES = ["Paris is the capital of France.", "Red", "Cats sleep for about 13 hours a day."]


@pytest.fixture(scope="module")
def minilm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm-rm")
    torch.manual_seed(0)
    RewardModel.build(ModelConfig(backbone="minilm")).save(out)
    return out


def test_cli_serves_smollm2_templated_queries(minilm_dir):
    from transformers import AutoTokenizer

    from rewardlab.assets import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
    prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in CONVERSATIONS]
    # as OpenRLHF decodes a rollout: the response, the end of turn, then padding
    queries = [
        p + r + "<|im_end|>" + "<|im_end|>" * i
        for i, (p, r) in enumerate(zip(prompts, RESPONSES, strict=True))
    ]
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab.cli", "serve", "--model", str(minilm_dir), "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--policy-tokenizer", "smollm2"], stderr=subprocess.PIPE, text=True)
    try:
        client = RewardClient(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                health = client.get("/health")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        rep = client.post("/get_reward", {"query": queries, "prompts": prompts, "labels": [None] * 3})
        alone = client.post("/get_reward", {"query": queries})  # no prompts: parsed from the query
    finally:
        proc.terminate()
        proc.wait(30)
    assert health.body["policy_template"] and health.body["objectives"] == ["reward"]
    assert rep.status == 200 and alone.status == 200
    expected = rewardlab.load(minilm_dir).score(CONVERSATIONS, RESPONSES).reward  # the clean texts
    assert torch.allclose(torch.tensor(rep.body["rewards"]), expected, atol=1e-5)
    assert torch.allclose(torch.tensor(alone.body["rewards"]), expected, atol=1e-5)
    raw = rewardlab.load(minilm_dir).score([""] * 3, queries).reward  # the markup would change it
    assert not torch.allclose(raw, expected, atol=1e-3)
