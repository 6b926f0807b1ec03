"""Turn (prompt, response) into token ids the way TRL and RewardBench feed a reward model.

rewardlab encodes a pair exactly as ``tokenizer(tokenizer.apply_chat_template(messages,
tokenize=False), add_special_tokens=False)`` with ``messages`` = the prompt's messages + one
assistant message holding the response: TRL's GRPO reward-model path and RewardTrainer, and
RewardBench, feed a saved RM that way, so it scores identically there. Every RM's tokenizer
therefore carries a chat template (saved with it):

- the backbone's own template (decoders such as SmolLM2), when it has one and
  ``ModelConfig.chat_template`` is on;
- else :func:`plain_template`: the tokenizer's pair format written as text, ONE segment —
  ``[CLS] prompt [SEP] response [SEP]`` for BERT, every token type 0 (a template cannot set type 1).

The only departure is truncation, which keeps the end of the response: leading special tokens
stay, the prompt is cut from the left down to ``MIN_PROMPT`` tokens, then the response from the
left, then the rest of the prompt. Sequences within ``max_length`` are never cut.
"""

from __future__ import annotations

import json

from rewardlab.data.schema import Prompt

MIN_PROMPT = 8  # prompt tokens (incl. the separator) kept when the response alone is too long
TEXT_SEP = "\n\n"  # between prompt and response when the tokenizer's pair format has no separator


def messages(prompt: Prompt, response: str | None = None) -> list[dict[str, str]]:
    """Chat messages for a prompt (a string is one user message) and, if given, the response."""
    msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return msgs + ([{"role": "assistant", "content": response}] if response is not None else [])


def _pair_specials(tokenizer) -> tuple[str, str, str]:
    """(prefix, separator, suffix) that the tokenizer's pair format puts around two texts, as
    text (``[CLS]``, ``[SEP]``, ``[SEP]`` for BERT); the separator defaults to ``TEXT_SEP``."""
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    b = tokenizer("b", add_special_tokens=False)["input_ids"]
    ids = tokenizer("a", "b")["input_ids"]
    special = set(tokenizer.all_special_ids)
    i = next((i for i in range(len(ids)) if ids[i : i + len(a)] == a), None)
    j = next((j for j in range(len(ids) - len(b), -1, -1) if ids[j : j + len(b)] == b), None)
    if i is None or j is None or j < i + len(a):
        return "", TEXT_SEP, ""
    parts = ids[:i], ids[i + len(a) : j], ids[j + len(b) :]
    if any(t not in special for part in parts for t in part):
        return "", TEXT_SEP, ""
    prefix, sep, suffix = ("".join(tokenizer.convert_ids_to_tokens(p)) for p in parts)
    return prefix, sep or TEXT_SEP, suffix


def plain_template(tokenizer) -> str:
    """A Jinja chat template reproducing the tokenizer's pair format as one segment.

    Renders ``prefix + prompt + sep + response + suffix``; the prompt is a lone user message's
    content, else ``role: content`` lines (``prompt_text``). With ``add_generation_prompt`` and no
    response it stops after ``sep``.
    """
    prefix, sep, suffix = (json.dumps(s) for s in _pair_specials(tokenizer))
    return (
        "{%- set answered = messages | length > 0 and messages[-1]['role'] == 'assistant' -%}"
        "{%- set prompt = messages[:-1] if answered else messages -%}"
        "{{- " + prefix + " -}}"
        "{%- if prompt | length == 1 and prompt[0]['role'] == 'user' -%}{{- prompt[0]['content'] -}}"
        "{%- else -%}{%- for m in prompt -%}{{- m['role'] + ': ' + m['content'] -}}"
        '{%- if not loop.last -%}{{- "\\n" -}}{%- endif -%}{%- endfor -%}{%- endif -%}'
        "{%- if answered or add_generation_prompt -%}{{- " + sep + " -}}{%- endif -%}"
        "{%- if answered -%}{{- messages[-1]['content'] + " + suffix + " -}}{%- endif -%}"
    )


def rm_chat_template(tokenizer, use_own: bool = True) -> str:
    """The chat template a reward model encodes with (and saves): the tokenizer's own when it has
    one and ``use_own``, else :func:`plain_template`."""
    own = getattr(tokenizer, "chat_template", None)
    return own if use_own and isinstance(own, str) and own else plain_template(tokenizer)


def fit_to_budget(ids: list[int], n_head: int, budget: int, special: set[int]) -> list[int]:
    """Cut ``ids`` (``n_head`` prompt tokens, then the response) to ``budget`` tokens.

    Keeps the leading special tokens ([CLS], BOS) and the response's end: the prompt is cut from
    the left down to ``MIN_PROMPT`` tokens, then the response from the left, then the prompt.
    """
    if len(ids) <= budget:
        return ids
    lead = 0
    while lead < n_head and ids[lead] in special:
        lead += 1
    prompt, response = ids[lead:n_head], ids[n_head:]
    room = budget - lead
    keep_r = min(len(response), max(room - min(MIN_PROMPT, len(prompt)), 0))
    keep_p = min(len(prompt), room - keep_r)
    return ids[:lead] + prompt[len(prompt) - keep_p :] + response[len(response) - keep_r :]


class PairEncoder:
    """Encode (prompt, response) through the tokenizer's chat template (set it with
    :func:`rm_chat_template`). Output: ``input_ids`` per pair, unpadded, one segment."""

    def __init__(self, tokenizer, max_length: int) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template: set rm_chat_template(tokenizer)")
        self.tok = tokenizer
        self.max_length = max_length
        self.special = set(tokenizer.all_special_ids)

    def render(self, prompt: Prompt, response: str) -> tuple[str, int]:
        """The chat text and the character where the response part begins."""
        full = self.tok.apply_chat_template(messages(prompt, response), tokenize=False)
        head = self.tok.apply_chat_template(messages(prompt), tokenize=False, add_generation_prompt=True)
        cut = len(head) if full.startswith(head) else max(full.rfind(response), 0)
        return full, cut

    def encode_many(self, prompts: list[Prompt], responses: list[str]) -> list[dict[str, list[int]]]:
        """Token ids for aligned prompts and responses, tokenized in one call per text."""
        rendered = [self.render(p, r) for p, r in zip(prompts, responses, strict=True)]
        if not rendered:
            return []
        texts = [t for t, _ in rendered]
        if self.tok.is_fast:
            enc = self.tok(texts, add_special_tokens=False, return_offsets_mapping=True)
            offsets = zip(enc["offset_mapping"], rendered, strict=True)
            heads = [sum(s < cut for s, _ in offs) for offs, (_, cut) in offsets]
        else:  # no offsets: count the head's tokens on their own
            enc = self.tok(texts, add_special_tokens=False)
            heads = [len(self.tok(t[:cut], add_special_tokens=False)["input_ids"]) for t, cut in rendered]
        return [
            {"input_ids": fit_to_budget(list(ids), n, self.max_length, self.special)}
            for ids, n in zip(enc["input_ids"], heads, strict=True)
        ]

    def encode(self, prompt: Prompt, response: str) -> dict[str, list[int]]:
        """Token ids for one (prompt, response)."""
        return self.encode_many([prompt], [response])[0]
