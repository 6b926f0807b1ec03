"""Run directories for the report tests, made with the library itself: a tiny RM trained on
in-memory pairs, evaluated and saved like ``rewardlab demo`` does, plus files in the formats the
recipes and a GRPO run write."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

from pairs_data import make_pairs
from rewardlab.bayes import kl_best_of_n
from rewardlab.models.config import ModelConfig
from rewardlab.report.scores import PAIR_REWARDS, pair_reward_rows, score_and_evaluate, write_pair_rewards
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Rows as JSONL."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluated_run(out: Path, backbone: str, objectives: list[str] | None = None) -> Path:
    """``out/model`` (trained 2 epochs on 24 pairs, with validation), ``out/metrics.json`` and
    ``out/pair_rewards.jsonl`` for two sets, as the demo writes them."""
    pairs = make_pairs(24)
    for i, p in enumerate(pairs):
        p.source = "toy-a" if i % 3 else "toy-b"
    cfg = ModelConfig(backbone=backbone, max_length=48, lora_r=2, objectives=objectives or ["reward"])
    tcfg = TrainConfig(epochs=2, batch_size=8, save_steps=0, progress=False)
    res = train(pairs, cfg, tcfg, out / "model", validation=pairs[:8])
    metrics: dict = {"train_set": "toy", "sets": {}}
    rows: list[dict] = []
    for name, ps in (("toy-train", pairs), ("toy-shifted", make_pairs(30)[6:])):
        metrics["sets"][name], rc, rr = score_and_evaluate(res.model, ps)
        rows += pair_reward_rows(name, ps, rc, rr)
    write_pair_rewards(out / PAIR_REWARDS, rows)
    metrics["train"] = {"pairs": len(pairs), "steps": res.steps, "seconds": 1.0, "history": res.history}
    metrics["seconds"], metrics["peak_memory_mb"] = 2.0, 100.0
    (out / "metrics.json").write_text(json.dumps(metrics))
    return out


def overoptimization_files(out: Path) -> None:
    """``overoptimization.json`` and ``uncertainty_report.json`` in the recipe's format (curves and
    paired bootstrap intervals from the library's own functions on random scores)."""
    import torch

    from rewardlab.bayes import best_of_n_gains, bootstrap_curves

    ns = [1, 2, 4, 8, 16]
    gen = torch.Generator().manual_seed(0)
    gold = torch.randn(12, 16, generator=gen)
    scores = {
        "gold (oracle best-of-n)": gold,
        "proxy: argmax mean": gold + torch.randn(12, 16, generator=gen),
        "proxy: mean − 1·std": gold + 2 * torch.randn(12, 16, generator=gen),
    }
    boot = bootstrap_curves(
        {k: best_of_n_gains(v, gold, ns) for k, v in scores.items()}, "proxy: argmax mean", 50
    )
    result = {
        "ns": ns,
        "kl": [kl_best_of_n(n) for n in ns],
        "curves": {k: v["mean"] for k, v in boot.items()},
        "curves_ci": {k: v["ci"] for k, v in boot.items()},
        "bootstrap": boot,
        "gold_n1": 0.1,
        "gold_within_prompt_std": 0.4,
        "proxy_std_mean": 0.2,
        "rank_corr_proxy_gold": 0.3,
        "setup": {"prompts": 4, "n": 16},
    }
    (out / "overoptimization.json").write_text(json.dumps(result))
    rep = {
        m: {s: {"accuracy": 0.6, "ece": 0.05, "nll": 0.68, "error_auroc": 0.55} for s in ("hh-test", "hhh")}
        for m in ("map", "laplace")
    }
    rep["laplace"]["hhh"]["ood_auroc"] = 0.61
    (out / "uncertainty_report.json").write_text(json.dumps(rep))


def grpo_log(out: Path, steps: int = 40, gold: bool = True) -> Path:
    """``grpo_log.jsonl`` written by the real :class:`rewardlab.rl.grpo_log.GRPOLogCallback` from
    TRL-style logs: the RM reward rises, the gold reward rises then falls."""
    from rewardlab.rl.grpo_log import LOG_NAME, GRPOLogCallback

    cb = GRPOLogCallback(out / LOG_NAME, "gold" if gold else None)
    for s in range(1, steps + 1):
        state = SimpleNamespace(global_step=s, is_world_process_zero=True)
        logs = {"reward": 0.05 * s, "reward_std": 0.3, "rewards/gold/mean": 0.04 * s - 0.0012 * s * s}
        cb.on_log(None, state, None, logs=logs)
    return out / LOG_NAME


def data_efficiency_files(out: Path) -> None:
    """``results.jsonl``, ``heuristics-*.json`` and ``weights-summeval.json`` of
    recipes/data_efficiency.py (its row format)."""
    rows = [
        {
            "set": "summeval",
            "size": n,
            "n": n,
            "seed": seed,
            "method": m,
            "accuracy": 0.6 + 0.02 * math.log(n) + 0.01 * seed + (0.05 if m == "knowledge" else 0),
            "similar_accuracy": 0.55,
        }
        for n in (10, 50, 200)
        for seed in range(3)
        for m in ("neural", "knowledge")
    ]
    write_jsonl(out / "results.jsonl", rows)
    (out / "heuristics-summeval.json").write_text(
        json.dumps({"longer_accuracy": 0.9, "shorter_accuracy": 0.1})
    )
    w = [
        {"feature": f"f{i}", "weight": 0.5 - 0.2 * i, "low": 0.3 - 0.2 * i, "high": 0.7 - 0.2 * i}
        for i in range(5)
    ]
    (out / "weights-summeval.json").write_text(json.dumps(w))
