"""The human-annotated sets bundled from issue 8 (SummEval-OP, qa-feedback, PandaLM): loaders'
errors name file:line:field, label rules on hand-made rows, group-disjoint deterministic splits."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from rewardlab.data import bundled
from rewardlab.data.load import detect_format, load_pairs
from rewardlab.data.loaders.summeval import ASPECTS, SYSTEMS, TIE_GAP
from rewardlab.data.schema import DataError

# --- PandaLM -------------------------------------------------------------------------------------

PANDA = {
    "idx": 0,
    "motivation_app": "Grammarly",
    "cmp_key": "a_b",
    "instruction": "Rewrite concisely.",
    "input": "A long sentence.",
    "response1": "Short one.",
    "response2": "A long sentence indeed.",
    "annotator1": 1,
    "annotator2": 1,
    "annotator3": 0,
}


def _json_array(tmp_path, rows, name="testset.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows, indent=4))
    return path


def test_pandalm_majority_and_soft_label(tmp_path):
    rows = [
        PANDA,
        {**PANDA, "annotator1": 2, "annotator2": 2, "annotator3": 1},
        {**PANDA, "annotator1": 0, "annotator2": 0, "annotator3": 1},  # no majority: no pair
        {**PANDA, "input": "   "},
    ]
    path = _json_array(tmp_path, rows)
    assert detect_format(path) == "pandalm"
    pairs = load_pairs(path)
    assert len(pairs) == 3
    assert (pairs[0].chosen, pairs[0].labels) == ("Short one.", {"helpfulness": pytest.approx(2.5 / 3)})
    assert (pairs[1].chosen, pairs[1].labels) == (
        "A long sentence indeed.",
        {"helpfulness": pytest.approx(2 / 3)},
    )
    assert (
        pairs[0].prompt == "Rewrite concisely.\n\nA long sentence."
        and pairs[2].prompt == "Rewrite concisely."
    )
    assert pairs[0].source == "pandalm" and pairs[0].metadata["votes"] == [1, 1, 0]


@pytest.mark.parametrize(
    "change,field,words",
    [
        ({"response2": True}, "response2", "JSON boolean true"),
        ({"annotator2": 3}, "annotator2", "0 (tie), 1 or 2"),
        ({"response1": ""}, "response1", "empty"),
        ({"instruction": None}, "instruction", "not text"),
    ],
)
def test_pandalm_bad_rows_name_file_line_field(tmp_path, change, field, words):
    path = _json_array(tmp_path, [PANDA, {**PANDA, **change}])
    with pytest.raises(DataError) as e:
        load_pairs(path, "pandalm")
    # the second record starts on line 14 of the indent-4 array
    assert f"{path}:14 [record 1]: field {field!r}" in str(e.value) and words in str(e.value)


def test_bundled_pandalm_drops_the_boolean_rows_with_a_reason(caplog):
    bundled._read.cache_clear()  # bundled files are read (and their drops logged) once per process
    with caplog.at_level(logging.WARNING):
        s = bundled.pandalm_splits()
    for line, idx, field in [(1886, 157, "response1"), (1934, 161, "response2"), (1970, 164, "response1")]:
        assert (
            f"testset-v1.json.gz:{line} [record {idx}]: field '{field}': is the JSON boolean true"
            in caplog.text
        )
    assert sum(len(v) for v in s.values()) == 836  # 894 majority rows - 6 boolean - 52 empty


# --- qa-feedback ---------------------------------------------------------------------------------

QA = {
    "question": "When was it released?",
    "passages": [["Bloom", "Bloom\n\nBloom is an album.", "It came out in 2018."]],
    "prediction 1": "In 2018.",
    "prediction 2": "In 2017.",
    "prediction 3": "In 2018.",
    "prediction 4": "August 2018.",
    "preference": [1, 2, 0, 1, 0, 2],
}


def test_qa_feedback_pair_order_ties_and_identical(tmp_path):
    path = _json_array(tmp_path, [QA], "dev_feedback.json")
    assert detect_format(path) == "qa-feedback"
    pairs = load_pairs(path)
    # 1v2 → 1; 1v3 → 3 but identical: no pair; 1v4 → none; 2v3 → 2; 2v4 → none; 3v4 → 4
    got = [(p.metadata["chosen_prediction"], p.metadata["rejected_prediction"]) for p in pairs]
    assert got == [(1, 2), (2, 3), (4, 3)]
    assert all(p.labels == {"helpfulness": 1.0} and p.source == "qa-feedback" for p in pairs)
    assert "Question: When was it released?" in pairs[0].prompt
    assert "Passage 1 — Bloom\nBloom is an album. It came out in 2018." in pairs[0].prompt


def test_qa_feedback_passages_as_python_literal_never_evaluated(tmp_path):
    literal = {**QA, "passages": repr(QA["passages"])}  # single quotes: not JSON
    pairs = load_pairs(_json_array(tmp_path, [literal], "a.json"), "qa-feedback")
    assert "Passage 1 — Bloom" in pairs[0].prompt
    hostile = {**QA, "passages": "__import__('os').system('touch PWNED')"}
    with pytest.raises(DataError, match=r"a.json:2 \[record 0\]: field 'passages': is a string that is not"):
        load_pairs(_json_array(tmp_path, [hostile], "a.json"), "qa-feedback")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "change,field",
    [
        ({"preference": [1, 2]}, "preference"),
        ({"preference": [1, 2, 3, 0, 0, 0]}, "preference[2]"),
        ({"prediction 3": ""}, "prediction 3"),
        ({"passages": [["title", 5]]}, "passages[0]"),
    ],
)
def test_qa_feedback_bad_rows_name_file_line_field(tmp_path, change, field):
    path = _json_array(tmp_path, [{**QA, **change}], "d.json")
    with pytest.raises(DataError) as e:
        load_pairs(path, "qa-feedback")
    assert f"{path}:2 [record 0]: field {field!r}" in str(e.value)


# --- SummEval-OP ---------------------------------------------------------------------------------


def _summeval_row(scores: list[list[int]]) -> dict:
    """Three summaries; every aspect gets ``scores`` except ``sp``, which inverts the first two."""
    row = {"reviews": ["Great boots.", "Too narrow."], "summaries": ["Good, narrow.", "Boots.", "Nice."]}
    for key in ASPECTS:
        row[key] = [list(s) for s in scores]
    row["sp"] = [list(scores[1]), list(scores[0]), list(scores[2])]
    return row


def test_summeval_label_rule_and_tie_threshold(tmp_path):
    # annotator ratings per summary: A=(5,4) B=(3,4) C=(5,4): A vs C is a tie (gap 0 < TIE_GAP)
    row = _summeval_row([[5, 4], [3, 4], [5, 4]])
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert detect_format(path) == "summeval-op"
    pairs = load_pairs(path)
    assert [(p.chosen, p.rejected) for p in pairs] == [("Good, narrow.", "Boots."), ("Nice.", "Boots.")]
    a_b = pairs[0]
    # fluency: annotator 1 prefers A (5>3), annotator 2 ties (4=4) → (1 + 0.5) / 2
    assert a_b.labels["fluency"] == 0.75 and a_b.labels["specificity"] == 0.25
    # overall per annotator: A = (6*5+3)/7, (4) vs B = (6*3+5)/7, (4) → 1 and 0.5
    assert a_b.labels["overall"] == 0.75
    assert set(a_b.labels) == set(ASPECTS.values()) | {"overall"}
    assert a_b.margin is None and a_b.metadata["rating_gap"] == pytest.approx(
        (33 / 7 + 4 - 23 / 7 - 4) / 2, abs=1e-4
    )
    assert TIE_GAP == 0.25


@pytest.mark.parametrize(
    "change,field",
    [
        ({"fl": [[5, 4], [3, 9], [5, 4]]}, "fl[1][1]"),
        ({"co": [[5, 4]]}, "co"),
        ({"summaries": ["a", "", "c"]}, "summaries[1]"),
    ],
)
def test_summeval_bad_rows_name_file_line_field(tmp_path, change, field):
    row = _summeval_row([[5, 4], [3, 4], [5, 4]])
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, **change}) + "\n")
    with pytest.raises(DataError) as e:
        load_pairs(path, "summeval-op")
    assert f"{path}:2: field {field!r}" in str(e.value)


def test_summeval_mean_only_file_is_refused_clearly(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"reviews": {"rev1": "x"}, "summaries": {"gpt-4": {"summary": "s"}}}) + "\n")
    with pytest.raises(DataError, match="plain.jsonl:1: field 'summaries': .*detailed"):
        load_pairs(path)


def test_summeval_systems_align_with_the_published_mean_file():
    with gzip.open(bundled.ROOT / "summeval-op" / "summeval-op.jsonl.gz", "rt") as f:
        plain = [json.loads(line) for line in f]
    with gzip.open(bundled.SUMMEVAL_FILE, "rt") as f:
        detailed = [json.loads(line) for line in f]
    for p, d in zip(plain, detailed, strict=True):
        assert tuple(p["summaries"]) == SYSTEMS
        assert [p["summaries"][s]["summary"] for s in SYSTEMS] == d["summaries"]
        for i, s in enumerate(SYSTEMS):
            assert sum(d["fl"][i]) / len(d["fl"][i]) == pytest.approx(
                p["summaries"][s]["dimensions"]["Fluency"], abs=0.006
            )


# --- splits --------------------------------------------------------------------------------------

GROUPS = {
    "summeval": lambda p: p.metadata["product"],
    "qafeedback": lambda p: p.metadata["question"],
    "pandalm": lambda p: p.metadata["instruction"],
}


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_splits_are_group_disjoint_and_deterministic(name):
    make, group = bundled.SPLIT_SETS[name], GROUPS[name]
    s = make(0)
    groups = {k: {group(p) for p in v} for k, v in s.items()}
    assert all(s[k] for k in bundled.SPLITS)
    assert not groups["train"] & groups["validation"] and not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    again = make(0)
    assert all([p.chosen for p in s[k]] == [p.chosen for p in again[k]] for k in bundled.SPLITS)
    assert {group(p) for p in make(1)["test"]} != groups["test"]


def test_split_sizes_and_names():
    s = bundled.summeval_splits()
    assert [len({p.metadata["product"] for p in s[k]}) for k in bundled.SPLITS] == [20, 4, 8]
    assert [len(v) for v in bundled.qa_feedback_splits().values()] == [1574, 254, 788]
    assert [len(v) for v in s.values()] == [1211, 230, 486]
    for name in bundled.BUNDLED_NAMES:
        pairs = bundled.bundled_set(name)
        assert pairs and all(p.source for p in pairs), name
    assert {p.source for p in bundled.bundled_set("hh-test")} == {"hh-harmless"}
    with pytest.raises(KeyError, match="pandalm-test"):
        bundled.bundled_set("pandalm-dev")


def test_bundled_names_work_as_data_spec():
    from rewardlab.cli.common import read_pairs

    assert len(read_pairs("pandalm-validation")) == len(bundled.pandalm_splits()["validation"])
    assert read_pairs("summeval-test")[0].labels.keys() >= {"overall", "aspect_coverage"}


def test_bundled_files_are_read_once_and_returned_as_fresh_copies(caplog):
    first = bundled.hh_splits()["train"]
    first[0].labels["x"] = 0.5  # a caller editing its pairs does not change the next caller's
    with caplog.at_level(logging.WARNING):
        again = bundled.hh_splits()["train"]
    assert "dropped" not in caplog.text and "x" not in again[0].labels
    assert [p.chosen for p in again] == [p.chosen for p in first]
