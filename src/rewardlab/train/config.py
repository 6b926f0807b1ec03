"""Training configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewardlab.train.length_bias import LengthDebias


@dataclass
class TrainConfig:
    """Optimisation, batching, checkpointing and logging for Bradley-Terry training."""

    epochs: int = field(default=2, metadata={"help": "passes over the training pairs"})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "linear warm-up share of all steps"})
    batch_size: int = field(default=16, metadata={"help": "pairs per optimiser step (before accumulation)"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 = off)"})
    use_margin: bool = field(default=True, metadata={"help": "subtract a pair's margin when present"})
    length_debias: LengthDebias = field(
        default=LengthDebias.OFF,
        metadata={
            "help": "off | poe (train beside a fixed per-source length expert, dropped at scoring) | "
            "balance (drop pairs until longer wins half of each source's pairs)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed for init, shuffling and dropout"})
    cache_trunk: bool = field(
        default=True, metadata={"help": "cache frozen lower layers' outputs across epochs"}
    )
    save_steps: int = field(
        default=200, metadata={"help": "checkpoint every N optimiser steps (0 = epoch ends only)"}
    )
    max_steps: int = field(
        default=0, metadata={"help": "stop (with a checkpoint) after N optimiser steps; 0 = run all epochs"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from OUT/checkpoint if present"})
    select_best: bool = field(
        default=True, metadata={"help": "keep the epoch with the best validation accuracy"}
    )
    tensorboard: bool = field(default=False, metadata={"help": "also log to TensorBoard under OUT/tb"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        try:
            self.length_debias = LengthDebias(self.length_debias)
        except ValueError:
            raise ValueError(
                f"length_debias: unknown {self.length_debias!r}; "
                f"choose one of {[d.value for d in LengthDebias]}"
            ) from None
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must lie in [0, 1)")
