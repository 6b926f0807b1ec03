"""Knowledge and fused reward models: features (+ the neural reward) → :class:`LinearBT`.

``kind: knowledge`` scores ``r(x) = wᵀ z(x)`` over the chosen feature sets. ``kind: fused`` also
trains a neural RM (saved in ``DIR/neural/``) and adds its reward as one more standardised
feature, ``neural.reward``: the fused reward is the learned weighted sum
``r(x) = w_nn · z_nn(x) + Σ_k w_k z_k(x)``, with the same Laplace posterior over all weights.
The fusion weights are fitted on the validation pairs when given (the neural reward is optimistic
on its own training pairs), else on the training pairs.

A :class:`KnowledgeRM` has the RewardModel scoring interface (``cfg``, ``score(prompts,
responses) -> (N, 1)``), so ``evaluate``, ``score``, ``bon`` and the server take it through
``rewardlab.load``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rewardlab.data.schema import PreferencePair, Prompt, prompt_text
from rewardlab.knowledge.features import extract, feature_names, get_feature_set
from rewardlab.knowledge.model import LinearBT
from rewardlab.models.config import ModelConfig, RMKind
from rewardlab.objectives.labels import label_targets, log_label_use

if TYPE_CHECKING:
    from rewardlab.bayes.uncertainty import PreferencePrediction

log = logging.getLogger(__name__)
NEURAL_DIR = "neural"
NEURAL_FEATURE = "neural.reward"
SUMMARY_SOURCES = ("summeval-op",)  # pairs from these sources add the opinion_summary set by default


@dataclass
class KnowledgeConfig:
    """Feature sets and prior of a knowledge or fused RM."""

    feature_sets: list[str] | None = field(
        default=None,
        metadata={
            "help": "knowledge/fused RMs: feature sets, comma-separated (general, opinion_summary, "
            "embedding, or MODULE:SET registered in your code); default: general, + opinion_summary "
            "on SummEval-OP"
        },
    )
    prior_precision: float | None = field(
        default=None,
        metadata={
            "help": "knowledge/fused RMs: precision λ of the weights' Gaussian prior; "
            "default: chosen by the Laplace evidence"
        },
    )

    def __post_init__(self) -> None:
        if self.prior_precision is not None and self.prior_precision <= 0:
            raise ValueError("prior_precision must be > 0")
        sets = []
        for entry in self.feature_sets or []:  # "module:set" imports the user's module first
            module, _, name = entry.rpartition(":")
            try:
                get_feature_set(name, module or None)
            except (KeyError, ImportError) as e:
                raise ValueError(f"feature_sets: {e}") from None
            sets.append(name)
        self.feature_sets = sets or None


def default_feature_sets(pairs: list[PreferencePair]) -> list[str]:
    """``general``, plus ``opinion_summary`` when any pair comes from an opinion-summary source."""
    summary = any(p.source in SUMMARY_SOURCES for p in pairs)
    return ["general", "opinion_summary"] if summary else ["general"]


def model_features(
    sets: list[str],
    neural,  # noqa: ANN001 - a RewardModel (fused) or None
    prompts: list[Prompt],
    responses: list[str],
    batch_tokens: int = 8192,
) -> torch.Tensor:
    """Raw features (N, D) in float64 of the given sets, plus the neural reward as the last column."""
    phi = extract(sets, [prompt_text(p) for p in prompts], responses)
    if neural is None:
        return phi
    r = neural.score(prompts, responses, batch_tokens=batch_tokens)[:, :1].double()  # (N, 1)
    return torch.cat([phi, r], dim=1)


class KnowledgeRM:
    """A knowledge RM (features → linear BT), or a fused one (features + neural reward)."""

    def __init__(
        self,
        cfg: ModelConfig,
        feature_sets: list[str],
        bt: LinearBT,
        neural=None,  # noqa: ANN001
    ) -> None:
        self.cfg = cfg
        self.feature_sets = list(feature_sets)
        self.bt = bt
        self.neural = neural  # a RewardModel for kind fused, else None

    @property
    def names(self) -> list[str]:
        """Qualified feature names (the fused model's last one is ``neural.reward``)."""
        return self.bt.names

    def features(self, prompts: list[Prompt], responses: list[str], batch_tokens: int = 8192) -> torch.Tensor:
        """Raw features (N, D) in float64, the neural reward last for a fused model."""
        return model_features(self.feature_sets, self.neural, prompts, responses, batch_tokens)

    def predict(
        self, prompts: list[Prompt], responses: list[str], batch_tokens: int = 8192
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward mean and posterior std (weights' Laplace posterior), each (N, 1) float32."""
        mean, std = self.bt.reward(self.features(prompts, responses, batch_tokens))
        return mean.float()[:, None], std.float()[:, None]

    def score(
        self, prompts: list[Prompt], responses: list[str], critiques: list[str | None] | None = None, **kw
    ) -> torch.Tensor:
        """Rewards (N, 1), like :meth:`RewardModel.score` (critiques are not read)."""
        return self.predict(prompts, responses, kw.get("batch_tokens", 8192))[0]

    def preference_pairs(self, pairs: list[PreferencePair]) -> PreferencePrediction:
        """P(chosen ≻ rejected) under the weights' posterior: Δ = wᵀ(z_c − z_r) has mean
        ``w*ᵀΔz`` and variance ``Δzᵀ Σ Δz``, squashed by the probit approximation."""
        from rewardlab.bayes.uncertainty import probit_preference

        prompts = [p.prompt for p in pairs]
        dz = self.bt.standardize(self.features(prompts, [p.chosen for p in pairs])) - self.bt.standardize(
            self.features(prompts, [p.rejected for p in pairs])
        )  # (P, D)
        return probit_preference(dz @ self.bt.weights, ((dz @ self.bt.cov) * dz).sum(-1))

    # ---- persistence -------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """``out/rewardlab.json`` (config, feature sets and their modules, weights, covariance);
        a fused model's neural RM is saved under ``out/neural/`` by its trainer."""
        from rewardlab.models.reward_model import ENCODING, META

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": asdict(self.cfg),
            "knowledge": {
                "feature_sets": self.feature_sets,
                "modules": {s: get_feature_set(s).module for s in self.feature_sets},
                "linear_bt": self.bt.to_dict(),
                "neural": NEURAL_DIR if self.neural is not None else None,
            },
            "base_path": None,
            "adapter": False,
            "encoding": ENCODING,
        }
        (out / META).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeRM:
        """Load a saved knowledge or fused RM (a model directory or a run directory's ``model/``)."""
        from rewardlab.models.reward_model import RewardModel, model_dir, read_meta

        path = model_dir(path)
        meta = read_meta(path)
        k = meta.get("knowledge")
        if k is None:
            raise FileNotFoundError(f"{path}: not a knowledge or fused model (no 'knowledge' entry)")
        for s in k["feature_sets"]:
            get_feature_set(s, k["modules"].get(s))
        neural = RewardModel.load(path / k["neural"]) if k.get("neural") else None
        return cls(
            ModelConfig(**meta["model"]), k["feature_sets"], LinearBT.from_dict(k["linear_bt"]), neural
        )


def fit_linear_bt(
    names: list[str],
    sets: list[str],
    pairs: list[PreferencePair],
    cfg: ModelConfig,
    kcfg: KnowledgeConfig,
    use_margin: bool = True,
    neural=None,  # noqa: ANN001 - a RewardModel (fused) or None
) -> LinearBT:
    """Features of ``pairs`` (chosen, rejected), the label rule's targets, then :meth:`LinearBT.fit`."""
    prompts = [p.prompt for p in pairs]
    phi_c = model_features(sets, neural, prompts, [p.chosen for p in pairs])
    phi_r = model_features(sets, neural, prompts, [p.rejected for p in pairs])
    lt = label_targets(pairs, cfg.objectives, cfg.label_key)
    log_label_use(lt, cfg.objectives, cfg.label_key)
    margins = torch.tensor([p.margin or 0.0 for p in pairs]) if use_margin else None
    return LinearBT.fit(names, phi_c, phi_r, lt.targets[:, 0], margins, kcfg.prior_precision)


def train_knowledge(
    pairs: list[PreferencePair],
    model_cfg: ModelConfig | None = None,
    knowledge_cfg: KnowledgeConfig | None = None,
    train_cfg=None,  # noqa: ANN001 - a TrainConfig (the neural part of a fused RM)
    out: str | Path | None = None,
    validation: list[PreferencePair] | None = None,
) -> KnowledgeRM:
    """Fit a knowledge RM (``model_cfg.kind`` knowledge, the default here) or a fused RM (kind
    fused: train the neural RM on ``pairs`` with ``train_cfg``, then fit the weights of features +
    neural reward on ``validation`` if given, else on ``pairs``); save to ``out`` if given."""
    from rewardlab.train.config import TrainConfig

    cfg = model_cfg or ModelConfig(kind=RMKind.KNOWLEDGE)
    if cfg.kind not in (RMKind.KNOWLEDGE, RMKind.FUSED):
        raise ValueError(f"kind must be knowledge or fused, got {cfg.kind.value!r}")
    kcfg, tcfg = knowledge_cfg or KnowledgeConfig(), train_cfg or TrainConfig()
    sets = kcfg.feature_sets or default_feature_sets(pairs)
    names = feature_names(sets)
    neural, fit_pairs = None, pairs
    if cfg.kind == RMKind.FUSED:
        from rewardlab.train.trainer import train

        sub = Path(out) / NEURAL_DIR if out is not None else None
        neural = train(pairs, replace(cfg, kind=RMKind.NEURAL), tcfg, sub, validation=validation).model
        names, fit_pairs = [*names, NEURAL_FEATURE], validation or pairs
    bt = fit_linear_bt(names, sets, fit_pairs, cfg, kcfg, tcfg.use_margin, neural)
    rm = KnowledgeRM(cfg, sets, bt, neural)
    log.info(
        "%s RM over %d features (λ = %g) fitted on %d pairs",
        cfg.kind.value,
        len(names),
        bt.prior_precision,
        len(fit_pairs),
    )
    if out is not None:
        rm.save(out)
    return rm
