"""Scoring precision: what arithmetic ``score`` runs the reward model in, and how far it may move rewards.

On CPUs with AMX (Intel Sapphire Rapids and later: ``amx_bf16`` in ``/proc/cpuinfo``) a bf16 matrix
multiply is several times faster than an fp32 one, but bf16 keeps 8 significant bits: every
activation and weight is rounded to a relative 2⁻⁹. Rewards then move a little, and a pair whose
two rewards are close can change its preference. :func:`flip_rate` measures exactly that — the
share of (chosen, rejected) pairs whose preference differs from the fp32 one — and
``benchmarks/bench_score.py`` prints it beside each precision's speed.

* :attr:`Precision.FP32` (the default): every operation in float32, as the model was trained;
  the reference, exact.
* :attr:`Precision.BF16`: the whole HF model cast to bfloat16 (weights, activations, LayerNorm,
  attention); rewards are cast back to float32. Fastest, least exact.
* :attr:`Precision.MIXED`: the lower half of the transformer blocks in bfloat16, the upper half,
  the embeddings and the reward head in float32 (the hidden state is cast at the two boundaries).
  Rounding in the lower blocks moves rewards about half as much as rounding everywhere.

Measured on a trained MiniLM RM (600 pairs, 2-core AMX Xeon, 2026-12-01): ``mixed`` 1.34× the
fp32 speed with 1.0% of preferences flipped, ``bf16`` 1.47× with 1.8% — both above a 0.5% bar, so
fp32 stays the default (details in ``docs/notes/scoring_speed.md``). Without native bf16 (no AMX
or AVX512-BF16) bf16 is emulated and *slower* than fp32 (measured 0.37× on such a 2-core Xeon,
2026-12-02); :func:`rewardlab.load` warns there. The predictive paths
(Laplace posterior, ensembles) and knowledge RMs always run in float32.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported inside the functions: the CLI imports Precision at start-up
    import torch
    from torch import nn

__all__ = ["Precision", "apply_precision", "flip_rate"]


class Precision(str, Enum):
    """The arithmetic of ``score`` (see the module docstring for what each one rounds)."""

    FP32 = "fp32"
    BF16 = "bf16"
    MIXED = "mixed"


def _cast(x: Any, dtype: torch.dtype) -> Any:
    """``x`` with every floating tensor in it cast (also inside tuples, lists, dicts: RoPE's (cos, sin))."""
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, tuple | list):
        return type(x)(_cast(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _cast(v, dtype) for k, v in x.items()}
    return x


def _cast_inputs(dtype: torch.dtype):
    def hook(_module, args, kwargs):
        return _cast(args, dtype), _cast(kwargs, dtype)

    return hook


def _cast_output(dtype: torch.dtype):
    def hook(_module, _args, out):
        return _cast(out, dtype)

    return hook


def apply_precision(hf_model: nn.Module, precision: Precision | str) -> nn.Module:
    """Convert ``hf_model`` (a ``*ForSequenceClassification``, in eval use) in place to ``precision``
    and return it. ``mixed`` casts the lower ``n // 2`` blocks to bfloat16 and registers hooks that
    cast the hidden state (and every floating input of those blocks: masks, rotary tables) to
    bfloat16 on the way in and back to float32 after the last of them. Irreversible: load the model
    again for float32. Training a converted model is not supported."""
    import torch

    from rewardlab.models.backbone import find_layers

    precision = Precision(precision)
    if precision == Precision.FP32:
        return hf_model
    if precision == Precision.BF16:
        return hf_model.to(torch.bfloat16)
    layers = find_layers(hf_model)
    low = len(layers) // 2
    if low == 0:
        return hf_model  # one block: nothing below the top to round
    for layer in layers[:low]:
        layer.to(torch.bfloat16)
        layer.register_forward_pre_hook(_cast_inputs(torch.bfloat16), with_kwargs=True)
    layers[low - 1].register_forward_hook(_cast_output(torch.float32))
    return hf_model


def flip_rate(
    ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor
) -> float:
    """Share of pairs whose preference differs between a reference scoring and another one.

    Each argument holds B rewards, (B,) or (B, 1): pair i's chosen and rejected reward under the
    reference (e.g. fp32) and under the other scoring. Pair i flips when
    sign(ref_chosen[i] − ref_rejected[i]) ≠ sign(chosen[i] − rejected[i]); a tie (Δ = 0) has sign 0,
    so a tie on one side only is a flip."""
    import torch

    tensors = [t.reshape(-1).double() for t in (ref_chosen, ref_rejected, chosen, rejected)]
    if len({t.numel() for t in tensors}) != 1:
        raise ValueError(f"need four equal-length reward vectors; got {[t.numel() for t in tensors]}")
    if tensors[0].numel() == 0:
        return 0.0
    d_ref, d_oth = tensors[0] - tensors[1], tensors[2] - tensors[3]  # (B,)
    return float((torch.sign(d_ref) != torch.sign(d_oth)).double().mean())
