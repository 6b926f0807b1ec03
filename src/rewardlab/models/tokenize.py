"""Turn (prompt, response) into token ids: chat template where there is one, and truncation that
keeps the end of the response (the prompt is cut first, from the left), so no pair is dropped."""

from __future__ import annotations

from rewardlab.data.schema import Prompt, prompt_text


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def left_cut(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Cut ``a`` (prompt) from the left first, then ``b`` (response) from the left, to fit."""
    over = len(a) + len(b) - budget
    if over > 0:
        cut_a = min(over, len(a))
        a, over = a[cut_a:], over - cut_a
    if over > 0:
        b = b[over:]
    return a, b


class PairEncoder:
    """Encode prompt/response texts for one tokenizer. Output: ``input_ids`` and optional
    ``token_type_ids`` (encoders with segment embeddings), unpadded."""

    def __init__(self, tokenizer, max_length: int, chat_template: bool = True) -> None:
        self.tok = tokenizer
        self.max_length = max_length
        self.use_template = bool(chat_template and getattr(tokenizer, "chat_template", None))
        self.n_special = len(tokenizer("a", "b")["input_ids"]) - len(
            tokenizer("a", "b", add_special_tokens=False)["input_ids"]
        )
        tokenizer.truncation_side = "left"  # cut the prompt's beginning, keep what the response answers

    def encode(self, prompt: Prompt, response: str) -> dict[str, list[int]]:
        """Token ids for one (prompt, response)."""
        if self.use_template:
            msgs = _messages(prompt)
            head = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            full = self.tok.apply_chat_template(
                msgs + [{"role": "assistant", "content": response}], tokenize=False
            )
            tail = full[len(head) :] if full.startswith(head) else response
            a = self.tok(head, add_special_tokens=False)["input_ids"]
            b = self.tok(tail, add_special_tokens=False)["input_ids"]
            a, b = left_cut(a, b, self.max_length)
            return {"input_ids": a + b}
        # Encoders / templateless models: the tokenizer's pair format ([CLS] p [SEP] r [SEP]), the
        # prompt truncated from the left; an over-long response loses its beginning, never its end.
        p_text = prompt_text(prompt)
        room = self.max_length - self.n_special - 8  # leave the prompt a few tokens
        offsets = self.tok(response, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if len(offsets) > room:
            response = response[offsets[len(offsets) - room][0] :]
        enc = self.tok(p_text, response, truncation="only_first", max_length=self.max_length)
        return {k: list(v) for k, v in enc.items() if k in ("input_ids", "token_type_ids")}

    def encode_many(self, prompts: list[Prompt], responses: list[str]) -> list[dict[str, list[int]]]:
        """Encode aligned lists of prompts and responses."""
        return [self.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
