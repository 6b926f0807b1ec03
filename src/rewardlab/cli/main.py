"""``rewardlab`` command line: one thin module per command, each wrapping one library call."""

from __future__ import annotations

import importlib
import logging

import typer

app = typer.Typer(
    name="rewardlab",
    help="Build reward models: train, evaluate, score, and generate AI feedback. "
    "Every command takes --config FILE.yaml; run `rewardlab COMMAND --help` for its options.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module registers its command(s) on `app` when imported.
COMMANDS = ["train", "evaluate", "score", "demo", "feedback", "bayes", "explain", "serve", "report"]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", force=True)


for _name in COMMANDS:
    try:
        importlib.import_module(f"rewardlab.cli.{_name}")
    except ModuleNotFoundError as e:
        if e.name != f"rewardlab.cli.{_name}":
            raise
