"""The reward model as a function f(x; θ) that laplace-torch can fit, and its Jacobians, cheaply.

:class:`RewardFunction` adapts a :class:`RewardModel` to laplace-torch: it takes one dict batch
(HF tensors plus the cached frozen-trunk ``states``) and returns

- pair mode, ``input_ids`` of shape (B, 2, T): logits (B, 2) = [r(x, y_c) − m, r(x, y_r)] of one
  objective (m: the optional ``margins`` (B,)), so softmax cross-entropy with label 0 is the
  Bradley-Terry NLL −log σ(r_c − r_r − m), and with target [t, 1 − t] its soft-label form;
- single mode, ``input_ids`` of shape (N, T): rewards (N, K).

When the trunk is every layer but the last and the model is a BERT-style encoder, both modes run
the exact [CLS]-only top (:func:`rewardlab.models.fast_top.cls_top_rewards`: keys/values for every
token, queries, attention output and MLP for [CLS] alone; same rewards and Jacobians as the full
top layer), so the predictive's Jacobians cost little more than scoring the mean. KFAC's input
factors then see only the positions that reach the reward (the full layer's non-[CLS] query, output
and MLP positions have zero gradient but used to enter the factors); the diagonal GGN is the same.

Only the top layers carry parameters with a posterior, so the frozen lower layers are run once
(:func:`trunk_states`) and injected; Jacobians then cost one forward + one backward of the top
layers. :func:`linear_jacobians` computes per-example Jacobians J = ∂f/∂θ of all rows in ONE
backward pass per output: for a linear layer z = W a + b applied at positions t of example n,
∂f_n/∂W = Σ_t g_{n,t} a_{n,t}ᵀ and ∂f_n/∂b = Σ_t g_{n,t}, with g = ∂(Σ_n f_n)/∂z (examples do not
interact in eval mode, so summing outputs before the backward pass separates exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import torch
from torch import nn

from rewardlab.models.backbone import head_names
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def select_params(rm: RewardModel, subset: str) -> list[str]:
    """Mark which parameters get a posterior (``requires_grad``) and return their names.

    ``lora``: every trainable parameter owned by an ``nn.Linear`` (LoRA A/B + head linears);
    ``lora_only``: the LoRA A/B matrices alone; ``last_layer``: only the final head linear
    (``classifier``/``score``). Everything else is frozen at its MAP value.
    """
    finals = [h for h in head_names(rm.hf_model) if h != "pooler"]
    chosen: list[str] = []
    for mname, module in rm.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            keep = p.requires_grad and isinstance(module, nn.Linear)
            if keep and subset == "last_layer":
                parts = full.split(".")
                keep = any(h in parts for h in finals)
            elif keep and subset == "lora_only":
                keep = "lora_" in full
            if p.requires_grad and not keep:
                p.requires_grad_(False)
            if keep:
                chosen.append(full)
    if not chosen:
        raise ValueError(
            "the reward model has no trainable linear weights: load it with "
            "RewardModel.load(dir, adapter=True) so its LoRA weights are parameters"
        )
    return chosen


def _pairs_to_rows(v: torch.Tensor) -> torch.Tensor:
    """(B, 2, ...) → (2B, ...): chosen rows first, then rejected (the rewardlab pair convention)."""
    return v.transpose(0, 1).reshape(-1, *v.shape[2:])


class RewardFunction(nn.Module):
    """f(x; θ) for laplace-torch over a reward model; see the module docstring for shapes."""

    def __init__(self, rm: RewardModel, objective: int = 0) -> None:
        super().__init__()
        from rewardlab.models.fast_top import supports_cls_top

        self.rm = rm
        self.objective = objective
        self.trunk = TrunkCache(rm, rm.trunk_split)
        self.cls_top = self.trunk.active and rm.fast_inference and supports_cls_top(rm, training=True)

    def forward(self, x: Mapping[str, Any]) -> torch.Tensor:
        pairs = x["input_ids"].dim() == 3
        inputs = {k: x[k] for k in INPUT_KEYS if k in x}
        states = x.get("states")
        if pairs:
            inputs = {k: _pairs_to_rows(v) for k, v in inputs.items()}  # (2B, T)
            states = _pairs_to_rows(states) if states is not None else None  # (2B, T, H)
        if states is not None and self.cls_top:
            from rewardlab.models.fast_top import cls_top_rewards

            r = cls_top_rewards(self.rm, states, inputs["attention_mask"])  # (R, K)
        elif states is not None and self.trunk.active:
            with self.trunk.injected(states):
                r = self.rm(**inputs)  # (R, K)
        else:
            r = self.rm(**inputs)
        if not pairs:
            return r  # (N, K)
        rc, rr = r[:, self.objective].chunk(2)  # (B,), (B,)
        if x.get("margins") is not None:
            rc = rc - x["margins"].to(rc)  # BT with margin: −log σ(r_c − r_r − m)
        return torch.stack([rc, rr], dim=1)  # (B, 2)


@torch.no_grad()
def trunk_states(rm: RewardModel, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Hidden states after the frozen layers for a right-padded batch (N, T) → (N, T, H)."""
    split = rm.trunk_split
    if split == 0:
        return None
    cache = TrunkCache(rm, split)
    ids = list(range(batch["input_ids"].shape[0]))
    cache.fill(ids, batch)
    return cache.padded(ids, batch["input_ids"].shape[1]).to(rm.device)


def _owners(model: nn.Module, params: list[torch.Tensor]) -> list[tuple[nn.Module, str]] | None:
    """(module, "weight"|"bias") owning each parameter, or None if one is not in an nn.Linear."""
    where = {}
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            where[id(p)] = (module, pname)
    out = [where[id(p)] for p in params]
    return out if all(isinstance(m, nn.Linear) for m, _ in out) else None


def linear_jacobians(
    model: nn.Module, x: Any, params: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-example Jacobians (n, C, P) and outputs (n, C) of ``model(x)`` w.r.t. ``params``.

    Every parameter must sit in an ``nn.Linear`` (else ``None``: use a generic Jacobian). Rows of
    a linear layer's input map to examples as ``row % n`` (pair mode flattens (B, 2) → 2B rows).
    """
    owners = _owners(model, params)
    if owners is None:
        return None
    modules = list(dict.fromkeys(m for m, _ in owners))
    acts: dict[nn.Module, torch.Tensor] = {}
    outs: dict[nn.Module, torch.Tensor] = {}

    def hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        acts[m], outs[m] = inp[0].detach(), out

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.enable_grad():
            f = model(x)  # (n, C)
            n, c_out = f.shape
            z = [outs[m] for m in modules]
            blocks: list[list[torch.Tensor]] = []
            for c in range(c_out):
                grads = torch.autograd.grad(f[:, c].sum(), z, retain_graph=c < c_out - 1, allow_unused=True)
                g = {m: gr for m, gr in zip(modules, grads, strict=True)}
                blocks.append([_param_jac(m, kind, acts[m], g[m], n) for m, kind in owners])
    finally:
        for h in handles:
            h.remove()
    js = torch.stack([torch.cat(b, dim=1) for b in blocks], dim=1)  # (n, C, P)
    return js, f.detach()


def _param_jac(m: nn.Linear, kind: str, a: torch.Tensor, g: torch.Tensor | None, n: int) -> torch.Tensor:
    """Per-example ∂f/∂(weight|bias) of one linear layer, flattened: (n, numel)."""
    rows = a.shape[0]
    numel = m.weight.numel() if kind == "weight" else m.bias.numel()
    if g is None:
        return a.new_zeros(n, numel)
    g3 = g.reshape(rows, -1, g.shape[-1])  # (R, T, out)
    if kind == "weight":
        per_row = torch.einsum("rto,rti->roi", g3, a.reshape(rows, -1, a.shape[-1])).flatten(1)
    else:
        per_row = g3.sum(1)  # (R, out)
    if rows == n:
        return per_row
    out = per_row.new_zeros(n, per_row.shape[1])
    return out.index_add_(0, torch.arange(rows, device=a.device) % n, per_row)


@cache
def trunk_ggn() -> type:
    """The ``TrunkGGN`` backend class, built on first use: laplace-torch is an optional extra
    (``rewardlab[bayes]``), so importing this module (ensembles need it) must not import it."""
    from laplace.curvature import CurvlinopsGGN

    class TrunkGGN(CurvlinopsGGN):
        """laplace-torch's curvlinops GGN backend (KFAC via curvlinops) with fast Jacobians.

        Jacobians (used by the diagonal GGN and by the GLM predictive) come from
        :func:`linear_jacobians` (one backward pass per output) instead of ``torch.func.jacrev``
        (one per example and output); other parameters fall back to the parent's jacrev.
        """

        def jacobians(self, x: Any, enable_backprop: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
            fast = None if enable_backprop else linear_jacobians(self.model, x, self.params)
            return fast if fast is not None else super().jacobians(x, enable_backprop)

    return TrunkGGN


def __getattr__(name: str) -> Any:
    if name == "TrunkGGN":  # the class under its old name, still importable
        return trunk_ggn()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
