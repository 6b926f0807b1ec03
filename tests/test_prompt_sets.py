"""Prompt sets from bundled training splits (rewardlab.data.prompt_sets)."""

from __future__ import annotations

import pytest

from rewardlab.data.bundled import hh_splits, hhh, llmbar, pandalm_splits, qa_feedback_splits
from rewardlab.data.prompt_sets import PROMPT_SOURCES, train_prompts


def test_spec_order_counts_and_sources() -> None:
    got = train_prompts("pandalm:3,hh:4,qa-feedback:2")
    assert [t.source for t in got] == ["pandalm"] * 3 + ["hh"] * 4 + ["qa-feedback"] * 2
    assert len({str(t.prompt) for t in got}) == 9
    assert got == train_prompts("pandalm:3,hh:4,qa-feedback:2")  # deterministic


def test_each_prompt_carries_its_first_training_pair() -> None:
    train = {"hh": hh_splits()["train"], "pandalm": pandalm_splits()["train"]}
    train["qa-feedback"] = qa_feedback_splits()["train"]
    for t in train_prompts("hh:5,pandalm:5,qa-feedback:5"):
        first = next(p for p in train[t.source] if p.prompt == t.prompt)
        assert t.pair == first


def test_hh_prompts_are_single_turn_and_the_user_sees_only_the_turn() -> None:
    for t in train_prompts("hh:10"):
        assert t.prompt.count("Human:") == 1 and len(t.user) < 300
        assert t.user in t.prompt and "Human:" not in t.user and "Assistant:" not in t.user


def test_qa_feedback_is_shortest_first_and_nothing_comes_from_test_sets() -> None:
    qa = [len(str(t.prompt)) for t in train_prompts("qa-feedback:6")]
    assert qa == sorted(qa)
    test_prompts = {str(p.prompt) for p in hh_splits()["test"] + pandalm_splits()["test"] + llmbar() + hhh()}
    assert not test_prompts & {str(t.prompt) for t in train_prompts("hh:40,pandalm:40")}


@pytest.mark.parametrize(
    "spec, match",
    [
        ("nope:3", "'nope:3' is not SOURCE:COUNT"),
        ("hh", "'hh' is not SOURCE:COUNT"),
        ("hh:x", "is not SOURCE"),
        ("pandalm:100000", "pandalm has only"),
    ],
)
def test_bad_specs_are_refused(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_prompts(spec)
    assert PROMPT_SOURCES.names() == ["hh", "pandalm", "qa-feedback"]
