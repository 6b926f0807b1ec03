"""One epoch of Bradley-Terry training, the end-of-epoch validation, and the metrics log.

Per micro-batch: B pairs flattened to (2B, T) (chosen rows, then rejected) go through the prepared
:class:`TrainForward` (DDP-wrapped under several processes); rewards (2B, K) split into r_c, r_r
(B, K) feed :func:`bradley_terry_loss`. When accelerate syncs (every ``grad_accum`` micro-batches)
one optimiser step is logged with the loss and accuracy averaged over its micro-batches and over
all processes — the loss of the global batch.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from rewardlab.models.modes import eval_mode
from rewardlab.objectives import label_agreement
from rewardlab.train.batching import EncodedPairs, LengthGroupedBatches, PairCollator
from rewardlab.train.best import BestState
from rewardlab.train.checkpoint import Checkpointer, TrainerState
from rewardlab.train.config import TrainConfig
from rewardlab.train.forward import TrainForward
from rewardlab.train.losses import bradley_terry_loss

log = logging.getLogger(__name__)


class MetricsLog:
    """Rows to ``OUT/train_log.jsonl`` (main process; nowhere when ``path`` is None) and TensorBoard."""

    def __init__(self, acc: Accelerator, path: Path | None, tensorboard: bool) -> None:
        self.acc, self.tensorboard = acc, tensorboard
        self.path = path if acc.is_main_process else None

    def write(self, row: dict, step: int | None = None) -> None:
        """Append ``row``; also to TensorBoard at ``step`` when given."""
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        if self.tensorboard and step is not None:
            self.acc.log(row, step=step)


@dataclass
class Run:
    """Everything one training run works with (built by :func:`rewardlab.train.trainer.train`)."""

    acc: Accelerator
    cfg: TrainConfig
    model: torch.nn.Module  # the prepared TrainForward (DDP-wrapped under several processes)
    fwd: TrainForward  # the same module, unwrapped
    opt: torch.optim.Optimizer
    sched: object
    loader: torch.utils.data.DataLoader  # prepared
    sampler: LengthGroupedBatches  # the loader's own batch sampler, whatever accelerate wraps it in
    params: list[torch.nn.Parameter]
    metrics: MetricsLog
    ckpt: Checkpointer
    best: BestState
    bar: tqdm | None = None
    seen: int = 0  # pairs trained on, all processes
    started: float = field(default_factory=time.perf_counter)  # wall clock at the start of the run


def _micro_step(run: Run, batch: dict) -> torch.Tensor:
    """Forward and backward of one micro-batch (the optimiser steps when accelerate syncs);
    returns [loss, accuracy on objective 0], detached."""
    acc, cfg = run.acc, run.cfg
    with acc.accumulate(run.model):
        r = run.model(**run.fwd.inputs(batch, acc.device))  # (2B, K)
        rc, rr = r.chunk(2)  # (B, K) each
        margin = batch["margins"].to(r.device) if cfg.use_margin else None
        if "offsets" in batch:  # product of experts: logit r_c − r_r + o (o = a_g·Δℓ), i.e. m − o
            o = batch["offsets"].to(r.device)
            margin = -o if margin is None else margin - o
        mask = batch["mask"].to(r.device) if "mask" in batch else None
        loss = bradley_terry_loss(rc, rr, margin, batch["targets"].to(r.device), mask=mask)
        acc.backward(loss)
        if acc.sync_gradients and cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(run.params, cfg.max_grad_norm)
        run.opt.step()
        run.sched.step()
        run.opt.zero_grad()
    return torch.stack([loss.detach(), (rc[:, 0] > rr[:, 0]).float().mean()]).float()


def _epoch_loader(run: Run, state: TrainerState):
    """The loader for ``state.epoch`` (its shuffle), skipping the ``state.batch`` batches done.
    The epoch is set on the sampler itself: under several processes accelerate wraps it in a
    ``BatchSamplerShard`` and ``loader.set_epoch`` would not reach it (same order every epoch)."""
    run.sampler.set_epoch(state.epoch)
    run.loader.set_epoch(state.epoch)
    if not state.batch:
        return run.loader
    loader = run.acc.skip_first_batches(run.loader, state.batch)
    loader.set_epoch(state.epoch)
    return loader


def train_epoch(run: Run, state: TrainerState) -> None:
    """Train from ``state.batch`` to the end of epoch ``state.epoch``, or until ``max_steps``
    optimiser steps; ``state`` advances with every micro-batch. Checkpoints every ``save_steps``."""
    cfg, acc = run.cfg, run.acc
    window: list[torch.Tensor] = []  # [loss, accuracy] of the micro-batches of this step
    for batch in _epoch_loader(run, state):
        window.append(_micro_step(run, batch))
        state.batch += 1
        run.seen += len(batch["targets"]) * acc.num_processes
        if run.bar is not None:
            run.bar.update(1)
        if not acc.sync_gradients:
            continue
        state.step += 1
        loss, accuracy = acc.reduce(torch.stack(window).mean(0).to(acc.device), "mean").tolist()
        window = []
        row = {"step": state.step, "epoch": state.epoch, "loss": loss, "accuracy": accuracy}
        row["lr"] = run.sched.get_last_lr()[0]
        if run.bar is not None:
            run.bar.set_postfix(loss=f"{loss:.3f}")
        run.metrics.write(row, step=state.step)
        if cfg.save_steps and state.step % cfg.save_steps == 0:
            run.ckpt.save(state, run.best)
        if state.reached(cfg.max_steps):
            return


@torch.no_grad()
def validate(run: Run, data: EncodedPairs, offset: int) -> dict:
    """Accuracy (ties wrong) and mean BT loss on held-out pairs under the label rule: over every
    objective a pair trains (its mask), against its label (as ``evaluate`` judges objectives);
    sequence ids start at ``offset`` in the trunk cache (after the training sequences)."""
    collate = PairCollator(data, run.fwd.rm.tokenizer.pad_token_id)
    counts, loss = torch.zeros(2), 0.0
    with eval_mode(run.fwd):
        for start in range(0, len(data), 32):
            b = collate(list(range(start, min(start + 32, len(data)))))
            r = run.fwd(**run.fwd.inputs(b, run.acc.device, offset)).float().cpu()  # (2b, K)
            rc, rr = r.chunk(2)
            right = label_agreement(rc, rr, b["targets"], b["mask"])  # (b, K)
            counts += torch.stack([right.sum(), b["mask"].sum()])
            loss += float(bradley_terry_loss(rc, rr, None, b["targets"], b["mask"])) * len(rc)
    return {"val_accuracy": float(counts[0] / counts[1].clamp_min(1)), "val_loss": loss / len(data)}


def end_epoch(run: Run, state: TrainerState, val: EncodedPairs | None, offset: int) -> dict:
    """Close epoch ``state.epoch``: validate, offer the weights to select-best, move ``state`` to
    the next epoch and checkpoint. Returns the epoch's row."""
    row: dict = {"epoch": state.epoch, "step": state.step}
    row["seconds"] = time.perf_counter() - run.started  # wall time since the run began
    if val is not None:
        row.update(validate(run, val, offset))
        if run.cfg.select_best:
            run.best.offer(row["val_accuracy"], state.epoch, run.fwd.rm)
    state.epoch, state.batch = state.epoch + 1, 0
    run.metrics.write(row)
    log.info("epoch %d: %s", row["epoch"], {k: round(v, 4) for k, v in row.items()})
    run.ckpt.save(state, run.best)
    return row
