"""Laplace-LoRA for reward models (Yang et al. 2024, arXiv 2402.13210), on laplace-torch.

After MAP training, the posterior over the LoRA weights θ (and head) is approximated by a Gaussian
N(θ_MAP, Σ) with Σ⁻¹ = Σ_i J_iᵀ Λ_i J_i + λ I: the generalised Gauss-Newton of the Bradley-Terry
likelihood (a pair is a 2-logit softmax [r_c − m, r_r], m its margin, with label "chosen" — or,
for a soft label t = P(chosen ≻ rejected), the target [t, 1 − t]: laplace-torch's
``likelihood="reward_modeling"``), as KFAC (Kronecker factors per linear layer) or its diagonal,
plus the prior precision λ (tuned by marginal likelihood or on validation pairs). The data are
the trainer's (:func:`rewardlab.train.batching.encode_pairs`): critiques for a critique-conditioned
RM, margins, soft labels, and only the pairs whose labels judge the posterior's objective.
The Hessian of the softmax cross-entropy in the logits, diag(p) − ppᵀ, does not depend on the
target, so the GGN is exact for soft labels too; they change the loss (and the evidence).

Prediction is the linearised (GLM) predictive: r(x, y) ~ N(f(x, y; θ_MAP), J Σ Jᵀ) with
J = ∂f/∂θ. For a pair, Δ = r_c − r_r ~ N(μ_Δ, J_Δ Σ J_Δᵀ) with J_Δ = J_c − J_r, and
P(chosen ≻ rejected) ≈ σ(μ_Δ / √(1 + π v_Δ / 8)) (probit approximation).

Front door: :func:`fit_laplace` → :class:`Posterior`; ``Posterior.save(model_dir)`` writes
``model_dir/posterior/`` and :func:`load_posterior` reads it back.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from rewardlab.bayes.config import LaplaceConfig, PriorMethod
from rewardlab.bayes.function import RewardFunction, select_params, trunk_ggn, trunk_states
from rewardlab.bayes.uncertainty import PreferencePrediction, probit_preference
from rewardlab.bayes.variance import functional_variance, rotate
from rewardlab.data.schema import PreferencePair, Prompt
from rewardlab.models.reward_model import RewardModel, model_dir, pad_batch

log = logging.getLogger(__name__)
POSTERIOR_DIR = "posterior"


def token_batches(lengths: list[int], batch_tokens: int, max_batch: int = 64) -> Iterator[list[int]]:
    """Indices sorted by descending length, cut into batches of ≤ ``batch_tokens`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    i = 0
    while i < len(order):
        n = max(1, min(max_batch, batch_tokens // max(lengths[order[i]], 1)))
        yield order[i : i + n]
        i += n


def encode_sides(
    rm: RewardModel, pairs: list[PreferencePair]
) -> tuple[list[dict[str, list[int]]], list[dict[str, list[int]]]]:
    """Encoded chosen and rejected responses of ``pairs`` (with their critiques for a critique RM)."""
    prompts = [p.prompt for p in pairs]
    out = []
    for side in ("chosen", "rejected"):
        crit = [p.critiques.get(side) for p in pairs] if rm.cfg.critiques else None
        out.append(rm.encode(prompts, [getattr(p, side) for p in pairs], crit))
    return out[0], out[1]


class _PairLoader:
    """Pair batches for ``Laplace.fit``: dicts with (B, 2, T) tensors, (B, 2, T, H) trunk states,
    ``margins`` (B,) and ``labels``: class 0 (chosen) when every target is a hard 1, else the
    probabilities [t, 1 − t] (B, 2). Pairs whose labels leave ``objective`` out are not used.
    ``dataset`` only gives laplace-torch N. ``store``: frozen-trunk states shared with other runs
    over the same pairs (sequence ids 2i / 2i + 1 as in training), filled on first use."""

    def __init__(
        self,
        rm: RewardModel,
        pairs: list[PreferencePair],
        batch_size: int,
        objective: int = 0,
        store: dict | None = None,
    ) -> None:
        from rewardlab.models.trunk_cache import TrunkCache
        from rewardlab.train.batching import encode_pairs

        enc = encode_pairs(rm, pairs)
        keep = [i for i in range(len(enc)) if bool(enc.mask[i, objective])]
        self.keep = keep
        self.trunk = None
        if store is not None and rm.trunk_split > 0:
            self.trunk = TrunkCache(rm, rm.trunk_split)
            self.trunk.store = store
        self.rm = rm
        self.chosen = [enc.seqs[2 * i] for i in keep]
        self.rejected = [enc.seqs[2 * i + 1] for i in keep]
        self.margins = enc.margins[keep]  # (P,)
        self.targets = enc.targets[keep, objective]  # (P,)
        self.soft = bool((self.targets != 1).any())
        self.dataset = range(len(keep))
        lengths = [
            max(len(c["input_ids"]), len(r["input_ids"]))
            for c, r in zip(self.chosen, self.rejected, strict=True)
        ]
        order = sorted(self.dataset, key=lambda i: -lengths[i])
        self.batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def batch(self, idx: list[int]) -> dict[str, torch.Tensor]:
        b = len(idx)
        seqs = [self.chosen[i] for i in idx] + [self.rejected[i] for i in idx]
        flat = {k: v.to(self.rm.device) for k, v in pad_batch(seqs, self.rm.tokenizer.pad_token_id).items()}
        if self.trunk is None:
            states = trunk_states(self.rm, flat)  # (2B, T, H)
        else:
            ids = [2 * self.keep[i] for i in idx] + [2 * self.keep[i] + 1 for i in idx]
            self.trunk.fill(ids, flat)
            states = self.trunk.padded(ids, flat["input_ids"].shape[1]).to(self.rm.device)
        out = {k: v.view(2, b, *v.shape[1:]).transpose(0, 1) for k, v in flat.items()}  # (B, 2, T)
        if states is not None:
            out["states"] = states.view(2, b, *states.shape[1:]).transpose(0, 1)  # (B, 2, T, H)
        dev, dtype = self.rm.device, self.rm.hf_model.dtype
        out["margins"] = self.margins[idx].to(dev, dtype)
        if self.soft:
            t = self.targets[idx].to(dev, dtype)
            out["labels"] = torch.stack([t, 1 - t], dim=1)  # (B, 2) probabilities
        else:
            out["labels"] = torch.zeros(b, dtype=torch.long, device=dev)
        return out

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return (self.batch(idx) for idx in self.batches)


class Posterior:
    """A fitted Laplace posterior over a reward model: GLM predictive means and variances."""

    def __init__(self, rm: RewardModel, cfg: LaplaceConfig, la=None) -> None:
        from laplace import Laplace

        self.rm, self.cfg = rm, cfg
        objs = rm.cfg.objectives
        self.objective = objs.index(cfg.objective) if cfg.objective else 0
        self.param_names = select_params(rm, cfg.subset.value)
        self.fn = RewardFunction(rm, self.objective)
        self.la = la or Laplace(
            self.fn,
            "reward_modeling",
            subset_of_weights="all",
            hessian_structure=cfg.hessian.value,
            prior_precision=cfg.prior_precision,
            backend=trunk_ggn(),
        )
        self.tuning: dict = {}

    @property
    def prior_precision(self) -> list[float]:
        """The tuned prior precision λ (one value, or one per parameter tensor)."""
        return [float(v) for v in self.la.prior_precision.flatten()]

    @property
    def n_params(self) -> int:
        return int(self.la.n_params)

    # ---- prediction --------------------------------------------------------------------------
    def _jacobians(self, seqs: list[dict[str, list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Jacobians (n, K, P) and MAP rewards (n, K) of a padded batch, trunk served once."""
        batch = self.rm.collate(seqs)
        x = dict(batch)
        states = trunk_states(self.rm, batch)
        if states is not None:
            x["states"] = states
        self.fn.eval()
        return self.la.backend.jacobians(x)

    def predict_encoded(self, seqs: list[dict[str, list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """GLM predictive (mean, variance), each (N, K), for encoded responses."""
        k = self.rm.cfg.num_objectives
        mean, var = torch.empty(len(seqs), k), torch.empty(len(seqs), k)
        for idx in token_batches([len(s["input_ids"]) for s in seqs], self.cfg.batch_tokens):
            js, f = self._jacobians([seqs[i] for i in idx])  # (n, K, P), (n, K)
            mean[idx] = f.float().cpu()
            for j in range(k):  # the diagonal of J Σ Jᵀ, one output at a time
                var[idx, j] = functional_variance(self.la, js[:, j]).float().cpu()
        return mean, var.clamp_min(0)

    def predict(
        self, prompts: list[Prompt], responses: list[str], critiques: list[str | None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictive mean and variance of the reward, each (N, K) (critiques for a critique RM)."""
        return self.predict_encoded(self.rm.encode(prompts, responses, critiques))

    def delta_encoded(
        self, chosen: list[dict], rejected: list[dict], responses: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Mean and variance (N,) of Δ = r_c − r_r (objective ``self.objective``), with the
        chosen/rejected covariance: v_Δ = (J_c − J_r) Σ (J_c − J_r)ᵀ. ``responses=True`` adds
        the responses' own variance (v_c + v_r) / 2 = (v_Δ + v_{c+r}) / 4 (N,) from the same
        Jacobians (one more rotation)."""
        k, n = self.objective, len(chosen)
        mu, var, rvar = torch.empty(n), torch.empty(n), torch.empty(n)
        lengths = [
            2 * max(len(c["input_ids"]), len(r["input_ids"])) for c, r in zip(chosen, rejected, strict=True)
        ]
        for idx in token_batches(lengths, self.cfg.batch_tokens, max_batch=32):
            b = len(idx)
            js, f = self._jacobians([chosen[i] for i in idx] + [rejected[i] for i in idx])
            mu[idx] = (f[:b, k] - f[b:, k]).float().cpu()
            var[idx] = functional_variance(self.la, js[:b, k] - js[b:, k]).float().cpu()  # (B,)
            if responses:
                v_sum = functional_variance(self.la, js[:b, k] + js[b:, k]).float().cpu()
                rvar[idx] = (var[idx] + v_sum) / 4
        if responses:
            return mu, var.clamp_min(0), rvar.clamp_min(0)
        return mu, var.clamp_min(0)

    def preference(
        self, prompts: list[Prompt], chosen: list[str], rejected: list[str]
    ) -> PreferencePrediction:
        """P(chosen ≻ rejected) under the GLM predictive, with the mean and variance of Δ."""
        mu, var = self.delta_encoded(self.rm.encode(prompts, chosen), self.rm.encode(prompts, rejected))
        return probit_preference(mu, var)

    def preference_pairs(self, pairs: list[PreferencePair]) -> PreferencePrediction:
        """:meth:`preference` for preference pairs (with their critiques for a critique RM), with
        the responses' own variance (``response_var``) too."""
        chosen, rejected = encode_sides(self.rm, pairs)
        mu, var, rvar = self.delta_encoded(chosen, rejected, responses=True)
        pred = probit_preference(mu, var)
        pred.response_var = rvar.double()
        return pred

    # ---- prior tuning ------------------------------------------------------------------------
    def tune_marglik(self) -> None:
        """λ ← argmax log p(D | λ) (Laplace evidence), by Adam on log λ."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.la.optimize_prior_precision(
                pred_type="glm",
                method="marglik",
                n_steps=self.cfg.marglik_steps,
                init_prior_prec=self.cfg.prior_precision,
                prior_structure=self.cfg.prior_structure.value,
            )
        self.tuning = {"method": "marglik", "log_marglik": float(self.la.log_marginal_likelihood())}

    def tune_grid(self, validation: list[PreferencePair]) -> None:
        """λ ← argmin over a log grid of the validation BT NLL under the probit predictive,
        −[t log P + (1 − t) log(1 − P)] with P = Φ-approx. σ((μ_Δ − m) / √(1 + π v_Δ / 8)), m the
        margin and t the soft label (1 by default), as in the fit.

        J_Δ and μ_Δ are computed once (:meth:`validation_jacobians`) and rotated once into the
        posterior's eigenbasis (:mod:`rewardlab.bayes.variance`); each grid point then only
        rescales: v_Δ = J_Δ (H + λI)⁻¹ J_Δᵀ (:meth:`tune_grid_on`).
        """
        self.tune_grid_on(*self.validation_jacobians(validation))

    def validation_jacobians(
        self, validation: list[PreferencePair]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """J_Δ (N, 1, P), μ_Δ − m (N,) and soft labels t (N,) of the validation pairs that judge
        the posterior's objective."""
        cfg, k = self.cfg, self.objective
        val = _PairLoader(self.rm, validation, 1, k)
        ch, rj = val.chosen, val.rejected
        jds, mus, order = [], [], []
        for idx in token_batches(
            [2 * max(len(c["input_ids"]), len(r["input_ids"])) for c, r in zip(ch, rj, strict=True)],
            cfg.batch_tokens,
            max_batch=32,
        ):
            b = len(idx)
            js, f = self._jacobians([ch[i] for i in idx] + [rj[i] for i in idx])
            jds.append((js[:b, k] - js[b:, k]).unsqueeze(1))
            mus.append(f[:b, k] - f[b:, k] - val.margins[idx].to(f))
            order += idx
        return torch.cat(jds), torch.cat(mus), val.targets[order].double()

    def tune_grid_on(self, jd: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> None:
        """The grid search of :meth:`tune_grid` on precomputed J_Δ (N, 1, P), μ_Δ − m (N,) and
        soft labels t (N,)."""
        cfg = self.cfg
        grid = torch.logspace(cfg.grid_min, cfg.grid_max, cfg.grid_size).tolist()
        rotated = [rotate(self.la, jd[s : s + 256, 0]) for s in range(0, len(jd), 256)]
        nlls = []
        for lam in grid:
            var = torch.cat([r.variance(lam) for r in rotated]).clamp_min(0)
            prob = probit_preference(mu, var).prob.double().clamp(1e-12, 1 - 1e-12)
            nlls.append(float(-(t * prob.log() + (1 - t) * (1 - prob).log()).mean()))
        best = min(range(len(grid)), key=nlls.__getitem__)
        self.la.prior_precision = grid[best]
        self.tuning = {"method": "grid", "grid": grid, "val_nll": nlls, "best": grid[best]}

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the posterior to ``<model dir>/posterior/`` (laplace-torch state + config)."""
        out = model_dir(path) / POSTERIOR_DIR
        out.mkdir(parents=True, exist_ok=True)
        state = self.la.state_dict()
        state["likelihood"] = str(getattr(state["likelihood"], "value", state["likelihood"]))
        torch.save(state, out / "laplace.pt")
        cfg = {k: getattr(v, "value", v) for k, v in asdict(self.cfg).items()}
        meta = {
            "config": cfg,
            "params": self.param_names,
            "n_params": self.n_params,
            "prior_precision": self.prior_precision,
            "tuning": self.tuning,
        }
        (out / "posterior.json").write_text(json.dumps(meta, indent=2))
        return out


def fit_laplace(
    rm: RewardModel,
    pairs: list[PreferencePair],
    cfg: LaplaceConfig | None = None,
    validation: list[PreferencePair] | None = None,
    trunk_store: dict | None = None,
) -> Posterior:
    """Fit a Laplace posterior over ``rm``'s LoRA weights on ``pairs`` and tune its prior.

    ``rm`` must hold trainable LoRA weights (a freshly trained model, or
    ``RewardModel.load(dir, adapter=True)``); ``validation`` pairs are needed for the grid.
    ``trunk_store`` shares the frozen trunk's outputs with other fits or trainings on the same
    ``pairs`` (as :func:`rewardlab.train.train`'s): fitting several posteriors pays for it once.
    """
    cfg = cfg or LaplaceConfig()
    if cfg.prior_method == PriorMethod.GRID and not validation:
        raise ValueError("prior_method=grid needs validation pairs")
    post = Posterior(rm, cfg)
    t0 = time.perf_counter()
    loader = _PairLoader(rm, pairs, cfg.batch_size, post.objective, trunk_store)
    post.la.fit(loader, progress_bar=cfg.progress)
    fit_s = time.perf_counter() - t0
    if cfg.prior_method == PriorMethod.MARGLIK:
        post.tune_marglik()
    else:
        post.tune_grid(validation or [])
    post.tuning.update(fit_seconds=fit_s, tune_seconds=time.perf_counter() - t0 - fit_s, n_pairs=len(pairs))
    lam = post.prior_precision
    log.info(
        "Laplace %s/%s over %d params fitted on %d pairs in %.1fs; prior precision %s",
        cfg.hessian.value,
        cfg.subset.value,
        post.n_params,
        len(pairs),
        fit_s,
        f"{lam[0]:.3g}" if len(lam) == 1 else f"{min(lam):.3g}…{max(lam):.3g}",
    )
    return post


def load_posterior(path: str | Path, rm: RewardModel | None = None) -> Posterior | None:
    """The posterior saved beside a model, or ``None`` when the model has none.

    ``rm`` defaults to ``RewardModel.load(path, adapter=True)``.
    """
    folder = model_dir(path) / POSTERIOR_DIR
    if not (folder / "laplace.pt").exists():
        return None
    meta = json.loads((folder / "posterior.json").read_text())
    cfg = LaplaceConfig(**{**meta["config"], "progress": False})
    rm = rm or RewardModel.load(model_dir(path), adapter=True)
    post = Posterior(rm, cfg)
    if post.param_names != meta["params"]:
        raise ValueError(f"{folder}: the model's parameters do not match the saved posterior")
    state = torch.load(folder / "laplace.pt", map_location=rm.device, weights_only=True)
    post.la.load_state_dict(state)
    post.tuning = meta.get("tuning", {})
    if not math.isclose(float((post.la.mean - _vector(post)).abs().max()), 0.0, abs_tol=1e-4):
        log.warning("%s: the model's weights differ from the posterior mean (retrained?)", folder)
    return post


def _vector(post: Posterior) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in post.la.params])
