"""One front door for a saved reward model: :func:`load` (``rewardlab.load``).

``load(DIR)`` resolves the directory once (a model directory, or a run directory holding
``model/``), loads the RM once, and attaches what is saved beside it: its Laplace posterior
(``posterior/``), else its LoRA ensemble (``ensemble/``) — both need the RM's LoRA weights as
parameters, so the RM is then loaded with its adapter, otherwise merged (fastest). The returned
:class:`LoadedRM` scores with the model's objectives, scalarizer and reward scale, asks for
critiques when the model reads them, and gives a predictive standard deviation when it can.
``score``, ``evaluate``, ``bon`` and the server go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rewardlab.data.schema import PreferencePair, Prompt
from rewardlab.models.fast_score import Precision, apply_precision
from rewardlab.models.reward_model import RewardModel, model_dir, read_meta

if TYPE_CHECKING:
    from rewardlab.bayes.ensemble import Ensemble
    from rewardlab.bayes.laplace import Posterior
    from rewardlab.bayes.uncertainty import PreferencePrediction

log = logging.getLogger(__name__)
BESIDE = ("posterior", "ensemble")  # bayes.laplace.POSTERIOR_DIR, bayes.ensemble.ENSEMBLE_DIR


@dataclass
class Scores:
    """Rewards of N responses: per objective (N, K) and scalarized (N,); the standard deviations
    are the predictive ones (posterior or ensemble), ``None`` without uncertainty."""

    rewards: torch.Tensor  # (N, K); the predictive mean when std is given
    std: torch.Tensor | None  # (N, K)
    reward: torch.Tensor  # (N,) scalarized (objective 0 of a one-objective model)
    reward_std: torch.Tensor | None  # (N,)


@contextmanager
def _keeping_weights(rm: RewardModel) -> Iterator[None]:
    """Restore the RM's trainable weights afterwards (an ensemble swaps members into them)."""
    saved = {n: p.detach().clone() for n, p in rm.named_parameters() if p.requires_grad}
    try:
        yield
    finally:
        with torch.no_grad():
            for n, p in rm.named_parameters():
                if n in saved:
                    p.copy_(saved[n])


@dataclass
class LoadedRM:
    """A saved reward model and everything saved beside it (see :func:`load`)."""

    rm: RewardModel
    path: Path
    meta: dict
    posterior: Posterior | None = None
    ensemble: Ensemble | None = None
    precision: Precision = Precision.FP32  # the arithmetic of the MAP scoring path (fast_score)

    @property
    def objectives(self) -> list[str]:
        """Names of the K reward heads."""
        return list(self.rm.cfg.objectives)

    @property
    def needs_critiques(self) -> bool:
        """Whether every response must come with its critique (a critique-conditioned RM)."""
        return self.rm.cfg.critiques

    @property
    def knowledge(self) -> bool:
        """A knowledge or fused RM (:mod:`rewardlab.knowledge`): its Laplace posterior over the
        feature weights gives every reward a standard deviation."""
        return "knowledge" in self.meta

    @property
    def uncertainty_source(self) -> str | None:
        """``"laplace"``, ``"ensemble"`` or ``None``."""
        return "laplace" if self.posterior or self.knowledge else "ensemble" if self.ensemble else None

    def _predictive_of(self, seqs: list[dict[str, list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictive mean and variance (N, K) of encoded responses."""
        if self.posterior is not None:
            return self.posterior.predict_encoded(seqs)
        if self.ensemble is None:
            raise FileNotFoundError(
                f"{self.path}: no posterior or ensemble beside the model; "
                f"run `rewardlab laplace --model {self.path} --data PAIRS` first"
            )
        with _keeping_weights(self.rm):
            r = self.ensemble.member_rewards(seqs)  # (M, N, K)
        return r.mean(0), r.var(0, unbiased=False)

    def scalarize(
        self, rewards: torch.Tensor, std: torch.Tensor | None = None, scalarizer: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, K) rewards (and std) → (N,) with the model's scalarizer and reward scale."""
        from rewardlab.objectives import scalarize_std

        return scalarize_std(self.rm, rewards, std, scalarizer)

    def score(
        self,
        prompts: list[Prompt],
        responses: list[str],
        critiques: list[str | None] | None = None,
        *,
        uncertainty: bool | None = None,
        scalarizer: str | None = None,
        batch_tokens: int = 8192,
        share_prompts: bool = True,
    ) -> Scores:
        """Rewards of aligned prompts/responses (critiques for a critique RM). ``uncertainty``:
        ``None`` = with a standard deviation when a posterior or ensemble exists; ``True`` requires
        one (``FileNotFoundError`` otherwise); ``False`` = the MAP model only (cheapest).
        ``share_prompts`` (MAP path, decoder RMs): compute each prompt shared by several responses
        once, packed with its responses (exact to ~1e-5, :mod:`rewardlab.models.prompt_share`; on by
        default: 1.3× the plain batches on HH pairs, 2.2× on GRPO groups of 8 with SmolLM2-135M,
        docs/notes/scoring_speed.md; encoders ignore it)."""
        if self.knowledge:
            mean, std = self.rm.predict(prompts, responses, batch_tokens)  # (N, 1) each
            std = None if uncertainty is False else std
            return Scores(mean, std, mean[:, 0], None if std is None else std[:, 0])
        seqs = self.rm.encode(prompts, responses, critiques if self.needs_critiques else None)
        if uncertainty is None:
            uncertainty = self.uncertainty_source is not None
        if uncertainty:
            mean, var = self._predictive_of(seqs)
            std = var.clamp_min(0).sqrt()
        else:
            from rewardlab.models.prompt_share import prompt_keys

            groups = prompt_keys(prompts) if share_prompts else None
            mean, std = self.rm.score_encoded(seqs, batch_tokens=batch_tokens, groups=groups), None
        reward, reward_std = self.scalarize(mean, std, scalarizer)
        return Scores(mean, std, reward, reward_std)

    def preference(self, pairs: list[PreferencePair]) -> PreferencePrediction:
        """P(chosen ≻ rejected) under the posterior or ensemble, with the mean/variance of Δ."""
        if self.knowledge:
            return self.rm.preference_pairs(pairs)
        if self.posterior is not None:
            return self.posterior.preference_pairs(pairs)
        if self.ensemble is None:
            self._predictive_of([])  # raises the missing-posterior error
        with _keeping_weights(self.rm):
            return self.ensemble.preference_pairs(pairs)

    def uncertainty_metrics(self, pairs: list[PreferencePair]) -> dict | None:
        """``{"error_auroc", "uncertainty_source", "bayes": {...}}`` (see
        :func:`rewardlab.bayes.prediction_metrics`), ``None`` without a posterior or ensemble."""
        if self.uncertainty_source is None:
            return None
        from rewardlab.bayes.uncertainty import prediction_metrics

        m = prediction_metrics(self.preference(pairs))
        return {"error_auroc": m["error_auroc"], "uncertainty_source": self.uncertainty_source, "bayes": m}


def _check_fp32(precision: Precision, mdir: Path, why: str) -> None:
    """Refuse a reduced precision where the model cannot use one."""
    if precision != Precision.FP32:
        raise ValueError(f"{mdir}: precision {precision.value!r} is not available: {why} (use fp32)")


def _warn_slow_bf16(precision: Precision, rm: RewardModel, mdir: Path) -> None:
    """Warn when a reduced precision runs on a CPU that computes bfloat16 only by emulation."""
    if precision == Precision.FP32 or next(rm.hf_model.parameters()).device.type != "cpu":
        return
    from rewardlab.llm.local import cpu_has_bf16

    if not cpu_has_bf16():
        log.warning(
            "%s: precision %r on a CPU without native bfloat16 (AMX / AVX512-BF16) is slower than fp32 "
            "here (measured 0.37x fp32 on such a CPU, docs/notes/scoring_speed.md); use fp32",
            mdir,
            precision.value,
        )


def load(path: str | Path, uncertainty: bool = True, precision: Precision | str = "fp32") -> LoadedRM:
    """Load the model saved in ``path`` with its posterior (else ensemble), objectives,
    scalarizer, reward scale and critique requirement. ``uncertainty=False`` skips the posterior
    and ensemble and loads the merged model (fastest to score). ``precision`` (see
    :mod:`rewardlab.models.fast_score`): the arithmetic ``score`` runs in; anything but ``fp32``
    needs a neural RM scored without its posterior or ensemble (``ValueError`` otherwise)."""
    precision = Precision(precision)
    mdir = model_dir(path)
    meta = read_meta(mdir)
    if "knowledge" in meta:  # knowledge / fused RM
        from rewardlab.knowledge.rm import KnowledgeRM

        _check_fp32(precision, mdir, "a knowledge/fused RM computes its features and posterior in float32")
        return LoadedRM(KnowledgeRM.load(mdir), mdir, meta)
    if not (uncertainty and any((mdir / d).is_dir() for d in BESIDE)):
        rm = RewardModel.load(mdir)
        apply_precision(rm.hf_model, precision)
        _warn_slow_bf16(precision, rm, mdir)
        return LoadedRM(rm, mdir, meta, precision=precision)
    _check_fp32(precision, mdir, "its posterior/ensemble runs in float32; load with uncertainty off")
    from rewardlab.bayes.ensemble import load_ensemble
    from rewardlab.bayes.laplace import load_posterior

    rm = RewardModel.load(mdir, adapter=True)
    posterior = load_posterior(mdir, rm=rm)
    ensemble = None if posterior is not None else load_ensemble(mdir, rm=rm)
    return LoadedRM(rm, mdir, meta, posterior, ensemble)
