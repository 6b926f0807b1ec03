"""``rewardlab score``: one reward per response, written as JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rewardlab.cli.common import clean_errors, console, on_invalid_option
from rewardlab.cli.main import app
from rewardlab.cli.scalarizer import scalarizer_option
from rewardlab.models.fast_score import Precision


@app.command("score")
@clean_errors
def score_cmd(
    model: Path = typer.Option(..., "--model", help="a saved rewardlab model directory"),
    data: Path = typer.Option(..., "--data", help="rows {prompt, response} / {prompt, responses} or pairs"),
    out: Path = typer.Option(..., "--out", help="output JSONL: one row per response with its reward"),
    batch_tokens: int = typer.Option(8192, "--batch-tokens", help="padded tokens per forward pass"),
    uncertainty: bool = typer.Option(
        False, "--uncertainty", help="also write reward_std from the model's Laplace posterior (or ensemble)"
    ),
    scalarizer: str | None = scalarizer_option(),
    on_invalid: str = on_invalid_option(),
    precision: Precision = typer.Option(
        Precision.FP32,
        "--precision",
        help="fp32 (exact) | mixed (lower half of the blocks in bf16) | bf16 (whole model): faster on "
        "CPUs with AMX, rewards move slightly (see docs/notes/scoring_speed.md); not with --uncertainty",
    ),
) -> None:
    """Score responses; pairs files give a row each for chosen and rejected.

    With --uncertainty, ``reward`` is the predictive mean and ``reward_std`` its standard deviation
    (fit a posterior first with `rewardlab laplace`). A multi-objective model writes the scalarized
    ``reward`` (its default scalarizer, or --scalarizer) and the per-objective ``rewards``."""
    from rewardlab.data.responses import load_responses
    from rewardlab.loading import load

    try:
        loaded = load(model, uncertainty=uncertainty, precision=precision)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    items = load_responses(data, on_invalid)
    critiques = [i.critique for i in items] if loaded.needs_critiques else None
    prompts, responses = [i.prompt for i in items], [i.response for i in items]
    try:
        s = loaded.score(
            prompts,
            responses,
            critiques,
            uncertainty=uncertainty,
            scalarizer=scalarizer,
            batch_tokens=batch_tokens,
        )
    except ValueError as e:
        console.print(f"[red]error:[/red] {data}: {e}", highlight=False)
        raise typer.Exit(2) from None
    rewards, reward, reward_std = s.rewards, s.reward, s.reward_std  # (N, K), (N,), (N,) | None
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for j, (item, r) in enumerate(zip(items, rewards.tolist(), strict=True)):
            row = {"prompt": item.prompt, "response": item.response, "reward": float(reward[j]), **item.meta}
            if reward_std is not None:
                row["reward_std"] = float(reward_std[j])
            if len(r) > 1:
                row["rewards"] = dict(zip(loaded.objectives, r, strict=True))
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    console.print(f"scored {len(items)} responses → {out}")
