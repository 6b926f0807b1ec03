"""RMBoost, RLAIF and West-of-N orchestration (fake backend and fake RM: orchestration only)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from feedback_fakes import FakeBackend, read_jsonl

from rewardlab.data.load import load_pairs
from rewardlab.feedback.aspects import ASPECT_SETS
from rewardlab.feedback.baselines import (
    RLAIFConfig,
    WestOfNConfig,
    best_and_worst,
    generate_rlaif,
    generate_west_of_n,
)
from rewardlab.feedback.common import PromptItem
from rewardlab.feedback.rmboost import RMBoostConfig, generate_rmboost

ITEMS = [PromptItem(f"Explain idea {i}.", f"p.jsonl:{i + 1}") for i in range(6)]


def test_draws_are_deterministic_and_valid() -> None:
    cfg = RMBoostConfig(aspect_set="summary", min_aspects=1, max_aspects=2)
    draws = [cfg.draw(i) for i in range(50)]
    assert draws == [cfg.draw(i) for i in range(50)]
    assert {d.name for d, _ in draws} == {"better", "worse"}
    for _, names in draws:
        assert 1 <= len(names) <= 2 and set(names) <= set(ASPECT_SETS.get("summary"))
    assert all(cfg.draw(i)[0].name == "better" for i in range(20)) is False
    always = RMBoostConfig(p_better=1.0)
    assert all(always.draw(i)[0].name == "better" for i in range(20))


def test_rmboost_labels_follow_direction(fake: FakeBackend, tmp_path: Path) -> None:
    cfg = RMBoostConfig()
    rows, new = generate_rmboost(ITEMS, fake, tmp_path / "r.jsonl", cfg)
    assert new == len(rows) == len(ITEMS)
    for i, row in enumerate(rows):
        meta = row["metadata"]["rmboost"]
        assert meta["label"] == cfg.draw(i)[0].name and meta["aspects"] == cfg.draw(i)[1]
        y1, y2 = meta["y1"], meta["y2"]
        expect = (y2, y1) if meta["label"] == "better" else (y1, y2)
        assert (row["chosen"], row["rejected"]) == expect
    assert len(load_pairs(tmp_path / "r.jsonl")) == len(ITEMS)
    y2_prompts = fake.chat_calls[1]
    assert "Draft answer" in y2_prompts[0][0]["content"]


def test_rmboost_retries_copies_then_skips(tmp_path: Path) -> None:
    copy_first = FakeBackend(reply=lambda conv, gen: "same text." if gen.seed == 0 else "new.")
    rows, _ = generate_rmboost(ITEMS[:2], copy_first, tmp_path / "a.jsonl", RMBoostConfig())
    assert len(rows) == 2 and all(r["metadata"]["rmboost"]["y2_attempts"] == 2 for r in rows)
    always_copy = FakeBackend(reply=lambda conv, gen: "same text.")
    rows, new = generate_rmboost(ITEMS[:2], always_copy, tmp_path / "b.jsonl", RMBoostConfig())
    assert rows == [] and new == 0


def test_rmboost_resume(fake: FakeBackend, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    generate_rmboost(ITEMS[:3], fake, out, chunk=2)
    rows, new = generate_rmboost(ITEMS, fake, out, chunk=2)
    assert new == 3 and len(rows) == 6
    keys = [r["_key"] for r in read_jsonl(out)]
    assert len(keys) == len(set(keys)) == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"aspect_set": "nope"}, "aspect_set"),
        ({"p_better": 1.5}, "p_better"),
        ({"min_aspects": 0}, "min_aspects"),
        ({"min_aspects": 2, "max_aspects": 1}, "max_aspects"),
        ({"retries": -1}, "retries"),
    ],
)
def test_rmboost_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RMBoostConfig(**kwargs)


def _judge_by_text_order(conv: list[dict]) -> tuple[float, float]:
    text = conv[0]["content"]
    a, b = text.split("### Response A")[1].split("### Response B")
    return (math.log(0.7), math.log(0.3)) if a < b else (math.log(0.3), math.log(0.7))


def test_samples_shared_across_methods(tmp_path: Path) -> None:
    """Sample k of a prompt is requested identically by every method (cache-shareable)."""
    fake = FakeBackend(judge=_judge_by_text_order)
    rmb, _ = generate_rmboost(ITEMS[:2], fake, tmp_path / "r.jsonl")
    rl, _ = generate_rlaif(ITEMS[:2], fake, tmp_path / "l.jsonl")
    for a, b in zip(rmb, rl, strict=True):
        assert a["metadata"]["rmboost"]["y1"] == b["metadata"]["rlaif"]["samples"][0]


def test_rlaif_orients_by_judge(tmp_path: Path) -> None:
    seeds = {0: "Short.", 1: "A much longer and better answer."}
    judge_prefers_long = lambda conv: (  # noqa: E731
        (math.log(0.8), math.log(0.2))
        if "longer" in conv[0]["content"].split("### Response A")[1].split("### Response B")[0]
        else (math.log(0.2), math.log(0.8))
    )
    backend = FakeBackend(reply=lambda conv, gen: seeds[gen.seed], judge=judge_prefers_long)
    rows, _ = generate_rlaif(ITEMS[:2], backend, tmp_path / "l.jsonl", RLAIFConfig())
    assert all(r["chosen"] == seeds[1] and r["rejected"] == seeds[0] for r in rows)
    assert all(v == pytest.approx(0.8) for r in rows for v in r["labels"].values())
    assert set(rows[0]["labels"]) == {"helpfulness", "harmlessness", "overall"}
    # a one-objective RM trains on the judge's soft label, not on 1.0 (issue 7 item 7)
    from rewardlab.data.validate import pair_from_row
    from rewardlab.objectives import label_targets

    targets = label_targets([pair_from_row(r, "row") for r in rows], ["reward"]).targets
    assert targets.flatten().tolist() == pytest.approx([0.8] * len(rows))


def test_rlaif_skips_identical_samples(tmp_path: Path) -> None:
    backend = FakeBackend(reply=lambda conv, gen: "same.")
    rows, _ = generate_rlaif(ITEMS[:2], backend, tmp_path / "l.jsonl")
    assert rows == [] and backend.judge_calls == [[]]


class FakeRM:
    """Scores a response by its length (orchestration test stand-in)."""

    cfg = SimpleNamespace(objectives=["reward"])

    def score(self, prompts: list, responses: list[str]) -> torch.Tensor:
        return torch.tensor([[float(len(r))] for r in responses])  # (N, 1)


def test_west_of_n_best_vs_worst(tmp_path: Path) -> None:
    backend = FakeBackend(reply=lambda conv, gen: "x" * (5 + 3 * gen.seed))
    cfg = WestOfNConfig(model="unused", n=4)
    rows, _ = generate_west_of_n(ITEMS[:3], backend, tmp_path / "w.jsonl", cfg, rm=FakeRM())
    assert len(rows) == 3
    for r in rows:
        assert len(r["chosen"]) == 14 and len(r["rejected"]) == 5
        assert r["metadata"]["west_of_n"]["rewards"] == [5.0, 8.0, 11.0, 14.0]
    assert len(load_pairs(tmp_path / "w.jsonl")) == 3


def test_best_and_worst_dedupes() -> None:
    assert best_and_worst(["a", "a", "b"], [1.0, 5.0, 0.0]) == (0, 2)
    assert best_and_worst(["a", "a", ""], [1.0, 2.0, 3.0]) is None
    assert best_and_worst(["a", "b"], [1.0, 1.0]) is None


def test_west_of_n_config_validation() -> None:
    assert WestOfNConfig().model is None  # the default RM is built on first use
    with pytest.raises(ValueError, match="n must"):
        WestOfNConfig(model="dir", n=1)
