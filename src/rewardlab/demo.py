"""The main job: train an RM on bundled HH-RLHF harmless, evaluate on held-out HH, LLMBar and HHH
beside the length heuristics, and write ``OUT/model`` and ``OUT/metrics.json``."""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.bundled import hh_splits, hhh, llmbar
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


@dataclass
class DemoConfig:
    """What the demo trains on and evaluates."""

    train_limit: int = field(
        default=0, metadata={"help": "use only the first N HH training pairs (0 = all 1,800)"}
    )
    eval_limit: int = field(default=0, metadata={"help": "evaluate on at most N pairs per set (0 = all)"})
    split_seed: int = field(default=0, metadata={"help": "seed of the HH train/validation/test split"})

    def __post_init__(self) -> None:
        if self.train_limit < 0 or self.eval_limit < 0:
            raise ValueError("limits must be >= 0")


def run_demo(demo: DemoConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, out: str | Path) -> dict:
    """Train, evaluate and save; returns the metrics written to ``OUT/metrics.json``."""
    out = Path(out)
    t0 = time.perf_counter()
    hh = hh_splits(demo.split_seed)
    train_pairs = hh["train"][: demo.train_limit or None]
    result = train(train_pairs, model_cfg, train_cfg, out / "model", validation=hh["validation"])
    sets = {"hh-test": hh["test"], "llmbar": llmbar(), "hhh": hhh()}
    metrics: dict = {"sets": {}}
    for name, pairs in sets.items():
        pairs = pairs[: demo.eval_limit or None]
        metrics["sets"][name] = evaluate(result.model, pairs)
    metrics["train"] = {
        "pairs": len(train_pairs),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "pairs_per_second": round(result.pairs_per_second, 2),
        "history": result.history,
    }
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    metrics["peak_memory_mb"] = round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
