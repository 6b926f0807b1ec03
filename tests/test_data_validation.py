"""Malformed input gives a DataError naming file, line (or record) and field — never a silent skip."""

from __future__ import annotations

import json
import logging

import pytest

from rewardlab.data.load import load_pairs
from rewardlab.data.schema import DataError

GOOD = {"prompt": "p", "chosen": "a", "rejected": "b"}


def _jsonl(tmp_path, lines: list[str], name: str = "d.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


CASES = [
    (
        "invalid json",
        ['{"prompt": "p", "chosen": "a", "rejected": "b"}', '{"prompt": "p", "chosen": '],
        2,
        None,
        "invalid JSON",
    ),
    ("not an object", [json.dumps(GOOD), "[1, 2]"], 2, None, "JSON object"),
    ("missing chosen", [json.dumps({"prompt": "p", "rejected": "b"})], 1, "chosen", "missing"),
    ("missing prompt", [json.dumps({"chosen": "a", "rejected": "b"})], 1, "prompt", "missing"),
    ("wrong type", [json.dumps({**GOOD, "chosen": 5})], 1, "chosen", "expected text"),
    ("empty text", [json.dumps({**GOOD, "rejected": "   "})], 1, "rejected", "empty"),
    ("identical", [json.dumps({**GOOD, "rejected": "a"})], 1, "rejected", "identical"),
    ("margin nan", [json.dumps(GOOD), json.dumps({**GOOD, "margin": "big"})], 2, "margin", "finite number"),
    (
        "bad role",
        [json.dumps({**GOOD, "prompt": [{"role": "robot", "content": "x"}]})],
        1,
        "prompt[0].role",
        "must be one of",
    ),
    ("label range", [json.dumps({**GOOD, "labels": {"helpful": 1.5}})], 1, "labels.helpful", "[0, 1]"),
    ("subset type", [json.dumps({**GOOD, "subset": 3})], 1, "subset", "must be text"),
    (
        "critique type",
        [json.dumps({**GOOD, "critiques": {"chosen": 3}})],
        1,
        "critiques.chosen",
        "expected text",
    ),
]


@pytest.mark.parametrize("name,lines,line,field,words", CASES, ids=[c[0] for c in CASES])
def test_malformed_jsonl_names_file_line_field(tmp_path, name, lines, line, field, words):
    path = _jsonl(tmp_path, lines)
    with pytest.raises(DataError) as e:
        load_pairs(path)
    msg = str(e.value)
    assert f"{path}:{line}" in msg
    assert words in msg
    if field:
        assert f"field {field!r}" in msg


def test_empty_file(tmp_path):
    path = _jsonl(tmp_path, [""])
    with pytest.raises(DataError, match="no records"):
        load_pairs(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_pairs(tmp_path / "nope.jsonl")


def test_llmbar_bad_label(tmp_path):
    path = tmp_path / "LLMBar_X.json"
    path.write_text(json.dumps([{"input": "i", "output_1": "a", "output_2": "b", "label": 3}]))
    with pytest.raises(DataError, match=r"\[record 0\]: field 'label'"):
        load_pairs(path)


def test_hhh_without_rubric_markers(tmp_path):
    path = tmp_path / "hhh.json"
    path.write_text(
        json.dumps([{"source": "x", "chosen_instruction": "plain", "rejected_instruction": "plain"}])
    )
    with pytest.raises(DataError, match="chosen_instruction"):
        load_pairs(path, "hhh")


def test_hh_transcripts_without_shared_turn(tmp_path):
    path = _jsonl(
        tmp_path, [json.dumps({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "x\n\nAssistant: y"})]
    )
    with pytest.raises(DataError, match=r":1: field 'chosen': .*Assistant"):
        load_pairs(path, "hh")


def test_drop_mode_reports_every_dropped_row(tmp_path, caplog):
    path = _jsonl(tmp_path, [json.dumps(GOOD), json.dumps({**GOOD, "rejected": "a"}), json.dumps(GOOD)])
    with caplog.at_level(logging.WARNING):
        pairs = load_pairs(path, on_invalid="drop")
    assert len(pairs) == 2
    assert f"{path}:2" in caplog.text and "dropped 1 invalid row" in caplog.text


def test_cli_bad_input_is_one_clean_line(tmp_path):
    from typer.testing import CliRunner

    from rewardlab.cli.main import app

    path = _jsonl(tmp_path, [json.dumps({**GOOD, "chosen": ""})])
    res = CliRunner().invoke(app, ["train", "--data", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert f"{path}:1: field 'chosen': is empty" in res.output.splitlines()[-1]  # one unwrapped line


# --- issue 7 item 6: conversational rows and extra fields are never silently changed ----------------

USER = {"role": "user", "content": "hi"}


def _conv(chosen_reply: str = "hello") -> list[dict]:
    return [USER, {"role": "assistant", "content": chosen_reply}]


STRICT_CASES = [
    (
        "implicit prompt, string rejected",
        {"chosen": _conv(), "rejected": "go away now"},
        "rejected",
        "chat messages",
    ),
    (
        "implicit prompt, rejected prompt differs",
        {"chosen": _conv(), "rejected": [{"role": "user", "content": "bye"}, _conv("no")[1]]},
        "rejected",
        "differs",
    ),
    (
        "implicit prompt, last message not the assistant's",
        {
            "chosen": [USER, {"role": "user", "content": "?"}],
            "rejected": [USER, {"role": "user", "content": "!"}],
        },
        "chosen[-1].role",
        "assistant",
    ),
    (
        "chosen messages without assistant turn",
        {"prompt": "p", "chosen": [USER], "rejected": "b"},
        "chosen",
        "assistant",
    ),
    ("metadata not an object", {**GOOD, "metadata": "x"}, "metadata", "object"),
    (
        "unknown critique key",
        {**GOOD, "critiques": {"chosen": "ok", "winner": "x"}},
        "critiques.winner",
        "unknown",
    ),
    ("extra key clashes with metadata", {**GOOD, "id": 1, "metadata": {"id": 2}}, "id", "metadata"),
]


@pytest.mark.parametrize("name,row,field,words", STRICT_CASES, ids=[c[0] for c in STRICT_CASES])
def test_no_silent_guess_or_drop(tmp_path, name, row, field, words):
    path = _jsonl(tmp_path, [json.dumps(GOOD), json.dumps(row)])
    with pytest.raises(DataError) as e:
        load_pairs(path)
    assert f"{path}:2: field {field!r}" in str(e.value) and words in str(e.value)


def test_unknown_keys_are_kept_verbatim_in_metadata(tmp_path):
    row = {**GOOD, "id": "rb-17", "chosen_model": "gpt-4", "metadata": {"note": 1}}
    pair = load_pairs(_jsonl(tmp_path, [json.dumps(row)]))[0]
    assert pair.metadata == {"note": 1, "id": "rb-17", "chosen_model": "gpt-4"}
    assert (pair.chosen, pair.rejected) == ("a", "b")


def test_implicit_prompt_conversation_keeps_full_responses(tmp_path):
    row = {"chosen": _conv("hello there"), "rejected": _conv("go away now")}
    pair = load_pairs(_jsonl(tmp_path, [json.dumps(row)]))[0]
    assert pair.prompt == [USER] and (pair.chosen, pair.rejected) == ("hello there", "go away now")
