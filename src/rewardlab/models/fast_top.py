"""Exact fast path for BERT-style encoders when only the last layer trains.

The reward reads the pooled [CLS] vector, so the last layer needs keys and values for every token
but queries, attention output and MLP only for [CLS]: with H the hidden size, the layer costs
≈ 2H² per token instead of ≈ 12H² (QKVO 4H² + MLP 8H²). Combined with the trunk cache (frozen
layers' outputs computed once), an epoch costs a fraction of one forward pass. Same math as the
HF forward (tested for values and gradients).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
import torch.nn.functional as F

from rewardlab.models.backbone import find_layers


def supports_cls_top(rm, training: bool = True) -> bool:
    """True for BERT-family classifiers (pooled [CLS], absolute positions); for training also
    require that the last layer alone trains (everything below it comes from the trunk cache)."""
    hf = rm.hf_model
    base = getattr(hf, hf.base_model_prefix, None)
    return (
        getattr(hf.config, "model_type", "") in ("bert",)
        and getattr(hf.config, "position_embedding_type", "absolute") == "absolute"
        and getattr(base, "pooler", None) is not None
        and hasattr(hf, "classifier")
        and hf.config.num_hidden_layers >= 2
        and (not training or rm.trunk_split == hf.config.num_hidden_layers - 1)
    )


def below_top(rm, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Hidden states entering the last layer, (N, T, H), for a right-padded batch: the HF forward
    runs up to there and is stopped (the last layer and head are computed by :func:`cls_top_rewards`)."""
    return states_below_top(rm.hf_model, lambda: rm(**batch))


def states_below_top(hf, run: Callable[[], object]) -> torch.Tensor:
    """What enters the last layer of ``hf`` while ``run()`` calls its forward, which is stopped there.

    Thread-safe: the hook acts on the forward of the thread that set it only, so threads scoring
    with one model at once each get their own states (a forward of another thread passes it by)."""
    layers = find_layers(hf)
    captured: list[torch.Tensor] = []
    owner = threading.get_ident()

    class _Stop(Exception):
        pass

    def hook(_m, _inp, out):
        if threading.get_ident() != owner:
            return None
        captured.append(out[0] if isinstance(out, tuple) else out)
        raise _Stop

    handle = layers[len(layers) - 2].register_forward_hook(hook)
    try:
        run()
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def cls_top_rewards(rm, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Rewards (N, K) from the last frozen layer's output ``states`` (N, T, H) and mask (N, T).

    attn = softmax(q_cls·Kᵀ/√d + mask)·V per head; then the layer's output projection, residual +
    LayerNorm, MLP, residual + LayerNorm on [CLS] only; then pooler (tanh dense) and classifier.
    """
    hf = rm.hf_model
    layer = find_layers(hf)[-1]
    sa = layer.attention.self
    n, t, h = states.shape
    nh, hd = sa.num_attention_heads, sa.attention_head_size
    cls = states[:, :1]  # (N, 1, H)
    q = sa.query(cls).view(n, 1, nh, hd).transpose(1, 2)  # (N, nh, 1, hd)
    k = sa.key(states).view(n, t, nh, hd).transpose(1, 2)  # (N, nh, T, hd)
    v = sa.value(states).view(n, t, nh, hd).transpose(1, 2)
    mask = attention_mask[:, None, None, :].bool()  # (N, 1, 1, T)
    p = sa.dropout.p if sa.training else 0.0
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=sa.scaling)
    ctx = ctx.transpose(1, 2).reshape(n, 1, h)  # (N, 1, H)
    a = layer.attention.output(ctx, cls)
    out = layer.output(layer.intermediate(a), a)  # (N, 1, H)
    pooled = getattr(hf, hf.base_model_prefix).pooler(out)  # (N, H)
    return hf.classifier(hf.dropout(pooled))  # (N, K)
