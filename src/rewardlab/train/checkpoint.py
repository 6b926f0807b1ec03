"""Checkpoints: ``accelerate`` state (weights, optimizer, scheduler, RNG) + position + best state.

``OUT/checkpoint/`` holds what ``Accelerator.save_state`` writes, ``trainer_state.json``
(epoch, batch within the epoch, optimiser step, best score/epoch) and the best validated weights
(:mod:`rewardlab.train.best`). A run without an output directory keeps no checkpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

from rewardlab.train.best import BestState

log = logging.getLogger(__name__)
STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Where a run stands: ``batch`` micro-batches done in epoch ``epoch``, ``step`` optimiser steps."""

    epoch: int = 0
    batch: int = 0
    step: int = 0

    def reached(self, max_steps: int) -> bool:
        """True once ``max_steps`` (> 0) optimiser steps are done."""
        return bool(max_steps) and self.step >= max_steps


class Checkpointer:
    """Saves and restores ``folder`` (``None``: no checkpoints, e.g. in-memory ensemble members)."""

    def __init__(self, acc: Accelerator, folder: Path | None) -> None:
        self.acc, self.folder = acc, folder

    def save(self, state: TrainerState, best: BestState) -> None:
        """Write a checkpoint (every process takes part; the main one writes the shared files)."""
        if self.folder is None:
            return
        self.acc.save_state(str(self.folder))
        if self.acc.is_main_process:
            best.save(self.folder)
            row = {**asdict(state), "best": best.meta()}
            (self.folder / STATE_FILE).write_text(json.dumps(row))
        self.acc.wait_for_everyone()

    def load(self, best: BestState) -> TrainerState:
        """The saved position, with weights, optimizer, scheduler, RNG and ``best`` restored; a
        fresh state when there is no checkpoint yet."""
        if self.folder is None or not (self.folder / STATE_FILE).exists():
            return TrainerState()
        self.acc.load_state(str(self.folder))
        row = json.loads((self.folder / STATE_FILE).read_text())
        best.load(self.folder, row.get("best"), self.acc.device)
        state = TrainerState(row["epoch"], row["batch"], row["step"])
        log.info("resumed from %s at epoch %d batch %d (step %d)", self.folder, *asdict(state).values())
        return state
