"""Load an HF backbone as a K-head sequence-classification model, freeze/LoRA the right parts."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from rewardlab.assets import resolve_model
from rewardlab.models.config import ModelConfig

hf_logging.disable_progress_bar()  # one rewardlab progress bar, not one per weight file

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


def load_tokenizer(path: str):
    """The backbone's tokenizer with a pad token guaranteed (eos, else unk, as pad)."""
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def load_classifier(path: str, cfg: ModelConfig, tok) -> nn.Module:
    """``AutoModelForSequenceClassification`` with K labels named after the objectives.

    ``config.pad_token_id`` is always set: HF reads a decoder's reward at the rightmost token that is
    not padding, so with it unset the reward would be read from a pad token.
    """
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=cfg.num_objectives,
        dtype=DTYPES[cfg.dtype],
        id2label=dict(enumerate(cfg.objectives)),
        label2id={n: i for i, n in enumerate(cfg.objectives)},
    )
    model.config.pad_token_id = tok.pad_token_id
    model.config.problem_type = "regression"
    return model


def find_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks (the ModuleList with ``num_hidden_layers`` entries)."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} transformer layers of {type(model).__name__}")


def layers_attr(model: nn.Module) -> str:
    """Attribute name of the layer stack (``layer`` for BERT, ``layers`` for Llama)."""
    layers = find_layers(model)
    for name, module in model.named_modules():
        if module is layers:
            return name.rsplit(".", 1)[-1]
    raise ValueError("layer stack not found")  # pragma: no cover


def head_names(model: nn.Module) -> list[str]:
    """Modules that make up the reward head: everything outside the layer stack and embeddings
    that has parameters at the top level (``classifier``/``score``), plus a BERT ``pooler``."""
    prefix = model.base_model_prefix
    names = [n for n, m in model.named_children() if n != prefix and any(True for _ in m.parameters())]
    if getattr(getattr(model, prefix, None), "pooler", None) is not None:
        names.append("pooler")
    return names


def trained_layer_ids(model: nn.Module, cfg: ModelConfig) -> list[int]:
    """Indices of the layers that train (the top ``train_layers``; all when 0)."""
    n = model.config.num_hidden_layers
    k = n if cfg.train_layers == 0 else min(cfg.train_layers, n)
    return list(range(n - k, n))


def apply_trainable(model: nn.Module, cfg: ModelConfig) -> nn.Module:
    """Freeze the frozen part; add LoRA (peft) on the trained layers, or unfreeze them fully."""
    layer_ids = trained_layer_ids(model, cfg)
    layers = find_layers(model)
    heads = head_names(model)
    model.requires_grad_(False)
    if cfg.lora_r == 0:
        for i in layer_ids:
            layers[i].requires_grad_(True)
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] in heads:
                module.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    targets = cfg.lora_targets or sorted(
        {
            n.rsplit(".", 1)[-1]
            for i in layer_ids
            for n, m in layers[i].named_modules()
            if isinstance(m, nn.Linear)
        }
    )
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        layers_to_transform=layer_ids,
        layers_pattern=layers_attr(model),
        modules_to_save=heads,
        task_type="SEQ_CLS",
    )
    return get_peft_model(model, lora)


def build_backbone(cfg: ModelConfig):
    """(model, tokenizer, resolved path) for a fresh reward model."""
    path = resolve_model(cfg.backbone)
    tok = load_tokenizer(path)
    model = apply_trainable(load_classifier(path, cfg, tok), cfg)
    return model, tok, path
