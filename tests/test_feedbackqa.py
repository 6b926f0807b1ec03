"""FeedbackQA (bundled, leak-free human critiques): the real files parse, splits are disjoint by
question, no pair's label, side or membership depends on its critique author's ratings, bad rows
raise file:line:field errors, and a critique-conditioned RM reads the critiques."""

from __future__ import annotations

import gzip
import json
import logging
import random

import pytest

from rewardlab.data import bundled
from rewardlab.data.loaders.feedbackqa import (
    RATINGS,
    critique_rater,
    leak_free_label,
    load_feedbackqa,
)
from rewardlab.data.schema import DataError

NAMES = {v: k for k, v in RATINGS.items()}
REF = "passage.reference"


def _row(question: str, pid: int, ratings: list[int], feedback: list[str] | None = None) -> dict:
    return {
        "question": question,
        "passage": {
            "passage_id": pid,
            "source": "WHO",
            "uri": f"https://example.org/{pid}",
            "reference": {
                "page_title": "FAQ",
                "section_headers": [f"Header {pid}"],
                "section_content": f"Answer {pid}.",
            },
        },
        "feedback": feedback or [f"rater {k} on answer {pid}" for k in range(len(ratings))],
        "rating": [NAMES[r] for r in ratings],
    }


def _write(tmp_path, rows, name="X_feedback_valid.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows, indent=4))
    return path


def _raw(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def real_pairs():
    return list(bundled._read_feedbackqa())


# --- real files ----------------------------------------------------------------------------------


def test_real_files_parse_with_critiques_and_soft_labels(real_pairs):
    assert len(bundled.FEEDBACKQA_FILES) == 9
    assert len(real_pairs) == 2502
    for p in real_pairs:
        assert p.source == "feedbackqa" and p.subset in {"WHO", "CDC", "UK", "Australia"}
        assert set(p.critiques) == {"chosen", "rejected"} and all(c.strip() for c in p.critiques.values())
        assert 0.5 <= p.labels["helpfulness"] <= 1.0 and p.margin is None
        assert p.metadata["rating_gap"] >= 1.0 and p.chosen != p.rejected


def test_real_critiques_come_from_the_critique_rater_and_labels_from_the_others(real_pairs):
    raw = {}
    for path in bundled.FEEDBACKQA_FILES:
        for r in _raw(path):
            raw[(r["question"].strip(), str(r["passage"]["passage_id"]))] = r
    for p in real_pairs:
        m = p.metadata
        j = m["critique_rater"]
        rows = {s: raw[(m["question"], m[f"{s}_passage_id"])] for s in ("chosen", "rejected")}
        n = len(rows["chosen"]["rating"])
        assert j == critique_rater(m["question"], n) and m["label_raters"] == [k for k in range(n) if k != j]
        for s in ("chosen", "rejected"):
            assert p.critiques[s] == rows[s]["feedback"][j].strip()
        ratings = {s: tuple(RATINGS[x] for x in rows[s]["rating"]) for s in rows}
        gap, prob = leak_free_label(ratings["chosen"], ratings["rejected"], j)
        assert (gap, prob) == (pytest.approx(m["rating_gap"]), pytest.approx(p.labels["helpfulness"]))


def test_changing_the_critique_authors_ratings_changes_no_pair(tmp_path):
    """Rewrite the critique rater's ratings of a real file at random: the same pairs, sides and
    labels come back. Changing another rater's ratings does change them (the test can fail)."""
    rows = _raw(bundled.FEEDBACKQA_FILES[-1])  # WHO valid
    before = load_feedbackqa(_write(tmp_path, rows, "a.json"))
    rng = random.Random(0)
    mutated, other = json.loads(json.dumps(rows)), json.loads(json.dumps(rows))
    for r, o in zip(mutated, other, strict=True):
        j = critique_rater(r["question"].strip(), len(r["rating"]))
        r["rating"][j] = rng.choice(list(RATINGS))
        o["rating"][(j + 1) % len(o["rating"])] = rng.choice(list(RATINGS))
    after = load_feedbackqa(_write(tmp_path, mutated, "b.json"))
    key = lambda ps: [(p.chosen, p.rejected, p.labels, p.critiques) for p in ps]  # noqa: E731
    assert key(after) == key(before)
    assert key(load_feedbackqa(_write(tmp_path, other, "c.json"))) != key(before)


# --- the rule on hand-made rows ------------------------------------------------------------------


def _critic(question: str, n: int = 3) -> int:
    return critique_rater(question, n)


def test_pair_membership_side_and_label_use_only_the_other_raters(tmp_path, caplog):
    q = "How long does the virus live on surfaces?"
    j = _critic(q)
    others = [k for k in range(3) if k != j]

    def ratings(critic: int, rest: tuple[int, int]) -> list[int]:
        out = [0, 0, 0]
        out[j], out[others[0]], out[others[1]] = critic, *rest
        return out

    rows = [
        _row(q, 1, ratings(1, (4, 4))),  # best by the label raters, worst by the critic
        _row(q, 2, ratings(4, (3, 2))),  # gap to 1: 1.5 → a pair, 1 chosen despite the critic
        _row(q, 3, ratings(4, (3, 4))),  # gap to 2: 1.0 → pair (one tie); gap to 1: 0.5 → none
    ]
    with caplog.at_level(logging.INFO):
        pairs = load_feedbackqa(_write(tmp_path, rows))
    got = {(p.metadata["chosen_passage_id"], p.metadata["rejected_passage_id"]): p for p in pairs}
    assert set(got) == {("1", "2"), ("3", "2")}
    assert got[("1", "2")].labels == {"helpfulness": 1.0}
    assert got[("1", "2")].critiques == {
        "chosen": f"rater {j} on answer 1",
        "rejected": f"rater {j} on answer 2",
    }
    assert got[("3", "2")].labels == {"helpfulness": pytest.approx(0.75)}  # one rater ties (3 vs 3)
    assert "2 leak-free pairs" in caplog.text


def test_a_pair_only_the_critics_rating_makes_is_dropped_and_counted(tmp_path, caplog):
    q = "Can pets spread it?"
    j = _critic(q, 2)
    a, b = [3, 3], [3, 3]
    a[j], b[j] = 4, 1  # all-rater gap 1.5, but the label rater ties
    with caplog.at_level(logging.INFO):
        with pytest.raises(DataError, match="no valid preference pairs"):
            load_feedbackqa(_write(tmp_path, [_row(q, 1, a), _row(q, 2, b)]))
    assert "0 leak-free pairs; dropped 1 whose gap" in caplog.text


def test_leak_free_label_never_reads_the_critic():
    for j in range(3):
        base = leak_free_label((4, 4, 4), (1, 1, 1), j)
        for x in range(1, 5):
            a, b = [4, 4, 4], [1, 1, 1]
            a[j], b[j] = x, 5 - x
            assert leak_free_label(tuple(a), tuple(b), j) == base
    assert leak_free_label((4, 2), (1, 3), 1) == (3.0, 1.0)
    assert leak_free_label((4, 2, 3), (1, 3, 3), 0) == (-0.5, 0.25)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda r: r.update(rating=["Excellent", "Great", "Bad"]), "rating[1]"),
        (lambda r: r.update(feedback=["a", "b"]), "feedback"),
        (lambda r: r.update(feedback=["a", " ", "c"]), "feedback[1]"),
        (lambda r: r.update(rating=["Bad"], feedback=["a"]), "rating"),
        (lambda r: r["passage"]["reference"].update(section_content=""), "passage.reference.section_content"),
        (
            lambda r: r["passage"]["reference"].update(section_headers="x"),
            "passage.reference.section_headers",
        ),
        (lambda r: r.update(question=7), "question"),
        (lambda r: r.update(passage=None), "passage"),
        (lambda r: r["passage"].update(passage_id=None), "passage.passage_id"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, edit, field):
    rows = [_row("q1", 1, [4, 1, 2]), _row("q1", 2, [1, 4, 4]), _row("q1", 3, [2, 2, 2])]
    edit(rows[1])
    path = _write(tmp_path, rows)
    line = [i for i, s in enumerate(json.dumps(rows, indent=4).splitlines(), 1) if s == "    {"][1]
    with pytest.raises(DataError) as e:
        load_feedbackqa(path)
    assert str(e.value).startswith(f"{path}:{line} [record 1]: field {field!r}:")
    assert e.value.field == field


def test_rater_count_mismatch_within_a_question_and_drop_mode(tmp_path, caplog):
    rows = [
        _row("q1", 1, [4, 4, 4]),
        _row("q1", 2, [1, 1]),
        _row("q2", 3, [4, 4]),
        _row("q2", 4, [1, 1]),
        {**_row("q2", 5, [1, 1]), "rating": ["Bad", "Nope"]},
    ]
    with pytest.raises(DataError, match=r"record 1\]: field 'rating': has 2 raters; .* have 3"):
        load_feedbackqa(_write(tmp_path, rows[:4], "ok_rows.json"))
    path = _write(tmp_path, rows)
    with pytest.raises(DataError, match=r"record 4\]: field 'rating\[1\]'"):  # rows are checked first
        load_feedbackqa(path)
    with caplog.at_level(logging.WARNING):
        pairs = load_feedbackqa(path, on_invalid="drop")
    assert [(p.metadata["chosen_passage_id"], p.metadata["rejected_passage_id"]) for p in pairs] == [
        ("3", "4")
    ]
    assert "field 'rating[1]'" in caplog.text and "dropped 2 invalid row(s), kept 1" in caplog.text


# --- splits and names ----------------------------------------------------------------------------


def test_splits_disjoint_by_question_deterministic_and_named():
    s = bundled.feedbackqa_splits(0)
    assert [len(s[k]) for k in bundled.SPLITS] == [1501, 252, 749]
    qs = {k: {p.metadata["question"] for p in v} for k, v in s.items()}
    assert (
        not qs["train"] & qs["validation"]
        and not qs["train"] & qs["test"]
        and not qs["validation"] & qs["test"]
    )
    again = bundled.bundled_set("feedbackqa-test")
    assert [p.chosen for p in again] == [p.chosen for p in s["test"]]
    assert {p.metadata["question"] for p in bundled.feedbackqa_splits(1)["test"]} != qs["test"]
    from rewardlab.cli.common import read_pairs

    assert len(read_pairs("feedbackqa-validation")) == 252


def test_a_critique_rm_reads_the_human_critiques(tiny_bert):
    from rewardlab.models.config import ModelConfig
    from rewardlab.models.reward_model import CRITIQUE_SEP, RewardModel
    from rewardlab.train.batching import encode_pairs

    pairs = bundled.bundled_set("feedbackqa-validation")[:4]
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, critiques=True, max_length=512))
    data = encode_pairs(rm, pairs)
    text = rm.tokenizer.decode(data.seqs[1]["input_ids"])
    ids = rm.tokenizer(CRITIQUE_SEP + pairs[0].critiques["rejected"], add_special_tokens=False)["input_ids"]
    assert text.endswith(rm.tokenizer.decode(ids) + " [SEP]")  # the response ends with its critique
