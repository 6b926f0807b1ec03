"""Reward-model configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class RMKind(str, Enum):
    """What kind of reward model: one neural head, K neural heads (``multi``), an interpretable
    model over features (``knowledge``), or features + a neural reward (``fused``); see
    :mod:`rewardlab.knowledge`."""

    NEURAL = "neural"
    KNOWLEDGE = "knowledge"
    FUSED = "fused"
    MULTI = "multi"


@dataclass
class ModelConfig:
    """What backbone, which heads, and which weights train."""

    backbone: str = field(default="minilm", metadata={"help": "HF model path or alias: minilm, smollm2"})
    objectives: list[str] = field(
        default_factory=lambda: ["reward"],
        metadata={"help": "names of the K reward heads (one per objective)"},
    )
    max_length: int = field(
        default=256, metadata={"help": "tokens per prompt+response; the prompt is cut first, from the left"}
    )
    train_layers: int = field(
        default=1,
        metadata={
            "help": "train only the top N transformer layers (+ head); the frozen lower layers' "
            "outputs are cached once and reused every epoch. 0 = all layers"
        },
    )
    lora_r: int = field(
        default=16, metadata={"help": "LoRA rank on the trained layers; 0 = full fine-tuning"}
    )
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    lora_targets: list[str] | None = field(
        default=None, metadata={"help": "module names for LoRA (default: attention + MLP linears)"}
    )
    chat_template: bool = field(
        default=True, metadata={"help": "format with the tokenizer's chat template when it has one"}
    )
    critiques: bool = field(
        default=False,
        metadata={
            "help": "append each response's critique (from `rewardlab critique`) to the RM input; "
            "training and scoring then need one critique per response"
        },
    )
    dtype: str = field(default="float32", metadata={"help": "float32 | bfloat16 | float16 | float64"})
    kind: RMKind = field(
        default=RMKind.NEURAL,
        metadata={
            "help": "neural | multi (K objectives, one head each; implied by 2+ --objectives) | "
            "knowledge (linear BT over features) | fused (features + a neural reward)"
        },
    )
    label_key: str | None = field(
        default=None,
        metadata={
            "help": "one-objective models: train toward labels[KEY] (e.g. a judge's principle); "
            "default: the objective's own name, else labels['overall'], else 1 (plain preference)"
        },
    )
    scalarizer: str = field(
        default="weighted_sum",
        metadata={
            "help": "multi-objective models: how K rewards become one (weighted_sum, worst_case, "
            "soft_min, uncertainty, nash, lower_quantile); a request may name another"
        },
    )
    scalarizer_params: dict[str, dict] = field(
        default_factory=dict,
        metadata={
            "help": 'parameters per scalarizer, JSON: {"weighted_sum": {"weights": [1, -0.5]}, '
            '"soft_min": {"temperature": 0.5}}'
        },
    )
    reward_scale: list[dict[str, float]] | None = field(
        default=None,
        metadata={
            "cli": False,
            "help": "per objective {mean, std} of its rewards over the training responses (set at "
            "the end of multi-objective training); scalarizers normalise by it",
        },
    )

    def __post_init__(self) -> None:
        if not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise ValueError("objectives: give one or more distinct names")
        if self.max_length < 16:
            raise ValueError("max_length must be >= 16")
        if self.train_layers < 0:
            raise ValueError("train_layers must be >= 0 (0 = all layers)")
        if self.lora_r < 0:
            raise ValueError("lora_r must be >= 0 (0 = full fine-tuning)")
        if self.dtype not in ("float32", "bfloat16", "float16", "float64"):
            raise ValueError(f"dtype: unknown {self.dtype!r}")
        self._check_objectives()

    def _check_objectives(self) -> None:
        """Kind, label key, scalarizer and reward scale (see ``rewardlab.objectives``)."""
        from rewardlab.objectives.scalarizers import check_scalarizer

        try:
            self.kind = RMKind(self.kind)
        except ValueError:
            raise ValueError(
                f"kind: unknown {self.kind!r}; choose one of {[k.value for k in RMKind]}"
            ) from None
        if self.kind in (RMKind.KNOWLEDGE, RMKind.FUSED) and self.num_objectives > 1:
            raise ValueError(f"kind {self.kind.value!r} has one objective; got {self.objectives}")
        if self.kind == RMKind.NEURAL and self.num_objectives > 1:
            self.kind = RMKind.MULTI
        if self.kind == RMKind.MULTI and self.num_objectives < 2:
            raise ValueError("kind multi needs two or more --objectives")
        if self.label_key is not None and self.num_objectives > 1:
            raise ValueError("label_key is for one-objective models; K objectives read labels[name]")
        check_scalarizer(self.scalarizer, self.scalarizer_params)
        if self.reward_scale is not None and len(self.reward_scale) != self.num_objectives:
            raise ValueError(
                f"reward_scale: {len(self.reward_scale)} entries for {self.num_objectives} objectives"
            )

    @property
    def num_objectives(self) -> int:
        """K, the number of reward heads."""
        return len(self.objectives)
