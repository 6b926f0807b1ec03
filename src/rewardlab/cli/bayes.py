"""``rewardlab laplace`` (fit, tune and save a posterior beside a model) and ``rewardlab bon``
(best-of-n with an uncertainty penalty)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rewardlab.bayes.config import LaplaceConfig
from rewardlab.cli.common import (
    clean_errors,
    console,
    on_invalid_option,
    print_json,
    read_pairs,
)
from rewardlab.cli.main import app
from rewardlab.cli.options import config_command
from rewardlab.cli.scalarizer import scalarizer_option


@config_command(app, "laplace", LaplaceConfig)
@clean_errors
def laplace_cmd(
    cfg: LaplaceConfig,
    model: Path = typer.Option(
        ..., "--model", help="a saved rewardlab model directory (with its LoRA adapter)"
    ),
    data: str = typer.Option(..., "--data", help="pairs to fit on (file or bundled set, e.g. hh-train)"),
    validation: str | None = typer.Option(
        None, "--validation", help="held-out pairs (needed for --prior-method grid)"
    ),
    fmt: str = typer.Option("auto", "--format", help="trl | hh | llmbar | hhh | auto"),
    limit: int = typer.Option(0, "--limit", help="use only the first N pairs (0 = all)"),
    on_invalid: str = on_invalid_option(),
) -> None:
    """Fit a Laplace posterior over the model's LoRA weights, tune its prior, save it beside the model."""
    from rewardlab.bayes.laplace import fit_laplace
    from rewardlab.models.reward_model import RewardModel

    if cfg.prior_method.value == "grid" and not validation:
        raise typer.BadParameter("--prior-method grid needs --validation pairs")
    pairs = read_pairs(data, fmt, on_invalid)
    pairs = pairs[:limit] if limit else pairs
    val = read_pairs(validation, fmt, on_invalid) if validation else None
    rm = RewardModel.load(model, adapter=True)
    post = fit_laplace(rm, pairs, cfg, validation=val)
    out = post.save(model)
    console.print(f"posterior ({cfg.hessian.value}, {cfg.subset.value}, {post.n_params} params) → {out}")
    print_json(
        {
            "posterior": str(out),
            "n_params": post.n_params,
            "prior_precision": post.prior_precision,
            **{k: v for k, v in post.tuning.items() if k not in ("grid", "val_nll")},
        }
    )


@app.command("bon")
@clean_errors
def bon_cmd(
    model: Path = typer.Option(
        ..., "--model", help="a saved rewardlab model directory (with a posterior or ensemble)"
    ),
    data: Path = typer.Option(..., "--data", help='JSONL rows {"prompt", "responses": [...]}'),
    out: Path = typer.Option(..., "--out", help="output JSONL: one row per prompt with the chosen response"),
    k: float = typer.Option(
        1.0, "--k", help="penalty weight: choose argmax mean − k·std (0 = plain best-of-n)"
    ),
    penalty: str = typer.Option("std", "--penalty", help="std (mean − k·std) | var (mean − k·var)"),
    on_invalid: str = on_invalid_option(),
    scalarizer: str | None = scalarizer_option(),
) -> None:
    """Best-of-n: pick each prompt's candidate with the highest uncertainty-penalised reward."""
    from rewardlab.bayes.predictive import best_of_n
    from rewardlab.data.responses import load_responses
    from rewardlab.loading import load

    loaded = load(model, uncertainty=bool(k))
    items = load_responses(data, on_invalid)
    prompts, candidates, critiques, keys = [], [], [], {}
    for it in items:
        key = it.meta.get("where", it.meta.get("pair"))
        if key not in keys:
            keys[key] = len(prompts)
            prompts.append(it.prompt)
            candidates.append([])
            critiques.append([])
        candidates[keys[key]].append(it.response)
        critiques[keys[key]].append(it.critique)
    crit = critiques if loaded.needs_critiques else None
    rows = best_of_n(loaded, prompts, candidates, k=k, penalty=penalty, scalarizer=scalarizer, critiques=crit)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    console.print(f"best-of-n over {len(prompts)} prompts (k={k}, {penalty}) → {out}")
