"""Critique orchestration and quality control (fake backend: orchestration only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from feedback_fakes import FakeBackend, read_jsonl

from rewardlab.data.load import load_pairs
from rewardlab.feedback.common import Template
from rewardlab.feedback.critique import DEGRADE_MODES, CritiqueConfig, critique_pairs
from rewardlab.feedback.qc import QC_CHECKS, QCContext, QCReport, check_critique
from rewardlab.llm.base import GenerationConfig

TPL = Template.load("critique")
GOOD = "Strengths: it answers the question. Weaknesses: it is short and vague."


def ctx(max_new_tokens: int = 256, counter=None) -> QCContext:
    return QCContext(TPL, max_new_tokens, counter)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, []),
        ("", ["empty"]),
        ("   ok ", ["empty"]),
        ("I'm sorry, but I can't help with reviewing this.", ["refusal"]),
        ("As an AI language model, I cannot review this.", ["refusal"]),
        (TPL.text.split("### Your review")[1], ["template_echo"]),
        ("word " * 80 + "and then the sentence", ["truncated"]),
    ],
)
def test_qc_checks(text: str, expected: list[str]) -> None:
    assert check_critique(text, ctx(max_new_tokens=64)) == expected


def test_truncation_exact_with_token_counter() -> None:
    counter = lambda t: len(t.split())  # noqa: E731
    assert check_critique("a b c d e f g h", ctx(8, counter)) == ["truncated"]
    assert check_critique("a b c d e f g h.", ctx(8, counter)) == []
    assert check_critique("aa bb cc dd ee", ctx(8, counter)) == []


def test_qc_report_counts_every_check() -> None:
    rep = QCReport()
    for flags in (["empty"], [], ["refusal", "truncated"]):
        rep.add(flags)
    d = rep.as_dict()
    assert d["critiques"] == 3 and d["flagged"] == 2 and d["template_echo"] == 0
    assert set(QC_CHECKS.names()) <= set(d)


def test_critiques_filled_and_valid_pairs(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    res = critique_pairs(pairs, fake, out, gen=GenerationConfig(max_new_tokens=32))
    assert len(res.pairs) == len(pairs) == res.n_new
    loaded = load_pairs(out)  # valid input for training
    assert all(set(p.critiques) == {"chosen", "rejected"} for p in loaded)
    prompts = [c[0]["content"] for call in fake.chat_calls for c in call]
    assert any("good answer 0" in p for p in prompts) and any("bad answer 0" in p for p in prompts)
    assert res.qc.as_dict()["critiques"] == 2 * len(pairs)


def test_resume_keeps_rows_and_skips_done(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    critique_pairs(pairs, fake, out, limit=2, batch_size=1)
    n_calls = len(fake.chat_calls)
    res = critique_pairs(pairs, fake, out, batch_size=1)
    assert res.n_new == len(pairs) - 2 and len(fake.chat_calls) == n_calls + len(pairs) - 2
    keys = [r["_key"] for r in read_jsonl(out)]
    assert len(keys) == len(set(keys)) == len(pairs)


def test_qc_counts_reported(pairs, tmp_path: Path) -> None:
    replies = iter(["", "I'm sorry, but I can't help with that."] + [GOOD] * 20)
    backend = FakeBackend(reply=lambda conv, gen: next(replies))
    res = critique_pairs(pairs, backend, tmp_path / "c.jsonl")
    qc = res.summary()["qc"]
    assert qc["empty"] == 1 and qc["refusal"] == 1 and qc["flagged"] == 2


def test_shuffle_moves_every_critique(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    res = critique_pairs(pairs, fake, tmp_path / "s.jsonl", CritiqueConfig(degrade="shuffle"))
    src = [r["metadata"]["critique"]["source_index"] for r in res.pairs]
    assert sorted(src) == list(range(len(pairs))) and all(s != i for i, s in enumerate(src))
    # the critique attached to pair i was written about pair src[i]'s responses
    for call in fake.chat_calls:
        for i, s in enumerate(src):
            assert f"good answer {s}" in call[2 * i][0]["content"]


def test_shuffle_permutation_ignores_limit(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    cfg = CritiqueConfig(degrade="shuffle")
    full = critique_pairs(pairs, fake, tmp_path / "a.jsonl", cfg)
    part = critique_pairs(pairs, fake, tmp_path / "b.jsonl", cfg, limit=2)
    get = lambda rows: [r["metadata"]["critique"]["source_index"] for r in rows]  # noqa: E731
    assert get(part.pairs) == get(full.pairs)[:2]


def test_weak_prompt_uses_weak_template(fake: FakeBackend, pairs, tmp_path: Path) -> None:
    critique_pairs(pairs, fake, tmp_path / "w.jsonl", CritiqueConfig(degrade="weak-prompt"))
    weak = Template.load("critique_weak").static_lines(min_words=3)
    assert any(weak[0] in c[0]["content"] for c in fake.chat_calls[0])


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="degrade"):
        CritiqueConfig(degrade="nonsense")
    assert {"none", "shuffle", "weak-prompt"} <= set(DEGRADE_MODES.names())


def test_reordered_or_grown_pair_list_reuses_critiques_by_content(
    fake: FakeBackend, pairs, tmp_path: Path
) -> None:
    """A changed pair list (the job's positions move) asks the LLM only about pairs it never saw;
    every pair keeps the critiques it was given before."""
    out = tmp_path / "c.jsonl"
    first = critique_pairs(pairs[:3], fake, out, batch_size=2)
    before = {p.chosen: p.critiques for p in load_pairs(out)}
    n_calls = sum(len(c) for c in fake.chat_calls)
    res = critique_pairs(pairs[3:] + pairs[:3], fake, out, batch_size=2)  # every position moves
    asked = sum(len(c) for c in fake.chat_calls) - n_calls
    assert asked == 2 * (len(pairs) - 3)  # two critiques per unseen pair, none for the three seen
    assert res.n_new == len(pairs) and first.n_new == 3  # rows under the new positions' keys
    got = {r["chosen"]: r["critiques"] for r in res.pairs}
    assert all(got[c] == before[c] for c in before)
    assert res.qc.as_dict()["critiques"] == 2 * len(pairs)
