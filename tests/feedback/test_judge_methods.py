"""Judge prompt variants: every method returns p_ab / p_ba / p per principle, with the right maths.

The backend is a deterministic stand-in that prefers the response containing "GOOD" (orchestration
and arithmetic only; the variants are measured on real models by recipes/judge_models.py)."""

from __future__ import annotations

import math
import re

import pytest

from rewardlab.feedback.judge_methods import (
    DIGITS,
    FINAL_QUESTION,
    JUDGE_METHODS,
    JUDGE_VARIANTS,
    expected_digit,
)
from rewardlab.feedback.principles import PRINCIPLES


class PrefersGood:
    """Answers A when response A contains GOOD, rates GOOD responses 8 and others 3."""

    name, model = "prefers-good", "pg-1"

    def __init__(self) -> None:
        self.chats: list[list[dict]] = []

    def chat(self, conversations, gen):
        self.chats += conversations
        return ["A looks fine."] * len(conversations)

    def option_logprobs(self, conversations, options):
        out = []
        for c in conversations:
            text = c[0]["content"]
            if options == DIGITS:
                resp = text.split("### Response\n", 1)[1]
                best = "8" if "GOOD" in resp.split("### Question")[0] else "3"
                out.append({d: (0.0 if d == best else -5.0) for d in options})
            else:
                a = re.search(r"### Response A\n(.*?)\n\n### Response B", text, re.S).group(1)
                out.append({"A": 0.0, "B": -2.0} if "GOOD" in a else {"A": -2.0, "B": 0.0})
        return out


TRIPLES = [("Say hi.", "GOOD hi", "bad"), ("Say bye.", "bad", "GOOD bye")]


@pytest.mark.parametrize("variant", sorted(JUDGE_VARIANTS))
def test_every_variant_keeps_p_ab_p_ba_and_ranks_the_preferred_response(variant):
    pr = PRINCIPLES.get("helpfulness")
    res = JUDGE_VARIANTS[variant].run(PrefersGood(), TRIPLES, [pr])
    assert len(res) == 2
    first, second = res[0]["helpfulness"], res[1]["helpfulness"]
    for r in (first, second):
        assert {"p_ab", "p_ba", "p"} <= set(r)
        assert 0.0 <= r["p_ab"] <= 1.0 and 0.0 <= r["p_ba"] <= 1.0
    assert first["p"] > 0.5 > second["p"]


def test_ab_average_cancels_position():
    pr = PRINCIPLES.get("helpfulness")
    r = JUDGE_METHODS.get("ab")(PrefersGood(), TRIPLES[:1], [pr], JUDGE_VARIANTS["ab"].load_template())
    s = 1 / (1 + math.exp(-2.0))
    h = r[0]["helpfulness"]
    assert h["p_ab"] == pytest.approx(s) and h["p_ba"] == pytest.approx(1 - s)
    assert h["p"] == pytest.approx(s)


def test_score_uses_expected_digits():
    pr = PRINCIPLES.get("helpfulness")
    r = JUDGE_VARIANTS["score"].run(PrefersGood(), TRIPLES[:1], [pr])[0]["helpfulness"]
    lp = {d: (0.0 if d == "8" else -5.0) for d in DIGITS}
    assert r["s_x"] == pytest.approx(expected_digit(lp))
    assert r["p"] == pytest.approx(1 / (1 + math.exp(-(r["s_x"] - r["s_y"]))))
    assert r["p_ba"] == pytest.approx(1 - r["p_ab"])


def test_expected_digit():
    assert expected_digit({"1": 0.0, "9": 0.0}) == pytest.approx(5.0)
    assert expected_digit({str(k): (0.0 if k == 7 else -50.0) for k in range(1, 10)}) == pytest.approx(7.0)


def test_rationale_asks_for_the_letter_after_the_model_s_own_rationale():
    be = PrefersGood()
    pr = PRINCIPLES.get("helpfulness")
    r = JUDGE_VARIANTS["rationale"].run(be, TRIPLES[:1], [pr])[0]["helpfulness"]
    assert len(be.chats) == 2  # one rationale per order
    assert r["rationale_ab"] == "A looks fine."
    assert r["p"] > 0.5
    assert FINAL_QUESTION.startswith("So which")
