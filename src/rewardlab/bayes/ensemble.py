"""LoRA ensembles: K members (LoRA weights + head) on ONE frozen backbone, sharing the trunk.

Member m is trained from its own initialisation and data order (seed + m) with the Bradley-Terry
loss. All members share the frozen lower layers, whose outputs are computed once per sequence
(:class:`TrunkCache`) and reused by every member and epoch; at prediction the trunk runs once per
batch and only the top layers run per member. The predictive over members m = 1..K is

    mean r̄ = (1/K) Σ_m r_m,   var = (1/K) Σ_m (r_m − r̄)²,
    P(chosen ≻ rejected) = (1/K) Σ_m σ(Δ_m),   Δ_m = r_m(x, y_c) − r_m(x, y_r).

Saved beside the model as ``<model dir>/ensemble/member_<m>.safetensors`` + ``ensemble.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rewardlab.bayes.config import EnsembleConfig
from rewardlab.bayes.function import trunk_states
from rewardlab.bayes.laplace import model_dir, token_batches
from rewardlab.bayes.uncertainty import PreferencePrediction
from rewardlab.data.schema import PreferencePair, Prompt
from rewardlab.models.backbone import head_names
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache
from rewardlab.train.batching import LengthGroupedBatches, PairCollator, encode_pairs
from rewardlab.train.losses import bradley_terry_loss

log = logging.getLogger(__name__)
ENSEMBLE_DIR = "ensemble"


def _trainable(rm: RewardModel) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in rm.named_parameters() if p.requires_grad}


def reinit_member(rm: RewardModel, seed: int) -> None:
    """Fresh LoRA weights (peft's init: A random, B = 0) and a fresh reward head for a member."""
    torch.manual_seed(seed)
    finals = [h for h in head_names(rm.hf_model) if h != "pooler"]
    for name, module in rm.named_modules():
        if hasattr(module, "reset_lora_parameters") and hasattr(module, "lora_A"):
            for adapter in module.lora_A:
                module.reset_lora_parameters(adapter, True)
        elif (
            isinstance(module, torch.nn.Linear)
            and module.weight.requires_grad
            and any(h in name.split(".") for h in finals)
        ):
            torch.nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


class Ensemble:
    """K members as state dicts of the trainable weights, swapped into one shared model."""

    def __init__(self, rm: RewardModel, members: list[dict[str, torch.Tensor]], cfg: EnsembleConfig) -> None:
        self.rm, self.members, self.cfg = rm, members, cfg

    @torch.no_grad()
    def _use(self, m: int) -> None:
        params = _trainable(self.rm)
        for name, value in self.members[m].items():
            params[name].copy_(value)

    @torch.no_grad()
    def member_rewards(self, seqs: list[dict[str, list[int]]], batch_tokens: int = 8192) -> torch.Tensor:
        """Rewards of every member, (M, N, K): the trunk runs once per batch, the top per member."""
        rm = self.rm
        was = rm.training
        rm.eval()
        out = torch.empty(len(self.members), len(seqs), rm.cfg.num_objectives)
        trunk = TrunkCache(rm, rm.trunk_split)
        for idx in token_batches([len(s["input_ids"]) for s in seqs], batch_tokens):
            batch = rm.collate([seqs[i] for i in idx])
            states = trunk_states(rm, batch)  # (n, T, H) or None
            for m in range(len(self.members)):
                self._use(m)
                if states is None:
                    out[m, idx] = rm(**batch).float().cpu()
                else:
                    with trunk.injected(states):
                        out[m, idx] = rm(**batch).float().cpu()
        rm.train(was)
        return out

    def predict(self, prompts: list[Prompt], responses: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance across members, each (N, K)."""
        r = self.member_rewards(self.rm.encode(prompts, responses))  # (M, N, K)
        return r.mean(0), r.var(0, unbiased=False)

    def preference_pairs(self, pairs: list[PreferencePair], objective: int = 0) -> PreferencePrediction:
        """P(chosen ≻ rejected) averaged over members; mean/variance of Δ across members."""
        prompts = [p.prompt for p in pairs] * 2
        r = self.member_rewards(
            self.rm.encode(prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs])
        )
        rc, rr = r[:, : len(pairs), objective], r[:, len(pairs) :, objective]  # (M, N)
        delta = (rc - rr).double()
        return PreferencePrediction(torch.sigmoid(delta).mean(0), delta.mean(0), delta.var(0, unbiased=False))

    def save(self, path: str | Path) -> Path:
        """Write the members to ``<model dir>/ensemble/``."""
        from safetensors.torch import save_file

        out = model_dir(path) / ENSEMBLE_DIR
        out.mkdir(parents=True, exist_ok=True)
        for m, state in enumerate(self.members):
            save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"member_{m}.safetensors"))
        (out / "ensemble.json").write_text(
            json.dumps({"config": asdict(self.cfg), "members": len(self.members)}, indent=2)
        )
        return out


def _train_member(
    rm: RewardModel, data, trunk: TrunkCache, cfg: EnsembleConfig, seed: int
) -> dict[str, torch.Tensor]:
    """One member: fresh init, AdamW with linear warm-up/decay, BT loss on the cached trunk."""
    reinit_member(rm, seed)
    params = list(_trainable(rm).values())
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    sampler = LengthGroupedBatches(data, cfg.batch_size, seed)
    collate = PairCollator(data, rm.tokenizer.pad_token_id)
    total = len(sampler) * cfg.epochs
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / total)
    )
    rm.train()
    bar = tqdm(total=total, desc=f"member {seed - cfg.seed}", unit="batch", disable=not cfg.progress)
    for epoch in range(cfg.epochs):
        sampler.set_epoch(epoch)
        for pair_ids in sampler:
            b = collate(pair_ids)
            inputs = {k: v.to(rm.device) for k, v in b["inputs"].items()}
            ids = [int(i) for i in b["seq_ids"]]
            if trunk.active:
                trunk.fill(ids, inputs)
                with trunk.injected(trunk.padded(ids, inputs["input_ids"].shape[1]).to(rm.device)):
                    r = rm(**inputs)  # (2B, K)
            else:
                r = rm(**inputs)
            rc, rr = r.chunk(2)  # (B, K) each
            loss = bradley_terry_loss(rc, rr, targets=b["targets"].to(r.device), mask=b["mask"].to(r.device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    rm.eval()
    return {n: p.detach().clone() for n, p in _trainable(rm).items()}


def train_ensemble(
    pairs: list[PreferencePair],
    cfg: EnsembleConfig | None = None,
    model_cfg: ModelConfig | None = None,
    rm: RewardModel | None = None,
) -> Ensemble:
    """Train ``cfg.members`` LoRA members on ``pairs`` over one frozen backbone (built from
    ``model_cfg``, or ``rm``'s own backbone, whose trainable weights are then re-initialised)."""
    cfg = cfg or EnsembleConfig()
    rm = rm or RewardModel.build(model_cfg or ModelConfig())
    if not _trainable(rm):
        raise ValueError("the reward model has no trainable weights (load it with adapter=True)")
    data = encode_pairs(rm, pairs)
    trunk = TrunkCache(rm, rm.trunk_split)
    t0 = time.perf_counter()
    members = [_train_member(rm, data, trunk, cfg, cfg.seed + m) for m in range(cfg.members)]
    log.info(
        "ensemble of %d members trained on %d pairs in %.0fs (trunk cache %.0f MB)",
        cfg.members,
        len(pairs),
        time.perf_counter() - t0,
        trunk.nbytes() / 2**20,
    )
    ens = Ensemble(rm, members, cfg)
    ens._use(0)
    return ens


def load_ensemble(path: str | Path, rm: RewardModel | None = None) -> Ensemble | None:
    """The ensemble saved beside a model, or ``None`` when it has none."""
    from safetensors.torch import load_file

    folder = model_dir(path) / ENSEMBLE_DIR
    if not (folder / "ensemble.json").exists():
        return None
    meta = json.loads((folder / "ensemble.json").read_text())
    rm = rm or RewardModel.load(model_dir(path), adapter=True)
    device = str(rm.device)
    members = [
        load_file(str(folder / f"member_{m}.safetensors"), device=device) for m in range(meta["members"])
    ]
    names = set(_trainable(rm))
    if any(set(s) != names for s in members):
        raise ValueError(f"{folder}: the members' weights do not match the model's trainable weights")
    return Ensemble(rm, members, EnsembleConfig(**meta["config"]))
