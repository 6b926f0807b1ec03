"""The reward server against a real uvicorn on loopback: OpenRLHF shape, /score, limits, auth,
batching across concurrent requests, overload, normalisation."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from live_server import running

import rewardlab
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import META, RewardModel
from rewardlab.serve import ServeConfig, ServerState
from rewardlab.serve.client import RewardClient

PROMPTS = ["What is 2+2?", "Name a colour.", "Write a haiku about rain, please.", "Hi"]
RESPONSES = [
    "4.",
    "Blue, like the sky on a clear day.",
    "Rain on the roof / soft drums",
    "Hello! How can I help?",
]
PAIRS = list(zip(PROMPTS, RESPONSES, strict=True))


def _state(model_dir, **kw) -> ServerState:
    return ServerState.build(ServeConfig(model=model_dir, **kw))


def _offline(model_dir, prompts, responses, **kw):
    return rewardlab.load(model_dir).score(prompts, responses, **kw)


def test_get_reward_openrlhf_shape_matches_offline(multi_dir):
    with running(_state(multi_dir)) as url:
        body = {
            "query": [p + r for p, r in PAIRS],
            "prompts": PROMPTS,
            "labels": [""] * 4,
        }
        rep = RewardClient(url).post("/get_reward", body)
    assert rep.status == 200, rep.body
    assert set(rep.body) == {"rewards", "scores", "extra_logs"}
    s = _offline(multi_dir, PROMPTS, RESPONSES)
    assert torch.allclose(torch.tensor(rep.body["rewards"]), s.reward, atol=1e-5)
    assert rep.body["scores"] == rep.body["rewards"]
    for k, name in enumerate(["helpful", "harmless"]):
        assert torch.allclose(torch.tensor(rep.body["extra_logs"][name]), s.rewards[:, k], atol=1e-5)


def test_health_reports_the_scoring_precision(scalar_dir):
    for precision in ("fp32", "bf16"):
        with running(_state(scalar_dir, precision=precision)) as url:
            health = RewardClient(url).get("/health").body
        assert health["precision"] == precision and health["status"] == "ok"


def test_one_objective_without_prompts_scores_the_whole_query(scalar_dir):
    with running(_state(scalar_dir)) as url:
        rep = RewardClient(url).post("/get_reward", {"query": RESPONSES[:2]})
    assert rep.status == 200 and rep.body["extra_logs"] == {}
    s = _offline(scalar_dir, ["", ""], RESPONSES[:2])
    assert torch.allclose(torch.tensor(rep.body["rewards"]), s.reward, atol=1e-5)


def test_empty_lists_bad_json_and_wrong_shapes(scalar_dir):
    with running(_state(scalar_dir)) as url:
        c = RewardClient(url)
        empty = c.post("/get_reward", {"query": [], "prompts": [], "labels": []})
        assert (empty.status, empty.body) == (200, {"rewards": [], "scores": [], "extra_logs": {}})
        assert c.post("/score", {"items": []}).body["results"] == []
        bad = c.request("POST", "/get_reward", b'{"query": ["a"')
        assert bad.status == 400 and bad.body["error"] == "bad_json"
        shape = c.post("/get_reward", {"query": "not a list"})
        assert shape.status == 422 and "query" in shape.body["detail"]
        counts = c.post("/get_reward", {"query": ["a", "b"], "prompts": ["a"]})
        assert counts.status == 422 and "prompts" in counts.body["detail"]
        assert c.post("/get_reward", [1, 2]).status == 422
        assert c.post("/score", [{"prompt": "p"}]).status == 422  # no response


def test_oversized_body_text_and_item_count(scalar_dir):
    with running(_state(scalar_dir, max_body_bytes=2000, max_text_chars=100, max_items=3)) as url:
        c = RewardClient(url)
        big = c.post("/get_reward", {"query": ["x" * 5000]})
        assert big.status == 413 and big.body["error"] == "body_too_large"
        long = c.post("/get_reward", {"query": ["ok", "y" * 101]})
        assert long.status == 413 and "query[1]" in long.body["detail"]
        many = c.post("/get_reward", {"query": ["a"] * 4})
        assert many.status == 413 and many.body["error"] == "too_many_items"
        assert c.post("/get_reward", {"query": ["fine"]}).status == 200  # the server still serves


def test_bearer_token(scalar_dir, monkeypatch):
    monkeypatch.setenv("REWARDLAB_TOKEN", "s3cret")
    with running(_state(scalar_dir)) as url:
        assert RewardClient(url).post("/get_reward", {"query": ["a"]}).status == 401
        wrong = RewardClient(url, token="s3creT").post("/get_reward", {"query": ["a"]})
        assert wrong.status == 401 and wrong.body["error"] == "unauthorized"
        assert RewardClient(url, token="s3cret").get("/health").status == 200
        assert RewardClient(url, token="s3cret").post("/get_reward", {"query": ["a"]}).status == 200


def test_concurrent_single_sample_requests_are_batched(multi_dir):
    n = 24
    prompts = [f"Question {i}: {PROMPTS[i % 4]}" for i in range(n)]
    responses = [RESPONSES[i % 4] * (1 + i % 3) for i in range(n)]
    with running(_state(multi_dir, max_batch=16, max_wait_ms=50)) as url:
        got = _burst(url, prompts, responses)
        health = RewardClient(url).get("/health").body
    assert len(got) == n and health["samples"] == n
    assert health["batches"] < n and health["largest_batch"] > 1  # requests shared forward passes
    s = _offline(multi_dir, prompts, responses)
    assert torch.allclose(torch.tensor([got[i] for i in range(n)]), s.reward, atol=1e-5)


def test_overload_answers_503_with_retry_after_and_timeout_504(scalar_dir):
    # one queued sample fills the queue while the worker waits (2 s) for a batch to fill
    with running(_state(scalar_dir, max_queue=1, max_batch=8, max_wait_ms=2000)) as url:
        first: dict = {}
        t = threading.Thread(
            target=lambda: first.update(r=RewardClient(url).post("/get_reward", {"query": ["a"]}))
        )
        t.start()
        c = RewardClient(url)
        while c.get("/health").body["queue_depth"] == 0:
            pass
        over = c.post("/get_reward", {"query": ["b"]})
        t.join()
        assert (
            over.status == 503 and over.headers["retry-after"] == "1" and over.body["error"] == "overloaded"
        )
        assert first["r"].status == 200  # the queued request is still answered
        assert c.get("/health").body["rejected"] == 1
    with running(_state(scalar_dir, max_wait_ms=2000, max_batch=8, timeout_s=0.2)) as url:
        late = RewardClient(url).post("/get_reward", {"query": ["a"]})
        assert late.status == 504 and late.body["error"] == "timeout"


def test_score_with_messages_and_scalarizer(multi_dir):
    items = [
        {"prompt": [{"role": "user", "content": p}], "response": r}
        for p, r in zip(PROMPTS, RESPONSES, strict=True)
    ]
    with running(_state(multi_dir)) as url:
        c = RewardClient(url)
        default = c.post("/score", {"items": items}).body
        worst = c.post("/score", {"items": items, "scalarizer": "worst_case"}).body
        bare = c.post("/score", items).body
        unknown = c.post("/score", {"items": items, "scalarizer": "nope"})
        penalty = c.post("/score", {"items": items, "penalty_k": 1.0})
        health = c.get("/health").body
    msgs = [i["prompt"] for i in items]
    s = _offline(multi_dir, msgs, RESPONSES)
    w = _offline(multi_dir, msgs, RESPONSES, scalarizer="worst_case")
    assert default["scalarizer"] == "weighted_sum" and worst["scalarizer"] == "worst_case"
    assert torch.allclose(torch.tensor([r["reward"] for r in default["results"]]), s.reward, atol=1e-5)
    assert torch.allclose(torch.tensor([r["reward"] for r in worst["results"]]), w.reward, atol=1e-5)
    assert not torch.allclose(s.reward, w.reward)  # the scalarizer changed the answer
    assert torch.allclose(
        torch.tensor([r["rewards"]["harmless"] for r in worst["results"]]), s.rewards[:, 1], atol=1e-5
    )
    assert bare["results"] == default["results"] and default["results"][0]["std"] is None
    assert unknown.status == 422 and "scalarizer" in unknown.body["detail"]
    assert penalty.status == 422 and "posterior" in penalty.body["detail"]
    assert health["objectives"] == ["helpful", "harmless"] and health["posterior"] is False
    assert health["kind"] == "multi" and health["queue_depth"] == 0


def test_normalize_on_fits_stores_and_applies(tiny_llama, tmp_path):
    scalar_dir = str(RewardModel.build(ModelConfig(backbone=tiny_llama)).save(tmp_path / "rm"))
    ref = tmp_path / "ref.jsonl"
    ref.write_text(
        "".join(
            json.dumps({"prompt": p, "response": r}) + "\n" for p, r in zip(PROMPTS, RESPONSES, strict=True)
        )
    )
    raw = _offline(scalar_dir, PROMPTS, RESPONSES).reward
    mean, std = float(raw.mean()), float(raw.std())
    with running(_state(scalar_dir, normalize_on=ref)) as url:
        rep = RewardClient(url).post("/get_reward", {"query": RESPONSES, "prompts": [""] * 4})
    stored = json.loads((tmp_path / "rm" / META).read_text())["normalization"]
    assert stored["n"] == 4 and abs(stored["mean"] - mean) < 1e-6 and abs(stored["std"] - std) < 1e-6
    z = (_offline(scalar_dir, [""] * 4, RESPONSES).reward - mean) / std
    assert torch.allclose(torch.tensor(rep.body["rewards"]), z, atol=1e-5)
    with running(_state(scalar_dir, normalize=True)) as url:  # a later server reads the stored one
        again = RewardClient(url).post("/get_reward", {"query": RESPONSES, "prompts": [""] * 4})
        assert RewardClient(url).get("/health").body["normalization"]["source"] == str(ref)
    assert torch.allclose(torch.tensor(again.body["rewards"]), z, atol=1e-5)


def test_normalize_without_stored_stats_and_critique_rm_are_refused(tiny_bert, tmp_path):
    plain = RewardModel.build(ModelConfig(backbone=tiny_bert)).save(tmp_path / "plain")
    with pytest.raises(ValueError, match="--normalize-on"):
        _state(plain, normalize=True)
    crit = RewardModel.build(ModelConfig(backbone=tiny_bert, critiques=True)).save(tmp_path / "crit")
    with pytest.raises(ValueError, match="critic backend"):
        _state(crit)


def test_ensemble_std_in_extra_logs_and_penalty_in_score(tiny_bert, tmp_path):
    from rewardlab.bayes import EnsembleConfig
    from rewardlab.bayes.ensemble import Ensemble

    torch.manual_seed(0)
    cfg = ModelConfig(
        backbone=tiny_bert,
        objectives=["helpful", "harmless"],
        lora_r=2,
        reward_scale=[{"mean": 0.0, "std": 1.0}, {"mean": 0.0, "std": 1.0}],
    )
    rm = RewardModel.build(cfg)
    rm.save(tmp_path / "rm")
    trainable = {n: p.detach().clone() for n, p in rm.named_parameters() if p.requires_grad}
    members = [{n: v + 0.2 * torch.randn_like(v) for n, v in trainable.items()} for _ in range(3)]
    Ensemble(rm, members, EnsembleConfig(members=3)).save(tmp_path / "rm")
    items = [{"prompt": p, "response": r} for p, r in PAIRS]
    with running(_state(tmp_path / "rm")) as url:
        c = RewardClient(url)
        logs = c.post("/get_reward", {"query": RESPONSES, "prompts": [""] * 4}).body["extra_logs"]
        pen = c.post("/score", {"items": items, "penalty_k": 2.0}).body
        assert c.get("/health").body["uncertainty_source"] == "ensemble"
    assert set(logs) == {"helpful", "harmless", "reward_std", "std/helpful", "std/harmless"}
    s = _offline(tmp_path / "rm", PROMPTS, RESPONSES)
    assert (s.reward_std > 0).all()
    want = s.reward - 2.0 * s.reward_std
    assert torch.allclose(torch.tensor([r["reward"] for r in pen["results"]]), want, atol=1e-5)
    stds = torch.tensor([r["reward_std"] for r in pen["results"]])
    assert torch.allclose(stds, s.reward_std, atol=1e-5) and pen["results"][0]["std"].keys() == {
        "helpful",
        "harmless",
    }


def _burst(url: str, prompts: list[str], responses: list[str]) -> dict[int, float]:
    """All requests at once, one sample each (OpenRLHF's shape); rewards by index."""
    got: dict[int, float] = {}
    barrier = threading.Barrier(len(prompts))

    def client(i: int) -> None:
        c = RewardClient(url)
        barrier.wait()
        rep = c.post("/get_reward", {"query": [prompts[i] + responses[i]], "prompts": [prompts[i]]})
        assert rep.status == 200
        got[i] = rep.body["rewards"][0]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_planned_passes_pad_less_than_one_sorted_batch_and_match_offline(multi_dir):
    n = 24  # lengths from a few tokens to ~150: one padded batch wastes most of its tokens
    prompts = [f"Q{i}: {PROMPTS[i % 4]}" for i in range(n)]
    responses = [" ".join(["word"] * (2 + (i * 37) % 150)) for i in range(n)]
    health = {}
    for policy in ("planned", "sorted"):
        with running(
            _state(multi_dir, max_batch=32, max_wait_ms=300, batch_policy=policy, plan_window=0)
        ) as url:
            got = _burst(url, prompts, responses)
            health[policy] = RewardClient(url).get("/health").body
        s = _offline(multi_dir, prompts, responses)
        assert torch.allclose(torch.tensor([got[i] for i in range(n)]), s.reward, atol=1e-5)
        assert health[policy]["samples"] == n and health[policy]["batch_policy"] == policy
    planned, sorted_ = health["planned"], health["sorted"]
    # sorted: the window in one take, which score_encoded itself cuts into least-padding passes
    # (its counter reports those; as one padded batch it would be ~0.5 real)
    lengths = [len(e["input_ids"]) for e in rewardlab.load(multi_dir).rm.encode(prompts, responses)]
    assert n * max(lengths) > 1.6 * sum(lengths)  # one padded batch would waste most tokens
    assert sorted_["batches"] == 1 and sorted_["padding_efficiency"] > 0.85
    assert 1 < planned["batches"] < n and planned["padding_efficiency"] > 0.85
    assert planned["rss_mib"] > 0 and planned["mean_latency_ms"] > 0


def test_packed_policy_scores_a_burst_in_one_unpadded_pass_and_matches_offline(multi_dir, scalar_dir):
    n = 24
    prompts = [f"Q{i}: {PROMPTS[i % 4]}" for i in range(n)]
    responses = [" ".join(["word"] * (2 + (i * 37) % 150)) for i in range(n)]
    with running(
        _state(multi_dir, max_batch=32, max_wait_ms=300, batch_policy="packed", plan_window=0)
    ) as url:
        got = _burst(url, prompts, responses)
        health = RewardClient(url).get("/health").body
    s = _offline(multi_dir, prompts, responses)
    assert torch.allclose(torch.tensor([got[i] for i in range(n)]), s.reward, atol=1e-5)
    assert health["packed"] is True and health["batch_policy"] == "packed"
    assert health["samples"] == n and health["batches"] <= 2  # the burst, not pass by length
    assert health["padding_efficiency"] > 0.85
    # a decoder RM is not packed: the policy scores the window through the offline path
    with running(_state(scalar_dir, batch_policy="packed")) as url:
        rep = RewardClient(url).post("/get_reward", {"query": [p + r for p, r in PAIRS], "prompts": PROMPTS})
        assert rep.status == 200 and RewardClient(url).get("/health").body["packed"] is False
    s = _offline(scalar_dir, PROMPTS, RESPONSES)
    assert torch.allclose(torch.tensor(rep.body["rewards"]), s.reward, atol=1e-5)
