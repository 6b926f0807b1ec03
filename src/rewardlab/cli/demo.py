"""``rewardlab demo``: the main job on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from rewardlab.cli.common import clean_errors, console, results_table
from rewardlab.cli.main import app
from rewardlab.cli.options import config_command
from rewardlab.demo import DemoConfig
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig


@config_command(app, "demo", DemoConfig, ModelConfig, TrainConfig)
@clean_errors
def demo_cmd(
    demo: DemoConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out: Path = typer.Option(Path("runs/demo"), "--out", help="writes OUT/model and OUT/metrics.json"),
) -> None:
    """Train an RM on bundled data (--train-set); evaluate it on every bundled set vs length heuristics."""
    from rewardlab.demo import run_demo

    m = run_demo(demo, model_cfg, train_cfg, out)
    cols = ["n", "accuracy", "longer_accuracy", "shorter_accuracy", "ece"]
    console.print(results_table("rewardlab demo (accuracy %, ties wrong)", m["sets"], cols))
    console.print(
        f"model: {out / 'model'}   metrics: {out / 'metrics.json'}   total {m['seconds']:.0f}s, "
        f"peak memory {m['peak_memory_mb']:.0f} MB"
    )
