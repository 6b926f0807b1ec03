"""Configuration and closed option sets for Bayesian reward models (Laplace-LoRA, ensembles)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class HessianStructure(str, Enum):
    """Structure of the GGN/Fisher approximation of the log-likelihood Hessian."""

    KRON = "kron"  # KFAC: one Kronecker product B ⊗ A per linear layer
    DIAG = "diag"  # diagonal GGN, exact per-parameter curvature


class Subset(str, Enum):
    """Which weights get a posterior (the rest stay at their MAP value)."""

    LORA = "lora"  # every trainable linear weight: the LoRA A/B matrices and the reward head
    LORA_ONLY = "lora_only"  # the LoRA A/B matrices alone; the head stays at its MAP value
    LAST_LAYER = "last_layer"  # only the final reward head (classifier / score)


class PriorMethod(str, Enum):
    """How the Gaussian prior precision λ (prior N(0, λ⁻¹ I)) is tuned after fitting."""

    MARGLIK = "marglik"  # maximise the Laplace log marginal likelihood
    GRID = "grid"  # minimise the Bradley-Terry NLL of validation pairs over a log grid


class PriorStructure(str, Enum):
    """Shape of the prior precision for marglik tuning."""

    SCALAR = "scalar"  # one λ
    LAYERWISE = "layerwise"  # one λ per parameter tensor


def _enum(cls: type[Enum], value: object, name: str) -> Enum:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise ValueError(f"{name}: unknown {value!r}; choose one of {choices}") from None


@dataclass
class LaplaceConfig:
    """Laplace approximation over a trained reward model's LoRA weights (Yang et al. 2024)."""

    hessian: HessianStructure = field(
        default=HessianStructure.KRON, metadata={"help": "Hessian structure: kron (KFAC) | diag"}
    )
    subset: Subset = field(
        default=Subset.LAST_LAYER,  # laplace-torch's default too; best OOD-AUROC measured (README)
        metadata={
            "help": "weights with a posterior: last_layer (the reward head; default) | lora (all LoRA "
            "+ head: Laplace-LoRA) | lora_only"
        },
    )
    prior_method: PriorMethod = field(
        default=PriorMethod.MARGLIK,
        metadata={"help": "prior precision tuning: marglik | grid (needs validation pairs)"},
    )
    prior_structure: PriorStructure = field(
        default=PriorStructure.SCALAR, metadata={"help": "marglik prior: scalar | layerwise"}
    )
    prior_precision: float = field(default=1.0, metadata={"help": "initial prior precision λ"})
    marglik_steps: int = field(default=100, metadata={"help": "Adam steps on log λ (marglik)"})
    grid_min: float = field(default=-4.0, metadata={"help": "grid: log10 of the smallest λ"})
    grid_max: float = field(default=4.0, metadata={"help": "grid: log10 of the largest λ"})
    grid_size: int = field(default=21, metadata={"help": "grid: number of λ values"})
    objective: str | None = field(
        default=None, metadata={"help": "objective whose pairs define the likelihood (default: the first)"}
    )
    batch_size: int = field(default=16, metadata={"help": "pairs per curvature batch"})
    batch_tokens: int = field(default=4096, metadata={"help": "padded tokens per prediction batch"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        self.hessian = _enum(HessianStructure, self.hessian, "hessian")  # type: ignore[assignment]
        self.subset = _enum(Subset, self.subset, "subset")  # type: ignore[assignment]
        self.prior_method = _enum(PriorMethod, self.prior_method, "prior_method")  # type: ignore[assignment]
        self.prior_structure = _enum(PriorStructure, self.prior_structure, "prior_structure")  # type: ignore[assignment]
        if not self.prior_precision > 0:
            raise ValueError("prior_precision must be > 0")
        for name in ("marglik_steps", "grid_size", "batch_size", "batch_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.grid_min >= self.grid_max:
            raise ValueError("grid_min must be < grid_max")


@dataclass
class EnsembleConfig:
    """K LoRA members on one frozen backbone, trained with different seeds and data orders."""

    members: int = field(default=4, metadata={"help": "number of ensemble members K"})
    seed: int = field(default=0, metadata={"help": "member i uses seed + i (init and data order)"})
    epochs: int = field(default=2, metadata={"help": "epochs per member"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    batch_size: int = field(default=16, metadata={"help": "pairs per step"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if self.members < 2:
            raise ValueError("members must be >= 2 (an ensemble needs a spread)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not self.lr > 0:
            raise ValueError("lr must be > 0")
