"""Prompt sharing for decoder reward models: one prompt, n responses, the prompt computed once.

In best-of-n, GRPO and preference pairs several responses follow the same prompt. A decoder's
tokens attend only to earlier tokens, so the hidden states (and keys/values) of the shared prompt
tokens do not depend on what follows: they are computed once per group, kept as a KV cache, and
each response runs its own tokens against it. Same math as the full forward (tested to 1e-5); the
work saved is (n − 1) prompt lengths per group.

Opt-in (``LoadedRM.score(..., share_prompts=True)``, ``RewardModel.score_encoded(groups=...)``):
on the 2-core CPU it was measured *slower* than the plain length-sorted batches (each group runs
its own small forwards, so batching across groups is lost; docs/notes/scoring_speed.md).

The shared prefix is the longest common prefix of the group's *token ids* (so tokenizer merges at
the prompt/response boundary, and prompts cut by truncation, are handled), minus at least one
token so every response keeps one of its own. The reward is read like HF's
``*ForSequenceClassification``: at the rightmost token that is not the pad token. Encoders (BERT:
every token sees every other) and groups whose prefix is shorter than ``MIN_PREFIX`` use the
normal path.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable

import torch
from torch import nn

MIN_PREFIX = 8  # tokens; below it the cache bookkeeping costs more than it saves


def supports_prompt_sharing(rm) -> bool:
    """True for decoder classifiers with a ``score`` head over a causal base model (Llama, Qwen2,
    Mistral, ...), in eval use."""
    hf = rm.hf_model
    return (
        isinstance(getattr(hf, "score", None), nn.Linear)
        and hasattr(hf, getattr(hf, "base_model_prefix", ""))
        and not getattr(hf.config, "is_encoder_decoder", False)
        and hf.config.pad_token_id is not None
        and not hf.training
    )


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token-id lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def prefix_groups(seqs: list[dict[str, list[int]]], keys: list[Hashable]) -> list[tuple[int, list[int]]]:
    """Groups of sequence indices with the same key (e.g. the prompt) and 2+ members, each with the
    shared prefix length P (≥ ``MIN_PREFIX``; every member keeps ≥ 1 token of its own)."""
    by_key: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    out = []
    for idx in by_key.values():
        if len(idx) < 2:
            continue
        first = seqs[idx[0]]["input_ids"]
        p = min(common_prefix(first, seqs[i]["input_ids"]) for i in idx[1:])
        p = min(p, min(len(seqs[i]["input_ids"]) for i in idx) - 1)
        if p >= MIN_PREFIX:
            out.append((p, idx))
    return out


def _suffix_batch(suffixes: list[list[int]], p: int, pad: int, device) -> dict[str, torch.Tensor]:
    """Right-padded response tokens (b, S), the mask over prefix + responses (b, P + S) and
    positions continuing after the prefix (b, S)."""
    s = max(len(x) for x in suffixes)
    ids = torch.tensor([x + [pad] * (s - len(x)) for x in suffixes], device=device)
    own = torch.tensor([[1] * len(x) + [0] * (s - len(x)) for x in suffixes], device=device)
    mask = torch.cat([torch.ones(len(suffixes), p, dtype=own.dtype, device=device), own], 1)
    pos = (p + torch.arange(s, device=device)).expand(len(suffixes), s)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos}


@torch.inference_mode()
def score_group(rm, seqs: list[dict[str, list[int]]], idx: list[int], p: int, max_batch: int) -> torch.Tensor:
    """Rewards (len(idx), K) of the sequences ``idx`` that share their first ``p`` tokens."""
    from transformers import DynamicCache

    hf = rm.hf_model
    base = getattr(hf, hf.base_model_prefix)
    pad, device = hf.config.pad_token_id, rm.device
    prefix = torch.tensor([seqs[idx[0]]["input_ids"][:p]], device=device)  # (1, P)
    cache = DynamicCache(config=hf.config)
    base(input_ids=prefix, past_key_values=cache, use_cache=True)
    out = []
    for i in range(0, len(idx), max_batch):
        chunk = idx[i : i + max_batch]
        batch = _suffix_batch([seqs[j]["input_ids"][p:] for j in chunk], p, pad, device)
        kv = copy.deepcopy(cache)
        kv.batch_repeat_interleave(len(chunk))
        h = base(**batch, past_key_values=kv, use_cache=True).last_hidden_state  # (b, S, H)
        logits = hf.score(h)  # (b, S, K)
        t = batch["input_ids"].shape[1]
        last = (torch.arange(t, device=device) * (batch["input_ids"] != pad)).argmax(-1)  # (b,)
        out.append(logits[torch.arange(len(chunk), device=device), last].float().cpu())
    return torch.cat(out)


def shareable(seqs: list[dict[str, list[int]]], p: int, pad: int, idx: list[int]) -> list[int]:
    """The members of a group whose own tokens hold a non-pad token (where the reward is read);
    the others are scored by the normal path."""
    return [i for i in idx if any(t != pad for t in seqs[i]["input_ids"][p:])]
