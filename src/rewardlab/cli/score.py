"""``rewardlab score``: one reward per response, written as JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rewardlab.cli.common import clean_errors, console
from rewardlab.cli.main import app


@app.command("score")
@clean_errors
def score_cmd(
    model: Path = typer.Option(..., "--model", help="a saved rewardlab model directory"),
    data: Path = typer.Option(..., "--data", help="rows {prompt, response} / {prompt, responses} or pairs"),
    out: Path = typer.Option(..., "--out", help="output JSONL: one row per response with its reward"),
    batch_tokens: int = typer.Option(8192, "--batch-tokens", help="padded tokens per forward pass"),
) -> None:
    """Score responses; pairs files give a row each for chosen and rejected."""
    from rewardlab.data.responses import load_responses
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.load(model)
    items = load_responses(data)
    critiques = [i.critique for i in items] if rm.cfg.critiques else None
    try:
        rewards = rm.score(
            [i.prompt for i in items], [i.response for i in items], critiques, batch_tokens=batch_tokens
        )
    except ValueError as e:
        console.print(f"[red]error:[/red] {data}: {e}", highlight=False)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for item, r in zip(items, rewards.tolist(), strict=True):
            row = {"prompt": item.prompt, "response": item.response, "reward": r[0], **item.meta}
            if len(r) > 1:
                row["rewards"] = dict(zip(rm.cfg.objectives, r, strict=True))
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    console.print(f"scored {len(items)} responses → {out}")
