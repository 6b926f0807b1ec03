"""The main job: train an RM on bundled preference data, evaluate it on every bundled evaluation set
beside the length heuristics, and write ``OUT/model``, ``OUT/metrics.json``, the per-pair rewards
(``OUT/pair_rewards.jsonl``) and ``OUT/report.html``.

Training sets (``--train-set``): ``harmless`` (HH-RLHF harmless), ``union`` (HH harmless +
PandaLM + qa-feedback as plain preferences, one head), ``multi`` (the same pairs, two heads:
``harmlessness`` trained on HH pairs, ``helpfulness`` on PandaLM/qa-feedback pairs with their soft
human labels; the other objective masked; weighted-sum weights fitted on the validation mix).
Validation (epoch selection) uses the matching validation splits."""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from rewardlab.data.bundled import bundled_set, hh_splits
from rewardlab.data.schema import PreferencePair
from rewardlab.models.config import ModelConfig
from rewardlab.report import write_report
from rewardlab.report.scores import PAIR_REWARDS, pair_reward_rows, score_and_evaluate, write_pair_rewards
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


class TrainSet(str, Enum):
    """What the demo trains on."""

    HARMLESS = "harmless"
    UNION = "union"
    MULTI = "multi"


EVAL_SETS = ("hh-test", "llmbar", "hhh", "pandalm-test", "qafeedback-test", "summeval-test")
HELPFUL_SOURCES = ("pandalm", "qafeedback")
MULTI_OBJECTIVES = ["harmlessness", "helpfulness"]


@dataclass
class DemoConfig:
    """What the demo trains on and evaluates."""

    train_limit: int = field(
        default=0, metadata={"help": "use only the first N HH training pairs (0 = all 1,800)"}
    )
    eval_limit: int = field(default=0, metadata={"help": "evaluate on at most N pairs per set (0 = all)"})
    split_seed: int = field(default=0, metadata={"help": "seed of the HH train/validation/test split"})
    train_set: TrainSet = field(
        default=TrainSet.HARMLESS,
        metadata={
            "help": "harmless (HH harmless) | union (HH + PandaLM + qa-feedback, one head) | "
            "multi (the same pairs, harmlessness + helpfulness heads)"
        },
    )
    eval_sets: list[str] = field(
        default_factory=lambda: list(EVAL_SETS), metadata={"help": "bundled sets to evaluate on"}
    )

    def __post_init__(self) -> None:
        if self.train_limit < 0 or self.eval_limit < 0:
            raise ValueError("limits must be >= 0")
        try:
            self.train_set = TrainSet(self.train_set)
        except ValueError:
            raise ValueError(f"train_set: choose one of {[t.value for t in TrainSet]}") from None


def _labelled(pairs: list[PreferencePair], labels: dict[str, float]) -> list[PreferencePair]:
    return [dataclasses.replace(p, labels=dict(labels)) for p in pairs]


def demo_data(demo: DemoConfig) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, validation) pairs for ``demo.train_set``; ``train_limit`` caps each source."""
    hh = hh_splits(demo.split_seed)
    lim = demo.train_limit or None
    if demo.train_set == TrainSet.HARMLESS:
        return hh["train"][:lim], hh["validation"]
    helpful = {
        s: [
            p
            for src in HELPFUL_SOURCES
            for p in bundled_set(f"{src}-{s}", demo.split_seed)[: lim if s == "train" else None]
        ]
        for s in ("train", "validation")
    }
    if demo.train_set == TrainSet.UNION:  # plain preferences: the labels are dropped
        return (
            _labelled(hh["train"][:lim] + helpful["train"], {}),
            _labelled(hh["validation"] + helpful["validation"], {}),
        )
    harm = {"harmlessness": 1.0}  # helpful pairs keep labels {"helpfulness": p}
    return (
        _labelled(hh["train"][:lim], harm) + helpful["train"],
        _labelled(hh["validation"], harm) + helpful["validation"],
    )


def _calibrate_multi(rm, validation: list[PreferencePair], out: Path) -> None:
    """Reward scale and weighted-sum weights of a multi-objective demo RM, fitted on the validation
    mix with the human preference as the overall label; saved into the model directory."""
    from rewardlab.objectives import calibrate, save_config

    calibrate(rm, _labelled(validation, {"overall": 1.0}))
    save_config(rm, out)


def run_demo(demo: DemoConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, out: str | Path) -> dict:
    """Train, evaluate and save; returns the metrics written to ``OUT/metrics.json``."""
    out = Path(out)
    t0 = time.perf_counter()
    train_pairs, validation = demo_data(demo)
    if demo.train_set == TrainSet.MULTI and model_cfg.num_objectives == 1:
        model_cfg = dataclasses.replace(model_cfg, objectives=MULTI_OBJECTIVES, kind="multi")
    result = train(train_pairs, model_cfg, train_cfg, out / "model", validation=validation)
    if result.model.cfg.num_objectives > 1:
        _calibrate_multi(result.model, validation, out / "model")
    metrics: dict = {"train_set": demo.train_set.value, "sets": {}}
    rows: list[dict] = []  # per-pair rewards for the report
    for name in demo.eval_sets:
        pairs = bundled_set(name, demo.split_seed)[: demo.eval_limit or None]
        metrics["sets"][name], rc, rr = score_and_evaluate(result.model, pairs)
        rows += pair_reward_rows(name, pairs, rc, rr)
    write_pair_rewards(out / PAIR_REWARDS, rows)
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
    write_report(out)  # OUT/report.html
    return metrics
