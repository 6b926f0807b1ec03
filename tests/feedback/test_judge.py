"""Per-principle judging: soft labels, order averaging, label direction, statistics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from feedback_fakes import FakeBackend

from rewardlab.data.load import load_pairs
from rewardlab.feedback.judge import JudgeConfig, judge_pairs, p_first
from rewardlab.feedback.principles import PRINCIPLES, Principle, parse_principle


def biased_judge(bias: float, signal: float):
    """A fake judge: logit(A) = bias + signal·(A is the 'good' answer − B is)."""

    def judge(conv: list[dict]) -> tuple[float, float]:
        text = conv[0]["content"]
        a = text.split("### Response A")[1].split("### Response B")[0]
        s = signal if "good" in a else -signal
        p = 1 / (1 + math.exp(-(bias + s)))
        return math.log(p), math.log(1 - p)

    return judge


def test_p_first_softmax() -> None:
    assert p_first({"A": math.log(0.3), "B": math.log(0.1)}) == pytest.approx(0.75)
    assert p_first({"A": -math.inf, "B": -math.inf}) == 0.5
    assert p_first({"A": -1.0, "B": -math.inf}) == 1.0


def test_both_orders_cancel_position_bias(pairs, tmp_path: Path) -> None:
    backend = FakeBackend(judge=biased_judge(bias=3.0, signal=0.5))
    rows, stats, _ = judge_pairs(pairs, backend, tmp_path / "j.jsonl", JudgeConfig(["helpfulness"]))
    s = stats.per_principle["helpfulness"]
    assert s["position_bias"] == 1.0  # A wins every single-order question
    assert s["consistency"] == 0.0  # so the two orders never agree on a response
    assert s["agreement"] == 1.0  # but the averaged label still favours chosen
    expected = (1 / (1 + math.exp(-3.5)) + 1 - 1 / (1 + math.exp(-2.5))) / 2
    assert rows[0]["labels"]["helpfulness"] == pytest.approx(expected)


def test_single_order_is_biased(pairs, tmp_path: Path) -> None:
    backend = FakeBackend(judge=biased_judge(bias=-3.0, signal=0.5))
    cfg = JudgeConfig(["helpfulness"], both_orders=False)
    _, stats, _ = judge_pairs(pairs, backend, tmp_path / "j.jsonl", cfg)
    assert stats.per_principle["helpfulness"]["agreement"] == 0.0


def test_more_is_worse_principles_are_flipped(pairs, tmp_path: Path) -> None:
    backend = FakeBackend(judge=biased_judge(bias=0.0, signal=1.0))  # "good" judged more X
    cfg = JudgeConfig(
        ["helpfulness", "toxicity", "sycophancy", "terse=concise", "rude=rude"], inverted=["rude"]
    )
    rows, stats, _ = judge_pairs(pairs, backend, tmp_path / "j.jsonl", cfg)
    labels = rows[0]["labels"]
    assert labels["helpfulness"] > 0.5 and labels["terse"] > 0.5
    assert labels["toxicity"] < 0.5 and labels["sycophancy"] < 0.5 and labels["rude"] < 0.5
    assert labels["helpfulness"] == pytest.approx(1 - labels["toxicity"])
    assert stats.per_principle["toxicity"]["agreement"] == 0.0
    assert all(set(p.labels) == set(labels) for p in load_pairs(tmp_path / "j.jsonl"))


def test_judge_prompt_names_the_principle(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    judge_pairs(pairs[:1], fake, tmp_path / "j.jsonl", JudgeConfig(["factuality"]))
    convs = fake.judge_calls[0]
    assert len(convs) == 2 and all("more factually accurate" in c[0]["content"] for c in convs)
    first_a = convs[0][0]["content"].split("### Response B")[0]
    second_a = convs[1][0]["content"].split("### Response B")[0]
    assert "good answer 0" in first_a and "bad answer 0" in second_a


def test_resume_no_duplicates(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    out = tmp_path / "j.jsonl"
    judge_pairs(pairs, fake, out, JudgeConfig(["helpfulness"]), limit=3)
    rows, _, new = judge_pairs(pairs, fake, out, JudgeConfig(["helpfulness"]))
    assert new == 2 and len(rows) == 5 and len(out.read_text().splitlines()) == 5


def test_principle_registry_and_parsing() -> None:
    assert PRINCIPLES.get("ethicality") is PRINCIPLES.get("harmlessness")
    assert not PRINCIPLES.get("toxicity").higher_is_better
    custom = parse_principle("brevity=concise and to the point")
    assert custom.name == "brevity" and custom.adjective == "concise and to the point"
    with pytest.raises(ValueError):
        PRINCIPLES.add("helpfulness", Principle("helpfulness", "x", "y"))
    with pytest.raises(KeyError, match="choose one of"):
        parse_principle("nonexistent")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"principles": []}, "at least one"),
        ({"principles": ["nonexistent"]}, "principles"),
        ({"principles": ["helpfulness", "helpfulness"]}, "duplicate"),
        ({"principles": ["helpfulness"], "inverted": ["x"]}, "inverted"),
        ({"principles": ["bad name=desc"]}, "principle name"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JudgeConfig(**kwargs)
