"""The training forward as one ``nn.Module``, so that ``accelerate.prepare`` wraps the path that runs.

Under ``accelerate launch`` with several processes the prepared model is a DDP wrapper, and DDP
all-reduces gradients only for forwards that go through it. The trunk-cache and [CLS]-only paths
are therefore branches of :meth:`TrainForward.forward` — never calls on the unwrapped reward model —
and the cached trunk states enter as an ordinary input tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from rewardlab.models.fast_top import cls_top_rewards, supports_cls_top
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache


class TrainForward(nn.Module):
    """Rewards (N, K) of a reward model, through the trunk cache when one is active.

    ``forward(input_ids, attention_mask, states=None, **kw)``: without ``states`` the full model
    runs; with the frozen trunk's output ``states`` (N, T, H) only the trained top runs — the
    [CLS]-only top for BERT-family models whose last layer alone trains, else the HF forward with
    the frozen blocks swapped for pass-throughs.
    """

    def __init__(self, rm: RewardModel, cache_trunk: bool = True, store: dict | None = None) -> None:
        super().__init__()
        self.rm = rm
        self.trunk = TrunkCache(rm, rm.trunk_split if cache_trunk else 0)  # not a module: no params
        if store is not None:
            self.trunk.store = store
        self.fast_top = self.trunk.active and supports_cls_top(rm)

    def inputs(self, batch: dict, device: torch.device, seq_offset: int = 0) -> dict[str, torch.Tensor]:
        """Keyword arguments of :meth:`forward` for a collated batch: padded inputs (2B, T) and,
        with a frozen trunk, its states (2B, T, H), computed now for sequences not seen before."""
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        if self.trunk.active:
            ids = [seq_offset + int(i) for i in batch["seq_ids"]]
            self.trunk.fill(ids, inputs)
            inputs["states"] = self.trunk.padded(ids, inputs["input_ids"].shape[1]).to(device)
        return inputs

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        states: torch.Tensor | None = None,
        **kw: torch.Tensor,
    ) -> torch.Tensor:
        """Rewards (N, K); see the class docstring."""
        if states is None:
            return self.rm(input_ids=input_ids, attention_mask=attention_mask, **kw)
        if self.fast_top:
            return cls_top_rewards(self.rm, states, attention_mask)
        with self.trunk.injected(states):
            return self.rm(input_ids=input_ids, attention_mask=attention_mask, **kw)
