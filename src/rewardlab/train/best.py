"""Select-best: the best validated weights so far, kept in memory and with the checkpoint.

Only weights that were validated are ever kept: the tracker starts empty (``score is None``) and
takes a state only through :meth:`BestState.offer` after a validation. It saves the trainable
weights to ``CHECKPOINT/best_weights.safetensors`` and its score/epoch into the trainer state, so
``--resume`` continues comparing against, and can return, the true best epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)
BEST_FILE = "best_weights.safetensors"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters that train."""
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


class BestState:
    """Best validation accuracy so far, its epoch and the trainable weights it was measured on."""

    def __init__(self) -> None:
        self.score: float | None = None
        self.epoch: int | None = None
        self.weights: dict[str, torch.Tensor] | None = None
        self._unsaved = False

    def offer(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Keep ``model``'s weights if ``score`` (just validated) beats the best; True if kept."""
        if self.score is not None and score <= self.score:
            return False
        self.score, self.epoch, self.weights = score, epoch, trainable_state(model)
        self._unsaved = True
        return True

    def meta(self) -> dict | None:
        """What the trainer state records (``None``: nothing validated yet)."""
        return None if self.score is None else {"score": self.score, "epoch": self.epoch}

    def save(self, folder: Path) -> None:
        """Write the weights beside the checkpoint (only when changed since the last save)."""
        from safetensors.torch import save_file

        if self.weights is not None and (self._unsaved or not (folder / BEST_FILE).exists()):
            save_file({k: v.contiguous() for k, v in self.weights.items()}, str(folder / BEST_FILE))
            self._unsaved = False

    def load(self, folder: Path, meta: object, device: torch.device) -> None:
        """Restore from a checkpoint's ``meta`` and weights file; without both, start empty."""
        from safetensors.torch import load_file

        if not isinstance(meta, dict) or not (folder / BEST_FILE).exists():
            if isinstance(meta, (int, float)) and meta >= 0:  # checkpoints before the weights file
                log.warning("%s: the best epoch's weights were not saved; select-best restarts", folder)
            return
        self.score, self.epoch = float(meta["score"]), int(meta["epoch"])
        self.weights = load_file(str(folder / BEST_FILE), device=str(device))

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Copy the best weights into ``model`` (which must have been validated at least once)."""
        if self.weights is None:
            raise RuntimeError("no validated weights to restore")
        params = dict(model.named_parameters())
        for name, value in self.weights.items():
            params[name].copy_(value)
