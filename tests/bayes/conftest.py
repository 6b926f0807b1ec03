"""Tiny in-code reward models (2-layer BERT, hidden 16, float64) and in-memory pairs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from rewardlab.data.schema import PreferencePair
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel

WORDS = "safe kind help no sorry yes bad good the a please steal hurt fine".split()


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 16) saved with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rewardlab.assets import minilm_path

    out = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_config(path: Path, **kw) -> ModelConfig:
    """LoRA r2 on the top layer, float64."""
    base = dict(backbone=str(path), train_layers=1, lora_r=2, lora_alpha=4, max_length=48, dtype="float64")
    return ModelConfig(**{**base, **kw})


def make_pairs(n: int, seed: int = 0) -> list[PreferencePair]:
    """Pairs where the chosen response says "safe"/"kind" words and the rejected "bad" ones."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(2, 6)))
        good = " ".join(rng.choices(["safe", "kind", "help", "good"], k=rng.randint(1, 5)))
        bad = " ".join(rng.choices(["bad", "steal", "hurt", "no"], k=rng.randint(1, 5)))
        pairs.append(PreferencePair(prompt, good, bad))
    return pairs


def perturb(rm: RewardModel, seed: int = 0, scale: float = 0.3) -> RewardModel:
    """Move the trainable weights off their init (LoRA B starts at zero) so Jacobians are rich."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in rm.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return rm


@pytest.fixture
def tiny_rm(tiny_backbone: Path) -> RewardModel:
    torch.manual_seed(0)
    return perturb(RewardModel.build(tiny_config(tiny_backbone)))
