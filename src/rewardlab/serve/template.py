"""Undo a policy's chat template: OpenRLHF sends ``query`` = the decoded prompt + response *with*
the policy's chat-template markup; the reward model needs the conversation as messages and the
response text alone (its own template is applied when it encodes).

:class:`PolicyTemplate` learns the template's markup by rendering probe conversations with the
policy tokenizer (sentinel contents, so nothing is template-specific): the text before the first
message, the boundary between each pair of roles, the generation prompt and the assistant's
end-of-turn. A templated prompt is split on those boundaries; the response loses its end-of-turn
and any trailing special tokens (eos, pad).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.data.schema import Message, Prompt

_S = ["\u2063RLA\u2063", "\u2063RLB\u2063", "\u2063RLC\u2063", "\u2063RLD\u2063"]  # probe contents
ROLES = ("system", "user", "assistant")


def _pieces(text: str, sentinels: list[str]) -> list[str]:
    """Split ``text`` on the sentinels in order: len(sentinels) + 1 pieces."""
    out = []
    for s in sentinels:
        head, sep, text = text.partition(s)
        if not sep:
            raise ValueError("the chat template dropped a message (cannot learn its markup)")
        out.append(head)
    return [*out, text]


@dataclass
class PolicyTemplate:
    """The markup of one chat template (see the module docstring)."""

    starts: dict[str, str]  # text before the first message, by its role ('user' may hold a default system)
    boundaries: dict[tuple[str, str], str]  # (role, next role) → text between their contents
    generation: str  # text after the last user message when a reply is asked for
    end_of_turn: str  # text after an assistant message
    special: list[str]  # special tokens, longest first

    @classmethod
    def from_tokenizer(cls, tok) -> PolicyTemplate:
        """Learn the markup of ``tok.chat_template`` by rendering probe conversations."""

        def render(msgs: list[Message], gen: bool) -> str:
            return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

        if not getattr(tok, "chat_template", None):
            raise ValueError("the policy tokenizer has no chat template")
        roles = ["system", "user", "assistant", "user"]
        full = _pieces(render([{"role": r, "content": s} for r, s in zip(roles, _S, strict=True)], True), _S)
        user_only = _pieces(render([{"role": "user", "content": _S[1]}], True), _S[1:2])
        ua = _pieces(
            render([{"role": "user", "content": _S[1]}, {"role": "assistant", "content": _S[2]}], False),
            _S[1:3],
        )
        specials = {t for t in getattr(tok, "all_special_tokens", []) if t}
        specials |= {t for t in (tok.eos_token, tok.pad_token) if t}
        return cls(
            starts={"system": full[0], "user": user_only[0]},
            boundaries={
                ("system", "user"): full[1],
                ("user", "assistant"): full[2],
                ("assistant", "user"): full[3],
            },
            generation=full[4],
            end_of_turn=ua[2],
            special=sorted(specials, key=len, reverse=True),
        )

    @classmethod
    def load(cls, name_or_path: str) -> PolicyTemplate:
        """From a tokenizer path or alias (``smollm2``), loaded without the hub."""
        from transformers import AutoTokenizer

        from rewardlab.assets import offline_hub, resolve_model

        with offline_hub():
            tok = AutoTokenizer.from_pretrained(resolve_model(name_or_path))
        return cls.from_tokenizer(tok)

    def strip_specials(self, text: str) -> str:
        """``text`` without any special token."""
        for t in self.special:
            text = text.replace(t, "")
        return text

    def clean_response(self, text: str) -> str:
        """A generated response without its end-of-turn markup, trailing special tokens (eos,
        pad) and the whitespace beside them; special tokens inside it are removed."""
        ends = [e for e in (self.end_of_turn, self.end_of_turn.rstrip(), *self.special) if e]
        marked = False  # markup was cut: whitespace next to it is markup too
        while True:  # end of turn, eos, pad tokens (a batch padded after the end), any order
            end = next((e for e in ends if text.endswith(e)), None)
            if end is not None:
                text, marked = text[: -len(end)], True
            elif marked and text != text.rstrip():
                text = text.rstrip()
            else:
                break
        return self.strip_specials(text) if any(t in text for t in self.special) else text

    def parse_prompt(self, text: str) -> Prompt:
        """A templated prompt → chat messages (the template's default system text is dropped);
        text the template cannot have produced → the text without special tokens."""
        if self.generation and text.endswith(self.generation):
            text = text[: -len(self.generation)]
        msgs = self._split(text)
        if msgs is None:
            return self.strip_specials(text).strip()
        return msgs

    def split_query(self, query: str, prompt: str | None) -> tuple[Prompt, str]:
        """(prompt, response) of one OpenRLHF sample: ``query[len(prompt):]`` when the query starts
        with the prompt, else the query's conversation up to its last assistant turn."""
        if prompt and query.startswith(prompt):
            return self.parse_prompt(prompt), self.clean_response(query[len(prompt) :])
        msgs = self._split(query)
        if msgs and msgs[-1]["role"] == "assistant" and len(msgs) > 1:
            return msgs[:-1], self.clean_response(msgs[-1]["content"])
        return (prompt or ""), self.clean_response(self.strip_specials(query))

    def _split(self, text: str) -> list[Message] | None:
        """Messages of a rendered conversation (no generation prompt), ``None`` if it does not parse."""
        role = next(
            (r for r in ("user", "system") if self.starts[r] and text.startswith(self.starts[r])), None
        )
        if role is None:
            return None
        text = text[len(self.starts[role]) :]
        msgs: list[Message] = []
        while True:
            nxt = [
                (text.find(b), r2, b) for (r1, r2), b in self.boundaries.items() if r1 == role and b in text
            ]
            if not nxt:
                content = (
                    text[: -len(self.end_of_turn)]
                    if role == "assistant" and text.endswith(self.end_of_turn)
                    else text
                )
                msgs.append({"role": role, "content": content})
                return msgs
            at, role2, b = min(nxt)
            msgs.append({"role": role, "content": text[:at]})
            text, role = text[at + len(b) :], role2


def split_sample(template: PolicyTemplate | None, query: str, prompt: str | None) -> tuple[Prompt, str]:
    """(prompt, response) of one OpenRLHF sample; without a policy template the response is
    ``query[len(prompt):]`` when the query starts with the prompt, else the whole query."""
    if template is not None:
        return template.split_query(query, prompt)
    if prompt and query.startswith(prompt):
        return prompt, query[len(prompt) :]
    return prompt or "", query
