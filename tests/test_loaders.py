"""Loaders for every supported format, and the bundled real sets with their fixed splits."""

from __future__ import annotations

import json

from rewardlab.data import bundled
from rewardlab.data.load import detect_format, load_pairs, write_pairs
from rewardlab.data.loaders.hh import split_transcripts
from rewardlab.data.responses import load_responses


def test_bundled_splits_are_fixed_and_disjoint():
    s = bundled.hh_splits(seed=0)
    assert [len(s[k]) for k in ("train", "validation", "test")] == [1800, 200, 308]
    assert s["test"][0].chosen == bundled.hh_splits(seed=0)["test"][0].chosen
    keys = {k: {(p.prompt, p.chosen) for p in v} for k, v in s.items()}
    assert not keys["train"] & keys["test"] and not keys["validation"] & keys["test"]
    assert all(p.prompt.endswith("Assistant:") and p.source == "hh-harmless" for p in s["test"])
    assert len(bundled.llmbar()) == 419 and len(bundled.hhh()) == 221
    assert {p.subset for p in bundled.hhh()} == {"harmless", "helpful", "honest", "other"}
    assert {p.subset for p in bundled.llmbar()} >= {"Natural", "Adversarial_Neighbor"}


def test_hh_split_at_last_shared_assistant_turn():
    c = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: Sure, one."
    r = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: No."
    prompt, chosen, rejected = split_transcripts(c, r)
    assert prompt.endswith("joke?\n\nAssistant:") and chosen == "Sure, one." and rejected == "No."


def test_trl_conversational_rows(tmp_path):
    path = tmp_path / "conv.jsonl"
    rows = [
        {
            "prompt": [{"role": "user", "content": "2+2?"}],
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "5"}],
        },
        {
            "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    pairs = load_pairs(path)
    assert pairs[0].prompt == [{"role": "user", "content": "2+2?"}] and pairs[0].chosen == "4"
    assert pairs[1].prompt == [{"role": "user", "content": "hi"}] and pairs[1].rejected == "go away"


def test_parquet_hf_dataset_and_rewardbench_subset(tmp_path):
    import datasets

    rows = [{"prompt": f"p{i}", "chosen": "good", "rejected": "bad", "subset": "math"} for i in range(3)]
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "d.parquet"))
    ds.save_to_disk(str(tmp_path / "hf"))
    for path in (tmp_path / "d.parquet", tmp_path / "hf"):
        pairs = load_pairs(path)
        assert [p.prompt for p in pairs] == ["p0", "p1", "p2"] and pairs[0].subset == "math"


def test_write_then_read_roundtrip_and_detection(tmp_path):
    pairs = bundled.hhh()[:5]
    write_pairs(pairs, tmp_path / "x.jsonl")
    assert detect_format(tmp_path / "x.jsonl") == "trl"
    again = load_pairs(tmp_path / "x.jsonl")
    assert [(p.prompt, p.chosen, p.subset) for p in again] == [(p.prompt, p.chosen, p.subset) for p in pairs]
    assert detect_format(bundled.HH_FILE) == "hh" and detect_format(bundled.HHH_FILE) == "hhh"


def test_responses_from_rows_and_pairs(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps({"prompt": "p", "responses": ["a", "b"]})
        + "\n"
        + json.dumps({"prompt": "q", "response": "c"})
    )
    items = load_responses(path)
    assert [(i.prompt, i.response) for i in items] == [("p", "a"), ("p", "b"), ("q", "c")]
    write_pairs(bundled.hhh()[:2], tmp_path / "pairs.jsonl")
    assert [i.meta["role"] for i in load_responses(tmp_path / "pairs.jsonl")] == ["chosen", "rejected"] * 2
