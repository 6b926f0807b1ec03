"""Prompt sharing for decoder reward models: one prompt, n responses, the prompt computed once.

In best-of-n, GRPO and preference pairs several responses follow the same prompt. A decoder's
tokens attend only to earlier tokens, so the hidden states of the shared prompt tokens do not
depend on what follows. Each group is **packed** into one row — the shared prefix, then every
member's own tokens — with a block-causal 4D attention mask (a member's token sees the prefix and
the earlier tokens of its own member, nothing of the others) and position ids that restart after
the prefix for each member; rows of many groups run together in the passes of least padded work
(:func:`rewardlab.models.pass_plan.plan_batches`). Same math as the full forward (tested to 1e-5);
the work saved is (n − 1) prefix lengths per group, the attention over a packed row costs more
(rows are cut at ``ROW_TOKENS``).

On by default in ``LoadedRM.score`` (``share_prompts=False`` turns it off; lower level:
``RewardModel.score_encoded(groups=...)``); ``benchmarks/bench_score.py --share-prompts`` measures
it against the plain batches (docs/notes/scoring_speed.md).

The shared prefix is the longest common prefix of the group's *token ids* (so tokenizer merges at
the prompt/response boundary, and prompts cut by truncation, are handled), minus at least one
token so every response keeps one of its own. The reward is read like HF's
``*ForSequenceClassification``: at the rightmost token that is not the pad token. Encoders (BERT:
every token sees every other) and groups whose prefix is shorter than ``MIN_PREFIX`` use the
normal path.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import nn

MIN_PREFIX = 8  # tokens; below it the packing saves less than its masked attention costs
ROW_TOKENS = 1024  # most tokens of one packed row (a longer prefix + one member still runs)


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


@dataclass
class PackedRow:
    """One group's (or part of one group's) packed row."""

    ids: list[int]  # the prefix, then each member's own tokens
    positions: list[int]  # 0..P-1, then P.. again for every member
    segment: list[int]  # 0 for the prefix, k for the tokens of the k-th member (1-based)
    reads: list[int]  # where each member's reward is read (its rightmost non-pad token)
    members: list[int]  # the sequence index of each member


def pack_group(
    seqs: list[dict[str, list[int]]], idx: list[int], p: int, pad: int, row_tokens: int | None = None
) -> list[PackedRow]:
    """The rows of one group sharing its first ``p`` tokens: members added in order while the row
    stays within ``row_tokens`` (default ``ROW_TOKENS``; every row holds at least one member)."""
    row_tokens = ROW_TOKENS if row_tokens is None else row_tokens
    prefix = seqs[idx[0]]["input_ids"][:p]
    rows: list[PackedRow] = []
    row = None
    for i in idx:
        own = seqs[i]["input_ids"][p:]
        if row is None or len(row.ids) + len(own) > row_tokens:
            row = PackedRow(list(prefix), list(range(p)), [0] * p, [], [])
            rows.append(row)
        start = len(row.ids)
        last = last_real(own, pad)  # shareable() guarantees one
        row.ids += own
        row.positions += range(p, p + len(own))
        row.segment += [len(row.members) + 1] * len(own)
        row.reads.append(start + last)
        row.members.append(i)
    return rows


def packed_batch(
    rows: list[PackedRow], pad: int, mask_dtype: torch.dtype | None, device
) -> dict[str, torch.Tensor]:
    """Right-padded ids and positions (b, T) and the 4D mask (b, 1, T, T): query q sees key k ≤ q
    of the prefix or of its own member; a padding token sees itself only (no empty softmax rows).
    ``mask_dtype`` None: boolean (True = attend, for SDPA); else additive (0 / dtype min)."""
    t = max(len(r.ids) for r in rows)
    ids = torch.tensor([r.ids + [pad] * (t - len(r.ids)) for r in rows], device=device)
    pos = torch.tensor([r.positions + [0] * (t - len(r.ids)) for r in rows], device=device)
    seg = torch.tensor([r.segment + [-1] * (t - len(r.ids)) for r in rows], device=device)  # (b, T)
    causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    q, k = seg[:, :, None], seg[:, None, :]
    allowed = causal & ((k == 0) & (q >= 0) | (k == q) & (q > 0))
    allowed |= torch.eye(t, dtype=torch.bool, device=device)  # padding rows attend to themselves
    mask = allowed[:, None]
    if mask_dtype is not None:
        mask = torch.zeros(mask.shape, dtype=mask_dtype, device=device).masked_fill(
            ~mask, torch.finfo(mask_dtype).min
        )
    return {"input_ids": ids, "position_ids": pos, "attention_mask": mask}


@torch.inference_mode()
def score_packed(
    rm, rows: list[PackedRow], batch_tokens: int, max_batch: int
) -> tuple[list[int], torch.Tensor]:
    """Rewards of every member of ``rows``: (the members' sequence indices, rewards (M, K)),
    the rows run in the passes of least padded work."""
    from rewardlab.models.pass_plan import PlanConfig, plan_batches

    hf = rm.hf_model
    base = getattr(hf, hf.base_model_prefix)
    eager = hf.config._attn_implementation == "eager"
    mask_dtype = next(base.parameters()).dtype if eager else None
    members, out = [], []
    plan = plan_batches([len(r.ids) for r in rows], PlanConfig(max_tokens=batch_tokens, max_rows=max_batch))
    for run in reversed(plan):  # longest first: the peak memory comes at once
        chunk = [rows[k] for k in run]
        batch = packed_batch(chunk, hf.config.pad_token_id, mask_dtype, rm.device)
        h = base(**batch).last_hidden_state  # (b, T, H)
        rows_of = torch.tensor([b for b, r in enumerate(chunk) for _ in r.reads], device=rm.device)
        cols = torch.tensor([c for r in chunk for c in r.reads], device=rm.device)
        out.append(hf.score(h[rows_of, cols]).float().cpu())  # (m, K)
        members += [i for r in chunk for i in r.members]
    return members, torch.cat(out)


def prompt_keys(prompts: list) -> list[str]:
    """One hashable group key per prompt (text as is, chat messages as sorted JSON): the
    ``groups`` argument of ``RewardModel.score_encoded``."""
    return [p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in prompts]


def last_real(tokens: list[int], pad: int) -> int | None:
    """Index of the rightmost token of ``tokens`` that is not ``pad`` (where HF's
    ``*ForSequenceClassification`` reads the reward), None when all are padding."""
    return next((k for k in range(len(tokens) - 1, -1, -1) if tokens[k] != pad), None)


def shareable(seqs: list[dict[str, list[int]]], p: int, pad: int, idx: list[int]) -> list[int]:
    """The members of a group whose own tokens hold a non-pad token (where the reward is read);
    the others are scored by the normal path."""
    return [i for i in idx if last_real(seqs[i]["input_ids"][p:], pad) is not None]
