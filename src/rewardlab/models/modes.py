"""Train/eval mode policy of a reward model, in one place.

In train mode only what trains is in training mode (dropout on): the trained layers, with their
LoRA dropout, and the reward head. The frozen trunk — the embedding block and the frozen lower
layers — stays in eval mode, so its output is deterministic and equals the cached trunk states
(:mod:`rewardlab.models.trunk_cache`). The trunk is named module by module: a decoder's embeddings
sit directly in the decoder stack (``LlamaModel.embed_tokens``), so "the embeddings' parent" would
be the whole stack, trained layers included.

Scoring switches to eval mode and back with :func:`eval_mode`, which restores every module's own
flag rather than calling ``train()`` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from rewardlab.models.backbone import find_layers

__all__ = ["embedding_block", "eval_mode", "frozen_trunk", "restore", "snapshot"]


def embedding_block(hf: nn.Module) -> nn.Module:
    """The largest module that holds the input embeddings and no transformer layer (BERT:
    ``BertEmbeddings`` with its LayerNorm and dropout; Llama: ``embed_tokens`` itself)."""
    emb = hf.get_input_embeddings()
    layers = find_layers(hf)
    best, size = emb, 1
    for module in hf.modules():
        subs = list(module.modules())
        if len(subs) > size and any(m is emb for m in subs) and not any(m is layers for m in subs):
            best, size = module, len(subs)
    return best


def frozen_trunk(hf: nn.Module, split: int) -> list[nn.Module]:
    """Modules below the first trained layer: the embedding block and layers ``[0, split)``;
    empty when every layer trains (``split == 0``, no trunk to cache)."""
    if split == 0:
        return []
    return [embedding_block(hf), *find_layers(hf)[:split]]


def snapshot(module: nn.Module) -> list[tuple[nn.Module, bool]]:
    """Every submodule with its own ``training`` flag."""
    return [(m, m.training) for m in module.modules()]


def restore(saved: list[tuple[nn.Module, bool]]) -> None:
    """Put back the flags recorded by :func:`snapshot`, module by module."""
    for m, training in saved:
        m.training = training


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block; afterwards every submodule is in exactly its former mode."""
    saved = snapshot(module)
    module.eval()
    try:
        yield module
    finally:
        restore(saved)
