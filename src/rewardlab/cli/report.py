"""``rewardlab report RUN_DIR``: one self-contained HTML page from any run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from rewardlab.cli.common import clean_errors, console
from rewardlab.cli.main import app


@app.command("report")
@clean_errors
def report_cmd(
    run_dir: Path = typer.Argument(
        ..., help="a run directory (rewardlab demo / train, a recipe's --out, a GRPO run)"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="where to write the page (default RUN_DIR/report.html)"
    ),
) -> None:
    """Write one HTML page (images embedded) with every section the run has: metrics beside the
    length heuristics, per-source accuracy, reliability diagrams, reward histograms, best-of-n
    curves, recipe results, objective / feature weights, GRPO reward curve."""
    from rewardlab.report import write_report

    path = write_report(run_dir, out)
    console.print(f"report: {path}")
