"""``rewardlab evaluate``: accuracy, calibration and per-subset tables for a saved model."""

from __future__ import annotations

from pathlib import Path

import typer

from rewardlab.cli.common import (
    clean_errors,
    console,
    on_invalid_option,
    print_json,
    read_pairs,
    results_table,
)
from rewardlab.cli.main import app
from rewardlab.cli.scalarizer import scalarizer_option


@app.command("evaluate")
@clean_errors
def evaluate_cmd(
    model: Path = typer.Option(..., "--model", help="a saved rewardlab model directory"),
    data: list[str] = typer.Option(
        ..., "--data", help="pairs file or bundled set (repeatable; the first is the OOD reference)"
    ),
    fmt: str = typer.Option("auto", "--format", help="trl | hh | llmbar | hhh | auto"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
    on_invalid: str = on_invalid_option(),
    scalarizer: str | None = scalarizer_option(),
) -> None:
    """Pairwise accuracy (ties wrong), ECE/NLL/Brier, length heuristics, per-source/subset accuracy;
    with a posterior or ensemble also error-AUROC and, against the first --data set, OOD-AUROC."""
    from rewardlab.bayes.uncertainty import pair_lengths, prediction_metrics, uncertainty_summary
    from rewardlab.evaluate.evaluator import evaluate
    from rewardlab.loading import load

    loaded = load(model)
    rm = loaded.rm
    results, preds, lengths = {}, {}, {}
    for spec in data:
        pairs = read_pairs(spec, fmt, on_invalid)
        results[spec] = evaluate(rm, pairs, scalarizer)
        if loaded.uncertainty_source is not None:  # a posterior or ensemble
            preds[spec], lengths[spec] = loaded.preference(pairs), pair_lengths(pairs)
    if preds:
        # error_auroc (σ_Δ alone) / _confidence / _combined with 95% bootstrap intervals; every set
        # after the first gets ood_auroc (the responses' σ vs the first set's), ood_auroc_pair (σ_Δ)
        # and the pair-length baseline ood_auroc_length
        for spec, extra in uncertainty_summary(preds, lengths).items():
            bayes = prediction_metrics(preds[spec])
            results[spec].update(extra, uncertainty_source=loaded.uncertainty_source, bayes=bayes)
    if as_json:
        print_json(next(iter(results.values())) if len(results) == 1 else {"sets": results})
        return
    cols = ["n", "accuracy", "longer_accuracy", "shorter_accuracy", "ece", "nll", "brier"]
    cols += ["error_auroc", "error_auroc_combined", "ood_auroc", "ood_auroc_length"] if preds else []
    console.print(results_table(f"rewardlab evaluate {model}", results, cols))
    for spec, r in results.items():
        for key in ("by_source", "by_subset", "objectives"):
            if key in r and len(r[key]) > 1:
                console.print(results_table(f"{spec} {key}", r[key], ["n", "accuracy"]))
