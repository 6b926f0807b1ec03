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

from rewardlab.bayes.config import EnsembleConfig
from rewardlab.bayes.function import trunk_states
from rewardlab.bayes.laplace import encode_sides, model_dir, token_batches
from rewardlab.bayes.uncertainty import PreferencePrediction
from rewardlab.data.schema import PreferencePair, Prompt
from rewardlab.models.backbone import head_names
from rewardlab.models.config import ModelConfig
from rewardlab.models.modes import eval_mode
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache
from rewardlab.train.config import TrainConfig
from rewardlab.train.forward import TrainForward
from rewardlab.train.trainer import train

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
        out = torch.empty(len(self.members), len(seqs), rm.cfg.num_objectives)
        fwd = TrainForward(rm)  # same top-only forward as training (trunk injection or [CLS]-only)
        with eval_mode(rm):
            for idx in token_batches([len(s["input_ids"]) for s in seqs], batch_tokens):
                batch = rm.collate([seqs[i] for i in idx])
                states = trunk_states(rm, batch)  # (n, T, H) or None
                for m in range(len(self.members)):
                    self._use(m)
                    out[m, idx] = fwd(**batch, states=states).float().cpu()
        return out

    def predict(
        self, prompts: list[Prompt], responses: list[str], critiques: list[str | None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance across members, each (N, K) (critiques for a critique RM)."""
        r = self.member_rewards(self.rm.encode(prompts, responses, critiques))  # (M, N, K)
        return r.mean(0), r.var(0, unbiased=False)

    def preference_pairs(self, pairs: list[PreferencePair], objective: int = 0) -> PreferencePrediction:
        """P(chosen ≻ rejected) averaged over members; mean/variance of Δ across members and the
        responses' own variance across members, (v_c + v_r) / 2."""
        chosen, rejected = encode_sides(self.rm, pairs)  # with critiques for a critique RM
        r = self.member_rewards(chosen + rejected)
        rc, rr = r[:, : len(pairs), objective], r[:, len(pairs) :, objective]  # (M, N)
        delta = (rc - rr).double()
        rvar = ((rc.var(0, unbiased=False) + rr.var(0, unbiased=False)) / 2).double()  # (N,)
        return PreferencePrediction(
            torch.sigmoid(delta).mean(0), delta.mean(0), delta.var(0, unbiased=False), rvar
        )

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
    rm: RewardModel,
    pairs: list[PreferencePair],
    store: dict,
    cfg: EnsembleConfig,
    seed: int,
    start: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """One member: the shared ``start`` weights (so no member starts from another's pooler), fresh
    LoRA and head (:func:`reinit_member`), then the one trainer (:func:`train`: margins, accelerate,
    trunk cache and fast top) in memory, with this member's seed for init and data order."""
    with torch.no_grad():
        for name, p in _trainable(rm).items():
            p.copy_(start[name])
    reinit_member(rm, seed)
    tcfg = TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=seed,
        save_steps=0,
        select_best=False,
        progress=cfg.progress,
    )
    train(pairs, rm.cfg, tcfg, out=None, rm=rm, trunk_store=store)
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
    trunk = TrunkCache(rm, rm.trunk_split)  # its store is shared by every member's training run
    t0 = time.perf_counter()
    start = {n: p.detach().clone() for n, p in _trainable(rm).items()}
    members = [_train_member(rm, pairs, trunk.store, cfg, cfg.seed + m, start) for m in range(cfg.members)]
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
