"""Bradley-Terry training: runs unchanged under ``accelerate launch`` (data-parallel: every forward
goes through the prepared, DDP-wrapped :class:`TrainForward`).

:func:`train` sets up, loops over epochs (:mod:`rewardlab.train.loop`), checkpoints with the best
validated state (:mod:`rewardlab.train.checkpoint`, :mod:`rewardlab.train.best`) and saves the
model. With a frozen trunk the lower layers run once per sequence (first epoch) and are served from
:class:`TrunkCache` after. Checkpoints go to ``OUT/checkpoint``; metrics to ``OUT/train_log.jsonl``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from rewardlab.data.schema import PreferencePair
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.batching import EncodedPairs, LengthGroupedBatches, PairCollator, encode_pairs
from rewardlab.train.best import BestState
from rewardlab.train.checkpoint import Checkpointer, TrainerState
from rewardlab.train.config import TrainConfig
from rewardlab.train.forward import TrainForward
from rewardlab.train.length_bias import LengthDebias, balance_by_length, length_offsets
from rewardlab.train.loop import MetricsLog, Run, end_epoch, train_epoch

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced."""

    model: RewardModel
    steps: int
    seconds: float
    pairs_per_second: float
    history: list[dict] = field(default_factory=list)


def _schedule(
    opt: torch.optim.Optimizer, cfg: TrainConfig, batches: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then linear decay to 0 over all optimiser steps of one process's view of the
    unsharded loader (accelerate steps a prepared scheduler once per process per step)."""
    total = math.ceil(batches / cfg.grad_accum) * cfg.epochs
    warm = int(total * cfg.warmup_ratio)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(warm, 1)) * max(0.0, (total - s) / max(total - warm, 1))
    )


def _setup(
    acc: Accelerator,
    rm: RewardModel,
    data: EncodedPairs,
    cfg: TrainConfig,
    out: Path | None,
    store: dict | None,
) -> Run:
    """Forward module, loader, optimiser and schedule, prepared by accelerate."""
    fwd = TrainForward(rm, cfg.cache_trunk, store)
    sampler = LengthGroupedBatches(data, cfg.batch_size, cfg.seed)
    loader = torch.utils.data.DataLoader(
        list(range(len(data))),
        batch_sampler=sampler,
        collate_fn=PairCollator(data, rm.tokenizer.pad_token_id),
    )
    params = [p for p in rm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg, len(loader))
    model, opt, loader, sched = acc.prepare(fwd, opt, loader, sched)
    metrics = MetricsLog(acc, out / "train_log.jsonl" if out else None, cfg.tensorboard and out is not None)
    ckpt = Checkpointer(acc, out / "checkpoint" if out else None)
    return Run(acc, cfg, model, fwd, opt, sched, loader, sampler, params, metrics, ckpt, BestState())


def _epochs(run: Run, state: TrainerState, val: EncodedPairs | None, offset: int) -> list[dict]:
    """Train epochs from ``state`` until ``cfg.epochs`` or ``cfg.max_steps``; the epoch rows."""
    cfg, history = run.cfg, []
    run.model.train()
    try:
        while state.epoch < cfg.epochs and not state.reached(cfg.max_steps):
            train_epoch(run, state)
            if state.batch < len(run.loader):  # max_steps reached inside the epoch
                run.ckpt.save(state, run.best)
                log.info(
                    "stopped at max_steps=%d; rerun with --resume and more steps to continue", cfg.max_steps
                )
                break
            history.append(end_epoch(run, state, val, offset))
    except KeyboardInterrupt:
        run.ckpt.save(state, run.best)
        log.warning("interrupted: checkpoint saved to %s; rerun with --resume to continue", run.ckpt.folder)
        raise
    return history


def _finish(run: Run, val: EncodedPairs | None, out: Path | None) -> RewardModel:
    """Select-best (only ever validated weights), then save the model and config to ``out``."""
    rm, acc = run.fwd.rm, run.acc
    if val is not None and run.cfg.select_best:
        if run.best.weights is None:
            log.warning("select_best: no epoch was validated in this run; keeping the last weights")
        else:
            run.best.apply(rm)
            log.info("select_best: kept epoch %d (val_accuracy %.4f)", run.best.epoch, run.best.score)
    acc.wait_for_everyone()
    if out is not None and acc.is_main_process:
        rm.save(out)
        (out / "train_config.json").write_text(json.dumps({"train": asdict(run.cfg)}, indent=2))
    for tracker in acc.trackers:  # not acc.end_training(): it destroys the process group, and
        tracker.finish()  # train() may run again in this process (sweeps, ensemble members)
    return rm


def train(
    pairs: list[PreferencePair],
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    out: str | Path | None = "runs/rm",
    validation: list[PreferencePair] | None = None,
    rm: RewardModel | None = None,
    trunk_store: dict | None = None,
) -> TrainResult:
    """Train a reward model on ``pairs`` with the Bradley-Terry loss and save it to ``out``.

    Returns the trained model and throughput. With ``validation`` and ``select_best`` the model
    holds the best validated epoch's weights (kept in the checkpoint across ``--resume``); when no
    epoch was validated (``max_steps`` inside the first epoch) the last weights, with a warning.
    ``resume=True`` continues from ``out/checkpoint``. ``out=None`` keeps everything in memory
    (no log, checkpoint or saved model). ``rm`` trains a given model in place; ``trunk_store``
    shares frozen-trunk outputs between runs over the same ``pairs`` (and ``validation``) on the
    same backbone — sweeps and ensemble members pay for the trunk once (not with
    ``length_debias=balance``, which trains on a subset). ``length_debias`` removes the data's
    length preference (:mod:`rewardlab.train.length_bias`).
    """
    model_cfg, cfg = model_cfg or ModelConfig(), train_cfg or TrainConfig()
    out = Path(out) if out is not None else None
    if out is None and cfg.resume:
        raise ValueError("resume needs an output directory (out) holding a checkpoint")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    acc = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        log_with="tensorboard" if cfg.tensorboard and out else None,
        project_dir=str(out / "tb") if out else None,
    )
    rm = rm or RewardModel.build(model_cfg)
    if cfg.length_debias == LengthDebias.BALANCE:
        pairs = balance_by_length(pairs, cfg.seed)
    data = encode_pairs(rm, pairs)
    if cfg.length_debias == LengthDebias.POE:
        data.offsets = length_offsets(pairs)
    val = encode_pairs(rm, validation) if validation else None
    run = _setup(acc, rm, data, cfg, out, trunk_store)
    if cfg.tensorboard and out:
        acc.init_trackers("rewardlab")
    state = run.ckpt.load(run.best) if cfg.resume else TrainerState()
    run.bar = tqdm(
        total=len(run.loader) * cfg.epochs,
        initial=state.epoch * len(run.loader) + state.batch,
        disable=not (cfg.progress and acc.is_local_main_process),
        desc="train",
        unit="batch",
    )
    t0 = run.started = time.perf_counter()
    try:
        history = _epochs(run, state, val, offset=2 * len(data))
    finally:
        run.bar.close()
    seconds = time.perf_counter() - t0
    model = _finish(run, val, out)
    return TrainResult(model, state.step, seconds, run.seen / max(seconds, 1e-9), history)
