"""Templates, prompt input, chat conversion, clean-up (no LLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.data.bundled import HH_FILE
from rewardlab.data.schema import DataError
from rewardlab.feedback.common import (
    JobIO,
    Template,
    clean_generation,
    item_key,
    load_prompts,
    to_messages,
)


@pytest.mark.parametrize("name", ["critique", "critique_weak", "judge", "rmboost"])
def test_bundled_templates_load(name: str) -> None:
    tpl = Template.load(name)
    assert tpl.fields and tpl.source.endswith(f"{name}.txt")


def test_template_render_leaves_unknown_braces() -> None:
    tpl = Template('Rate {response} as JSON {"score": 1} {unknown}')
    assert tpl.render(response="R") == 'Rate R as JSON {"score": 1} {unknown}'


def test_template_render_does_not_reinterpret_values() -> None:
    assert Template("{prompt}|{response}").render(prompt="{response}", response="x") == "{response}|x"


def test_user_template_missing_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("Critique this: {prompt}")
    with pytest.raises(ValueError, match=r"mine.txt.*response"):
        Template.load(path, required=("response",))


def test_unknown_template_lists_bundled() -> None:
    with pytest.raises(ValueError, match="critique"):
        Template.load("nope")


def test_to_messages_splits_hh_transcripts() -> None:
    msgs = to_messages("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:")
    assert msgs == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
    ]
    assert to_messages("plain") == [{"role": "user", "content": "plain"}]


def test_load_prompts_errors_name_file_line_field(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"text": "no prompt"}) + "\n")
    with pytest.raises(DataError) as e:
        load_prompts(path)
    assert f"{path}:2" in str(e.value) and e.value.field == "prompt"
    path.write_text(json.dumps({"prompt": ""}) + "\n")
    with pytest.raises(DataError, match="empty"):
        load_prompts(path)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=":1"):
        load_prompts(path)


def test_load_prompts_from_pair_files_and_limit(prompts_file: Path) -> None:
    assert len(load_prompts(prompts_file, limit=2)) == 2
    hh = load_prompts(HH_FILE, limit=3)
    assert len(hh) == 3 and all("Human:" in str(it.prompt) for it in hh)


def test_load_prompts_accepts_chat_messages(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": [{"role": "user", "content": "hi"}]}) + "\n")
    assert load_prompts(path)[0].prompt == [{"role": "user", "content": "hi"}]


def test_clean_generation_strips_preamble() -> None:
    assert clean_generation("Here is the new response:\nHello.") == "Hello."
    assert clean_generation("  Response is fine.  ") == "Response is fine."


def test_item_key_stable() -> None:
    assert item_key(3, "a", "b") == item_key(3, "a", "b") != item_key(3, "a", "c")


def test_job_io_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data"):
        JobIO(out=tmp_path / "o.jsonl")
    with pytest.raises(ValueError, match="out"):
        JobIO(data=tmp_path / "d.jsonl")
    with pytest.raises(ValueError, match="limit"):
        JobIO(data=tmp_path / "d.jsonl", out=tmp_path / "o.jsonl", limit=0)


def test_bundled_set_names_as_input() -> None:
    from rewardlab.feedback.common import load_pair_input

    assert len(load_prompts("hh-train", limit=2)) == 2
    assert len(load_pair_input("llmbar", limit=3)) == 3
