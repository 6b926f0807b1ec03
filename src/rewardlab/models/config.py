"""Reward-model configuration."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    @property
    def num_objectives(self) -> int:
        """K, the number of reward heads."""
        return len(self.objectives)
