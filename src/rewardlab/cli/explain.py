"""``rewardlab explain``: a knowledge or fused RM's reasons, per feature."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rewardlab.cli.common import clean_errors, console, on_invalid_option, print_json, read_pairs
from rewardlab.cli.main import app


def _weights_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for c in ("feature", "weight", "std", "95% interval"):
        table.add_column(c, justify="left" if c == "feature" else "right")
    for r in sorted(rows, key=lambda r: abs(r["weight"]), reverse=True):
        table.add_row(
            r["feature"], f"{r['weight']:+.3f}", f"{r['std']:.3f}", f"[{r['low']:+.3f}, {r['high']:+.3f}]"
        )
    return table


def _pair_table(e: dict, top: int) -> Table:
    table = Table(
        title=f"r(a) − r(b) = {e['delta']:+.3f} ± {e['delta_std']:.3f}   P(a ≻ b) = {e['prob_a']:.3f}"
    )
    for c in ("feature", "φ(a)", "φ(b)", "weight", "contribution"):
        table.add_column(c, justify="left" if c == "feature" else "right")
    for r in e["features"][:top]:
        table.add_row(
            r["feature"], f"{r['a']:.3f}", f"{r['b']:.3f}", f"{r['weight']:+.3f}",
            f"{r['contribution']:+.3f} ± {r['std']:.3f}",
        )  # fmt: skip
    return table


@app.command("explain")
@clean_errors
def explain_cmd(
    model: Path = typer.Option(..., "--model", help="a saved knowledge or fused model directory"),
    prompt: str | None = typer.Option(None, "--prompt", help="the prompt (with --a and --b)"),
    a: str | None = typer.Option(None, "--a", help="response a"),
    b: str | None = typer.Option(None, "--b", help="response b"),
    data: str | None = typer.Option(None, "--data", help="pairs file or bundled set (with --index)"),
    index: int = typer.Option(0, "--index", help="which pair of --data (a = chosen, b = rejected)"),
    fmt: str = typer.Option("auto", "--format", help="trl | hh | llmbar | hhh | auto"),
    top: int = typer.Option(20, "--top", help="show the N largest contributions"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of tables"),
    on_invalid: str = on_invalid_option(),
) -> None:
    """Each feature's contribution w_k·(z_k(a) − z_k(b)) to r(a) − r(b), largest first (a fused
    model's neural part is the ``neural.reward`` row). Without a pair: the weights with 95% intervals."""
    from rewardlab.knowledge.explain import explain_pair
    from rewardlab.loading import load

    loaded = load(model)
    if not loaded.knowledge:
        raise typer.BadParameter(
            f"{model} is a {loaded.rm.cfg.kind.value} RM; explain needs --kind knowledge or fused"
        )
    weights = loaded.rm.bt.weight_table()
    if data is not None:
        pairs = read_pairs(data, fmt, on_invalid)
        if not 0 <= index < len(pairs):
            raise typer.BadParameter(
                f"{data} has {len(pairs)} pairs; --index must be in [0, {len(pairs) - 1}]"
            )
        prompt, a, b = pairs[index].prompt, pairs[index].chosen, pairs[index].rejected
    elif (prompt, a, b).count(None) not in (0, 3):
        raise typer.BadParameter("give --prompt, --a and --b together (or --data FILE --index I)")
    if prompt is None:
        if as_json:
            print_json({"weights": weights})
        else:
            console.print(_weights_table(weights, f"weights of {model}"))
        return
    e = explain_pair(loaded.rm, prompt, a, b)
    if as_json:
        print_json({**e, "weights": weights})
        return
    console.print(_pair_table(e, top))
    if e["neural"] is not None:
        console.print(f"neural part: {e['neural']:+.3f}; features: {e['delta'] - e['neural']:+.3f}")
