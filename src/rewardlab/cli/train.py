"""``rewardlab train``: Bradley-Terry training on TRL-style JSONL (or a bundled set)."""

from __future__ import annotations

from pathlib import Path

import typer

from rewardlab.cli.common import clean_errors, console, read_pairs
from rewardlab.cli.main import app
from rewardlab.cli.options import config_command
from rewardlab.knowledge.rm import KnowledgeConfig
from rewardlab.models.config import ModelConfig, RMKind
from rewardlab.train.config import TrainConfig


@config_command(app, "train", ModelConfig, TrainConfig, KnowledgeConfig)
@clean_errors
def train_cmd(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    knowledge_cfg: KnowledgeConfig,
    data: str = typer.Option(
        ..., "--data", help="pairs file (JSONL/JSON/Parquet/HF dataset dir) or hh-train"
    ),
    out: Path = typer.Option(..., "--out", help="directory for the model, checkpoints and train_log.jsonl"),
    validation: str | None = typer.Option(None, "--validation", help="held-out pairs for epoch selection"),
    fmt: str = typer.Option("auto", "--format", help="trl | hh | llmbar | hhh | auto"),
    on_invalid: str = typer.Option("raise", "--on-invalid", help="raise | drop (drop logs every bad row)"),
) -> None:
    """Train a reward model on preference pairs and save it (HF format + LoRA adapter) to OUT.

    Rows' ``labels`` train the objectives they name (two or more --objectives: a multi-objective
    RM whose per-objective reward scale, and weights fitted on labels["overall"] if any, are saved
    with it); see ARCHITECTURE.md "Labels". --kind knowledge fits an interpretable model over
    --feature-sets; --kind fused adds a neural RM's reward to it (see `rewardlab explain`)."""
    from rewardlab.objectives import calibrate, save_config
    from rewardlab.train.trainer import train

    pairs = read_pairs(data, fmt, on_invalid)
    val = read_pairs(validation, fmt, on_invalid) if validation else None
    if model_cfg.kind in (RMKind.KNOWLEDGE, RMKind.FUSED):
        from rewardlab.knowledge.rm import train_knowledge

        rm = train_knowledge(pairs, model_cfg, knowledge_cfg, train_cfg, out, validation=val)
        console.print(f"{model_cfg.kind.value} RM over {len(rm.names)} features; model saved to {out}")
        return
    res = train(pairs, model_cfg, train_cfg, out, validation=val)
    if res.model.cfg.num_objectives > 1:
        save_config(calibrate(res.model, pairs), out)
    console.print(
        f"trained on {len(pairs)} pairs in {res.seconds:.0f}s "
        f"({res.pairs_per_second:.2f} pairs/s); model saved to {out}"
    )
