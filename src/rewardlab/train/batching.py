"""Encoded pairs, length-grouped batches and the (2B, T) collate (chosen rows, then rejected)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from rewardlab.data.schema import PreferencePair
from rewardlab.models.reward_model import RewardModel, pad_batch
from rewardlab.objectives.labels import label_targets, log_label_use


@dataclass
class EncodedPairs:
    """Token ids of every pair; sequence id ``2i`` is pair i's chosen, ``2i+1`` its rejected."""

    seqs: list[dict[str, list[int]]]
    margins: torch.Tensor  # (P,) margin, 0 where absent
    targets: torch.Tensor  # (P, K) soft labels P(chosen ≻ rejected) per objective (label rule)
    mask: torch.Tensor  # (P, K) bool: objective k trains on pair i (rewardlab.objectives.labels)
    offsets: torch.Tensor | None = None  # (P,) length-expert logit added in training (length_bias.py)

    def __len__(self) -> int:
        return len(self.seqs) // 2

    def pair_length(self, i: int) -> int:
        return max(len(self.seqs[2 * i]["input_ids"]), len(self.seqs[2 * i + 1]["input_ids"]))


def encode_pairs(rm: RewardModel, pairs: list[PreferencePair]) -> EncodedPairs:
    """Encode chosen and rejected of every pair; gather margins and per-objective targets and mask
    by the shared label rule (:mod:`rewardlab.objectives.labels`), logging unused labels once."""
    prompts = [p.prompt for p in pairs for _ in (0, 1)]
    responses = [r for p in pairs for r in (p.chosen, p.rejected)]
    critiques = [p.critiques.get(k) for p in pairs for k in ("chosen", "rejected")]
    seqs = rm.encode(prompts, responses, critiques if rm.cfg.critiques else None)
    margins = torch.tensor([p.margin or 0.0 for p in pairs])
    lt = label_targets(pairs, rm.cfg.objectives, rm.cfg.label_key)
    log_label_use(lt, rm.cfg.objectives, rm.cfg.label_key)
    return EncodedPairs(seqs, margins, lt.targets, lt.mask)


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Shuffled batches of pair indices with similar lengths (less padding), reshuffled per epoch.

    Pairs are shuffled, cut into mega-batches of ``group`` batches, each sorted by length and split
    into batches; the batch order is shuffled again. Deterministic given ``seed`` and epoch.
    """

    def __init__(self, data: EncodedPairs, batch_size: int, seed: int = 0, group: int = 50) -> None:
        self.data, self.batch_size, self.seed, self.group = data, batch_size, seed, group
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        idx = list(range(len(self.data)))
        rng.shuffle(idx)
        mega = self.batch_size * self.group
        out: list[list[int]] = []
        for s in range(0, len(idx), mega):
            chunk = sorted(idx[s : s + mega], key=self.data.pair_length, reverse=True)
            out += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(out)
        return out

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)


class PairCollator:
    """Pair indices → a batch: ``seq_ids`` (2B,), padded tensors (2B, T), margins (B,), targets (B, K),
    mask (B, K) bool (False: that objective has no label for the pair; no loss) and, under length
    debiasing, the length expert's offsets (B,)."""

    def __init__(self, data: EncodedPairs, pad_id: int) -> None:
        self.data, self.pad_id = data, pad_id

    def __call__(self, pair_ids: list[int]) -> dict:
        seq_ids = [2 * i for i in pair_ids] + [2 * i + 1 for i in pair_ids]  # chosen, then rejected
        batch = pad_batch([self.data.seqs[s] for s in seq_ids], self.pad_id)
        out = {
            "seq_ids": torch.tensor(seq_ids),
            "inputs": batch,
            "margins": self.data.margins[pair_ids],
            "targets": self.data.targets[pair_ids],
            "mask": self.data.mask[pair_ids],
        }
        if self.data.offsets is not None:
            out["offsets"] = self.data.offsets[pair_ids]
        return out
