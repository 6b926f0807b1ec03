"""Bradley-Terry training loop: runs unchanged under ``accelerate launch``.

Per step: a batch of B pairs is flattened to (2B, T) (chosen rows, then rejected), rewards (2B, K)
are split into r_c, r_r (B, K) and fed to :func:`bradley_terry_loss`. With a frozen trunk the
lower layers run once per sequence (first epoch) and are served from :class:`TrunkCache` after.
Checkpoints (``accelerate`` state + position) go to ``OUT/checkpoint``; metrics to
``OUT/train_log.jsonl``.
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
from rewardlab.models.fast_top import cls_top_rewards, supports_cls_top
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache
from rewardlab.train.batching import EncodedPairs, LengthGroupedBatches, PairCollator, encode_pairs
from rewardlab.train.config import TrainConfig
from rewardlab.train.losses import bradley_terry_loss

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced."""

    model: RewardModel
    steps: int
    seconds: float
    pairs_per_second: float
    history: list[dict] = field(default_factory=list)


class _Run:
    """State of one training run (kept small: the loop lives in :func:`train`)."""

    def __init__(self, rm: RewardModel, cfg: TrainConfig, out: Path, acc: Accelerator) -> None:
        self.rm, self.cfg, self.out, self.acc = rm, cfg, out, acc
        self.trunk = TrunkCache(rm, rm.trunk_split if cfg.cache_trunk else 0)
        self.fast_top = self.trunk.active and supports_cls_top(rm)
        self.log_file = out / "train_log.jsonl" if acc.is_main_process else None

    def rewards(self, batch: dict, seq_offset: int = 0) -> torch.Tensor:
        """Rewards (2B, K) for a collated batch, through the trunk cache when active."""
        inputs = {k: v.to(self.acc.device) for k, v in batch["inputs"].items()}
        if not self.trunk.active:
            return self.rm(**inputs)
        ids = [seq_offset + int(i) for i in batch["seq_ids"]]
        self.trunk.fill(ids, inputs)
        states = self.trunk.padded(ids, inputs["input_ids"].shape[1]).to(self.acc.device)
        if self.fast_top:
            return cls_top_rewards(self.rm, states, inputs["attention_mask"])
        with self.trunk.injected(states):
            return self.rm(**inputs)

    def write(self, row: dict) -> None:
        if self.log_file is not None:
            with open(self.log_file, "a") as f:
                f.write(json.dumps(row) + "\n")

    @torch.no_grad()
    def validate(self, data: EncodedPairs, offset: int) -> dict:
        """Accuracy (ties wrong) and mean BT loss on held-out pairs."""
        self.rm.eval()
        collate = PairCollator(data, self.rm.tokenizer.pad_token_id)
        correct, losses = 0, []
        for start in range(0, len(data), 32):
            b = collate(list(range(start, min(start + 32, len(data)))))
            r = self.rewards(b, offset).float().cpu()
            rc, rr = r.chunk(2)
            correct += int((rc[:, 0] > rr[:, 0]).sum())
            losses.append(float(bradley_terry_loss(rc, rr)) * len(rc))
        self.rm.train()
        return {"val_accuracy": correct / len(data), "val_loss": sum(losses) / len(data)}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.rm.named_parameters() if v.requires_grad}


def _checkpoint(run: _Run, state: dict) -> None:
    ckpt = run.out / "checkpoint"
    run.acc.save_state(str(ckpt))
    if run.acc.is_main_process:
        (ckpt / "trainer_state.json").write_text(json.dumps(state))


def train(
    pairs: list[PreferencePair],
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    out: str | Path = "runs/rm",
    validation: list[PreferencePair] | None = None,
    rm: RewardModel | None = None,
    trunk_store: dict | None = None,
) -> TrainResult:
    """Train a reward model on ``pairs`` with the Bradley-Terry loss and save it to ``out``.

    Returns the trained model (best validation epoch when ``validation`` is given and
    ``select_best``) and throughput. ``resume=True`` continues from ``out/checkpoint``.
    ``trunk_store`` shares frozen-trunk outputs between runs over the same ``pairs`` (and
    ``validation``) on the same backbone — sweeps and ensemble members pay for the trunk once.
    """
    model_cfg, cfg = model_cfg or ModelConfig(), train_cfg or TrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    acc = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        log_with="tensorboard" if cfg.tensorboard else None,
        project_dir=str(out / "tb"),
    )
    rm = rm or RewardModel.build(model_cfg)
    data = encode_pairs(rm, pairs)
    val = encode_pairs(rm, validation) if validation else None
    sampler = LengthGroupedBatches(data, cfg.batch_size, cfg.seed)
    loader = torch.utils.data.DataLoader(
        list(range(len(data))),
        batch_sampler=sampler,
        collate_fn=PairCollator(data, rm.tokenizer.pad_token_id),
    )
    params = [p for p in rm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = math.ceil(len(loader) / cfg.grad_accum) * cfg.epochs
    warm = int(total * cfg.warmup_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(warm, 1)) * max(0.0, (total - s) / max(total - warm, 1))
    )
    rm, opt, loader, sched = acc.prepare(rm, opt, loader, sched)
    run = _Run(acc.unwrap_model(rm), cfg, out, acc)
    if trunk_store is not None:
        run.trunk.store = trunk_store
    if cfg.tensorboard:
        acc.init_trackers("rewardlab")

    state = {"epoch": 0, "batch": 0, "step": 0, "best": -1.0}
    ckpt = out / "checkpoint"
    if cfg.resume and (ckpt / "trainer_state.json").exists():
        acc.load_state(str(ckpt))
        state = json.loads((ckpt / "trainer_state.json").read_text())
        log.info("resumed from %s at epoch %d batch %d", ckpt, state["epoch"], state["batch"])
    best = run.trainable_state()
    history: list[dict] = []
    t0, seen = time.perf_counter(), 0
    bar = tqdm(
        total=len(loader) * cfg.epochs,
        initial=state["epoch"] * len(loader) + state["batch"],
        disable=not (cfg.progress and acc.is_local_main_process),
        desc="train",
        unit="batch",
    )
    rm.train()
    try:
        for epoch in range(state["epoch"], cfg.epochs):
            loader.set_epoch(epoch)  # accelerate's loader drives the sampler's epoch (shuffle seed)
            epoch_loader = loader
            if state["batch"]:
                epoch_loader = acc.skip_first_batches(loader, state["batch"])
                epoch_loader.set_epoch(epoch)
            for batch in epoch_loader:
                with acc.accumulate(rm):
                    r = run.rewards(batch)  # (2B, K)
                    rc, rr = r.chunk(2)  # (B, K) each
                    margin = batch["margins"].to(r.device) if cfg.use_margin else None
                    loss = bradley_terry_loss(rc, rr, margin, batch["targets"].to(r.device))
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm > 0:
                        acc.clip_grad_norm_(params, cfg.max_grad_norm)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                state["batch"] += 1
                seen += len(rc) * acc.num_processes
                bar.update(1)
                if acc.sync_gradients:
                    state["step"] += 1
                    row = {
                        "step": state["step"],
                        "epoch": epoch,
                        "loss": loss.item(),
                        "accuracy": float((rc[:, 0] > rr[:, 0]).float().mean()),
                        "lr": sched.get_last_lr()[0],
                    }
                    bar.set_postfix(loss=f"{row['loss']:.3f}")
                    run.write(row)
                    if cfg.tensorboard:
                        acc.log(row, step=state["step"])
                    if cfg.save_steps and state["step"] % cfg.save_steps == 0:
                        _checkpoint(run, state)
                    if cfg.max_steps and state["step"] >= cfg.max_steps:
                        break
            if cfg.max_steps and state["step"] >= cfg.max_steps and state["batch"] < len(loader):
                _checkpoint(run, state)
                log.info("stopped at max_steps=%d; rerun with --resume to continue", cfg.max_steps)
                break
            state = {**state, "epoch": epoch + 1, "batch": 0}
            row = {"epoch": epoch, "step": state["step"]}
            if val is not None:
                row.update(run.validate(val, offset=2 * len(data)))
                if row["val_accuracy"] > state["best"]:
                    state["best"], best = row["val_accuracy"], run.trainable_state()
            history.append(row)
            run.write(row)
            log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items()})
            _checkpoint(run, state)
    except KeyboardInterrupt:
        _checkpoint(run, state)
        log.warning("interrupted: checkpoint saved to %s; rerun with --resume to continue", ckpt)
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    model = run.rm
    if val is not None and cfg.select_best:
        model.load_state_dict(best, strict=False)
    acc.wait_for_everyone()
    if acc.is_main_process:
        model.save(out)
        (out / "train_config.json").write_text(json.dumps({"train": asdict(cfg)}, indent=2))
    acc.end_training()
    return TrainResult(model, state["step"], seconds, seen / max(seconds, 1e-9), history)
