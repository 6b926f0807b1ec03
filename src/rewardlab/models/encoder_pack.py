"""Packed passes for BERT-family encoder RMs: several sequences in one row, no padding between them.

A padded pass computes every row to its longest; a pass of a random mix of lengths pads most of
them (the server's concurrent requests are such a mix). Packing puts sequences end to end in rows
of at most ``row_tokens`` (first-fit decreasing), with a block-diagonal 4D attention mask (a token
sees the tokens of its own sequence only), position ids that restart at 0 for each sequence and
its own token type ids, so each sequence computes exactly what it computes alone (tested to 1e-5
against the padded path). The last layer runs for each sequence's [CLS] only (the exact top of
:mod:`rewardlab.models.fast_top`), with the same per-sequence mask.

The pass runs **unpadded** (:func:`below_top_unpadded`): embeddings, the Q/K/V projections,
attention output, MLP and LayerNorms of every layer run on the (R, H) matrix of the R real tokens
of the pass only (topped up with < 64 padding tokens, to keep the heap from fragmenting);
attention alone scatters Q, K, V into the packed rows (padding there is zeros, masked) and
gathers its output back. So the ~1 token in 12 that pads the rows of a server window costs
attention only, not the linears (~95% of the FLOPs).

What it costs: attention over a packed row spans the row (masked), ~1536·T FLOPs per token for
MiniLM against ~3.5M for its linears, so rows of 256 tokens add ~3% over each sequence alone;
what it buys: passes of any size and any mix of lengths, so the server can score its oldest
samples first, in big passes (``--batch-policy packed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rewardlab.models.backbone import find_layers
from rewardlab.models.fast_top import supports_cls_top


def supports_packing(rm) -> bool:
    """True for the encoders whose rewards packing reproduces: BERT-family classifiers with
    absolute positions and a pooled [CLS] (the models of the exact [CLS]-only top)."""
    return supports_cls_top(rm, training=False) and not rm.hf_model.training


def pack_rows(lengths: list[int], row_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` packed into rows of at most ``row_tokens`` tokens (first-fit
    decreasing; a longer sequence gets a row of its own). Every index appears exactly once.
    (Evening the rows out to the mean row length was tried: +0.2% real tokens; not kept.)"""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        n = lengths[i]
        k = next((r for r, f in enumerate(free) if f >= n), None)
        if k is None:
            rows.append([i])
            free.append(row_tokens - n)
        else:
            rows[k].append(i)
            free[k] -= n
    return rows


@dataclass
class PackedPass:
    """One packed forward pass: tensors for the HF model and where each sequence's [CLS] is."""

    inputs: dict[str, torch.Tensor]  # input_ids, position_ids, token_type_ids (b, T); mask (b, 1, T, T)
    segment: torch.Tensor  # (b, T): which sequence of its row a token belongs to, -1 for padding
    cls_row: torch.Tensor  # (M,) row of each sequence's [CLS]
    cls_col: torch.Tensor  # (M,) its column
    members: list[int]  # the sequence index of each [CLS], in the order of cls_row
    real: torch.Tensor  # (R,) where the computed tokens are in the flattened (b·T) rows (_flat_tokens)


FLAT_BUCKET = 64  # the unpadded pass computes a multiple of this many tokens (see _flat_tokens)


def _flat_tokens(segment: torch.Tensor, bucket: int) -> torch.Tensor:
    """Positions (in the flattened rows) of the tokens the unpadded pass computes: the real ones,
    topped up with padding positions to a multiple of ``bucket`` where the rows have them.

    Why: a pass's (R, ·) activations are freed and reallocated at every layer; with R different in
    every pass, glibc's heap fragmented and the resident set grew by ~3.5 MiB a pass (450 → 1,520
    MiB over 300 server windows of 16; ≤ 680 with buckets of 64, flat from the 200th). Rounding R
    keeps the sizes few, so freed blocks are reused; it adds < 1% work (~32 of ~3,700 tokens).
    The extra padding tokens attend to themselves only and nobody attends to them (exact)."""
    real = (segment >= 0).nonzero().squeeze(1)
    extra = min(-real.numel() % bucket, segment.numel() - real.numel())
    if extra:
        real = torch.sort(torch.cat([real, (segment < 0).nonzero().squeeze(1)[:extra]])).values
    return real


def packed_pass(seqs: list[dict[str, list[int]]], rows: list[list[int]], pad: int, device) -> PackedPass:
    """The packed pass of ``rows`` (lists of indices into ``seqs``), right-padded to the longest row."""
    t = max(sum(len(seqs[i]["input_ids"]) for i in r) for r in rows)
    ids, pos, types, seg = [], [], [], []
    cls_row, cls_col, members = [], [], []
    for b, r in enumerate(rows):
        row_ids, row_pos, row_types, row_seg = [], [], [], []
        for s, i in enumerate(r):
            x = seqs[i]["input_ids"]
            cls_row.append(b)
            cls_col.append(len(row_ids))
            members.append(i)
            row_ids += x
            row_pos += range(len(x))
            row_types += seqs[i].get("token_type_ids", [0] * len(x))
            row_seg += [s] * len(x)
        fill = t - len(row_ids)
        ids.append(row_ids + [pad] * fill)
        pos.append(row_pos + [0] * fill)
        types.append(row_types + [0] * fill)
        seg.append(row_seg + [-1] * fill)
    segment = torch.tensor(seg, device=device)
    same = segment[:, :, None] == segment[:, None, :]
    allowed = (same & (segment[:, :, None] >= 0)) | torch.eye(t, dtype=torch.bool, device=device)
    inputs = {
        "input_ids": torch.tensor(ids, device=device),
        "position_ids": torch.tensor(pos, device=device),
        "token_type_ids": torch.tensor(types, device=device),
        "attention_mask": allowed[:, None],  # padding attends to itself (no empty softmax rows)
    }
    real = _flat_tokens(segment.reshape(-1), FLAT_BUCKET)
    cls_r, cls_c = torch.tensor(cls_row, device=device), torch.tensor(cls_col, device=device)
    return PackedPass(inputs, segment, cls_r, cls_c, members, real)


def _to_rows(x: torch.Tensor, p: PackedPass) -> torch.Tensor:
    """The real tokens' rows (R, C) scattered into the packed layout (b, T, C), zeros elsewhere."""
    b, t = p.segment.shape
    out = x.new_zeros(b * t, x.shape[-1])
    out[p.real] = x
    return out.view(b, t, -1)


def _unpadded_layer(layer, x: torch.Tensor, p: PackedPass) -> torch.Tensor:
    """One BERT layer on the real tokens (R, H): the HF layer's own submodules, attention in rows.

    q, k, v = x·W_{q,k,v}; ctx = softmax(q·kᵀ/√d + block-diagonal mask)·v within each packed row;
    a = LayerNorm(ctx·W_o + x); out = LayerNorm(MLP(a) + a) — BertLayer's math, token by token."""
    sa = layer.attention.self
    b, t = p.segment.shape
    nh, hd = sa.num_attention_heads, sa.attention_head_size

    def heads(y: torch.Tensor) -> torch.Tensor:
        return _to_rows(y, p).view(b, t, nh, hd).transpose(1, 2)  # (b, nh, T, hd)

    mask = p.inputs["attention_mask"]
    q, k, v = heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x))
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=sa.scaling)
    ctx = ctx.transpose(1, 2).reshape(b * t, nh * hd)[p.real]  # (R, H)
    a = layer.attention.output(ctx, x)
    return layer.output(layer.intermediate(a), a)


def below_top_unpadded(hf, p: PackedPass) -> torch.Tensor:
    """Hidden states of the real tokens entering the last layer, (R, H) in the order of
    ``p.real``: the embeddings and every layer below the top, unpadded."""
    base = getattr(hf, hf.base_model_prefix)
    flat = {k: p.inputs[k].reshape(1, -1)[:, p.real] for k in ("input_ids", "position_ids", "token_type_ids")}
    x = base.embeddings(**flat)[0]  # (R, H)
    for layer in find_layers(hf)[:-1]:
        x = _unpadded_layer(layer, x, p)
    return x


def packed_top_rewards(hf, x: torch.Tensor, p: PackedPass) -> torch.Tensor:
    """Rewards (M, K) of the pass's sequences from the real tokens' states entering the last
    layer, (R, H) in the order of ``p.real`` (:func:`below_top_unpadded`).

    Per sequence m with [CLS] at (row, col): attn = softmax(q_m·K_rowᵀ/√d, keys of its own
    sequence only)·V_row per head; then the layer's output, MLP, pooler and classifier on that
    [CLS] alone — :func:`rewardlab.models.fast_top.cls_top_rewards` with a per-sequence mask."""
    layer = find_layers(hf)[-1]
    sa = layer.attention.self
    b, t = p.segment.shape
    h = x.shape[-1]
    nh, hd = sa.num_attention_heads, sa.attention_head_size
    m = p.cls_row.numel()
    cls = x[torch.searchsorted(p.real, p.cls_row * t + p.cls_col)][:, None]  # (M, 1, H); p.real is sorted
    q = sa.query(cls).view(m, 1, nh, hd).transpose(1, 2)  # (M, nh, 1, hd)
    k = _to_rows(sa.key(x), p).view(b, t, nh, hd).transpose(1, 2)[p.cls_row]  # (M, nh, T, hd)
    v = _to_rows(sa.value(x), p).view(b, t, nh, hd).transpose(1, 2)[p.cls_row]
    own = p.segment[p.cls_row] == p.segment[p.cls_row, p.cls_col][:, None]  # (M, T)
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=own[:, None, None], scale=sa.scaling)
    ctx = ctx.transpose(1, 2).reshape(m, 1, h)
    a = layer.attention.output(ctx, cls)
    out = layer.output(layer.intermediate(a), a)  # (M, 1, H)
    pooled = getattr(hf, hf.base_model_prefix).pooler(out)  # (M, H)
    return hf.classifier(hf.dropout(pooled))  # (M, K)


@torch.inference_mode()
def score_packed(rm, seqs: list[dict[str, list[int]]], row_tokens: int | None = None) -> torch.Tensor:
    """Rewards (N, K) of ``seqs`` in ONE packed pass (rows of ``row_tokens``, default the
    model's ``max_length``); the caller bounds the pass (the server: its oldest samples)."""
    hf = rm.hf_model
    row_tokens = row_tokens or rm.cfg.max_length
    rows = pack_rows([len(s["input_ids"]) for s in seqs], row_tokens)
    p = packed_pass(seqs, rows, hf.config.pad_token_id or 0, rm.device)
    rewards = packed_top_rewards(hf, below_top_unpadded(hf, p), p).float().cpu()
    out = torch.empty_like(rewards)
    out[torch.tensor(p.members)] = rewards
    return out
