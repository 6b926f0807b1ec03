"""Undoing a policy's chat template: the markup is learnt from the template, not hard-coded."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from rewardlab.serve.template import PolicyTemplate

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "What is 2+2?"},
]


def _check(tok, eot: str) -> None:
    t = PolicyTemplate.from_tokenizer(tok)
    for msgs in (CONVERSATION, CONVERSATION[1:2], CONVERSATION[:2]):
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        for tail in (eot, eot.rstrip(), eot + tok.pad_token * 3, ""):  # finished, padded, truncated
            query = prompt + "It is 4." + tail
            assert t.split_query(query, prompt) == (msgs, "It is 4."), (msgs, tail)
            assert t.split_query(query, None) == (msgs, "It is 4.")  # parsed from the query alone


def test_tiny_template(tiny_llama):
    _check(AutoTokenizer.from_pretrained(tiny_llama), " [SEP] ")


def test_unknown_markup_falls_back_to_text_without_special_tokens(tiny_llama):
    t = PolicyTemplate.from_tokenizer(AutoTokenizer.from_pretrained(tiny_llama))
    assert t.parse_prompt("plain [SEP] words") == "plain  words"


@pytest.mark.slow
def test_smollm2_template():
    from rewardlab.assets import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
    _check(tok, "<|im_end|>\n")
    t = PolicyTemplate.from_tokenizer(tok)
    assert t.end_of_turn == "<|im_end|>\n" and "<|im_end|>" in t.special
