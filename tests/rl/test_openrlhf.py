"""OpenRLHF's Python-file route: the module loaded by path as OpenRLHF loads it, thread-safe,
answering what the server answers."""

from __future__ import annotations

import importlib.util
import threading

import torch

import rewardlab.rl.openrlhf
from rewardlab.serve import ServeConfig, ServerState
from rewardlab.serve.client import RewardClient
from serve.live_server import running

PROMPTS = [f"Question {i}: what is {i} + {i}?" for i in range(12)]
QUERIES = [p + f" It is {2 * i}." * (1 + i % 3) for i, p in enumerate(PROMPTS)]


def _load_by_path():
    """Import the file as OpenRLHF does (a path, not a package)."""
    spec = importlib.util.spec_from_file_location("reward_func_file", rewardlab.rl.openrlhf.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reward_func_matches_the_server_and_is_thread_safe(multi_dir, monkeypatch):
    monkeypatch.setenv("REWARDLAB_MODEL", multi_dir)
    module = _load_by_path()
    out = module.reward_func(QUERIES, PROMPTS, [None] * 12)
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].shape == (12,) and out["rewards"].dtype == torch.float32
    assert set(out["extra_logs"]) == {"helpful", "harmless"}
    assert all(v.shape == (12,) for v in out["extra_logs"].values())
    with running(ServerState.build(ServeConfig(model=multi_dir))) as url:
        served = RewardClient(url).post("/get_reward", {"query": QUERIES, "prompts": PROMPTS}).body
    assert torch.allclose(out["rewards"], torch.tensor(served["rewards"]), atol=1e-5)
    harmless = torch.tensor(served["extra_logs"]["harmless"])
    assert torch.allclose(out["extra_logs"]["harmless"], harmless, atol=1e-5)

    got: dict[int, torch.Tensor] = {}
    barrier = threading.Barrier(6)

    def call(k: int) -> None:
        barrier.wait()
        got[k] = module.reward_func(QUERIES[k::6], PROMPTS[k::6], None)["rewards"]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(6):
        assert torch.allclose(got[k], out["rewards"][k::6], atol=1e-5)
    empty = module.reward_func([], [], [])
    assert empty["rewards"].shape == (0,) and all(v.numel() == 0 for v in empty["extra_logs"].values())
