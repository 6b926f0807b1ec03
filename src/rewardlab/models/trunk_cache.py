"""Cache the frozen trunk: when only the top layers train, the hidden states entering the first
trained layer never change, so compute them once per sequence and reuse them every epoch (and for
ensembles and Laplace). Works on any HF model whose blocks sit in one ``ModuleList``: the frozen
blocks are swapped for pass-throughs and the last of them emits the cached states.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from rewardlab.models.backbone import find_layers
from rewardlab.models.modes import eval_mode


class _Stop(Exception):
    pass


class _Skip(nn.Module):
    def forward(self, hidden_states, *args, **kwargs):  # noqa: D401 - pass-through
        return hidden_states


class _Emit(nn.Module):
    def __init__(self, states: torch.Tensor) -> None:
        super().__init__()
        self.states = states

    def forward(self, hidden_states, *args, **kwargs):
        return self.states.to(hidden_states.dtype)


def padded_states(store, ids: list[int], length: int) -> torch.Tensor:
    """``store[i]`` (each (T_i, H)) for ``ids``, right-padded with zeros to ``length``: (N, T, H)."""
    first = store[ids[0]]
    out = first.new_zeros(len(ids), length, first.shape[-1])  # (N, T, H)
    for row, i in enumerate(ids):
        h = store[i]
        out[row, : h.shape[0]] = h
    return out


class TrunkCache:
    """Per-sequence hidden states after the first ``split`` (frozen) layers.

    ``store[i]`` is a ``(T_i, H)`` tensor for sequence id ``i`` (unpadded, on CPU).
    """

    def __init__(self, model: nn.Module, split: int) -> None:
        self.model = model  # called as model(**batch) -> rewards
        self.layers = find_layers(getattr(model, "hf_model", model))
        self.split = split
        self.store: dict[int, torch.Tensor] = {}

    @property
    def active(self) -> bool:
        """True when there is a frozen trunk to cache."""
        return self.split > 0

    @torch.no_grad()
    def fill(self, ids: list[int], batch: dict[str, torch.Tensor]) -> None:
        """Compute and store the trunk output for the sequences ``ids`` of a padded ``batch``
        (right-padded ``input_ids``/``attention_mask`` of shape (N, T)); skips known ids."""
        todo = [j for j, i in enumerate(ids) if i not in self.store]
        if not todo:
            return
        layers = self.layers
        captured: list[torch.Tensor] = []

        def hook(_m, _inp, out):
            captured.append(out[0] if isinstance(out, tuple) else out)
            raise _Stop

        sub = {k: v[todo] for k, v in batch.items()}
        handle = layers[self.split - 1].register_forward_hook(hook)
        try:
            with eval_mode(self.model):
                self.model(**sub)
        except _Stop:
            pass
        finally:
            handle.remove()
        lengths = sub["attention_mask"].sum(-1).tolist()
        for j, n, h in zip(todo, lengths, captured[0], strict=True):
            self.store[ids[j]] = h[: int(n)].detach().to("cpu", copy=True)

    def padded(self, ids: list[int], length: int) -> torch.Tensor:
        """Cached states for ``ids``, right-padded to ``length``: (N, T, H)."""
        return padded_states(self.store, ids, length)

    @contextmanager
    def injected(self, states: torch.Tensor) -> Iterator[None]:
        """Within the block, the model skips the frozen layers and starts from ``states``."""
        layers = self.layers
        saved = [layers[i] for i in range(self.split)]
        try:
            for i in range(self.split - 1):
                layers[i] = _Skip()
            layers[self.split - 1] = _Emit(states)
            yield
        finally:
            for i, m in enumerate(saved):
                layers[i] = m

    def nbytes(self) -> int:
        """Memory held by the cache."""
        return sum(t.numel() * t.element_size() for t in self.store.values())
