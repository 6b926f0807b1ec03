"""Table and plot for recipes/multi_objective.py (mean ± 95% t-interval over seeds)."""

from __future__ import annotations

import json
from pathlib import Path

from rewardlab.evaluate.metrics import mean_ci95
from rewardlab.report.collect import multi_objective_groups

ci = mean_ci95  # mean and 95% half-width over seeds (the recipes' name for it)


def fmt(xs: list[float]) -> str:
    m, h = ci(xs)
    return f"{100 * m:.1f} ± {100 * h:.1f}"


def write_report(results: Path, out: Path, heuristics: dict[str, dict]) -> None:
    """Write ``out/table.md`` and ``out/plot.png`` from ``results`` (JSONL)."""
    rows = [json.loads(line) for line in results.open()] if results.exists() else []
    if not rows:
        return
    data = multi_objective_groups(rows)
    sets = list(heuristics)
    lines = [
        "| experiment | train pairs | model | seeds | " + " | ".join(sets) + " |",
        "|---" * (4 + len(sets)) + "|",
    ]
    for (exp, size, model), per_set in sorted(data.items()):
        n = len(next(iter(per_set.values()))["accuracy"])
        lines.append(
            f"| {exp} | {size} | {model} | {n} | "
            + " | ".join(fmt(per_set[s]["accuracy"]) if s in per_set else "" for s in sets)
            + " |"
        )
    for h in ("longer_accuracy", "shorter_accuracy"):
        lines.append(
            f"| — | — | {h.split('_')[0]} wins | — | "
            + " | ".join(f"{100 * heuristics[s][h]:.1f}" for s in sets)
            + " |"
        )
    lines += ["", "Scalarizers and single objectives on the same multi-objective heads:", ""]
    lines.append("| experiment | train pairs | combination | " + " | ".join(sets) + " |")
    lines.append("|---" * (3 + len(sets)) + "|")
    for (exp, size, model), per_set in sorted(data.items()):
        if not model.startswith("multi"):
            continue
        extra = sorted({m for s in per_set.values() for m in s if ":" in m})
        for m in extra:
            lines.append(
                f"| {exp} | {size} | {m} | "
                + " | ".join(fmt(per_set[s][m]) if m in per_set.get(s, {}) else "" for s in sets)
                + " |"
            )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot(data, sets, heuristics, out / "plot.png")


def plot(data: dict, sets: list[str], heuristics: dict, path: Path) -> None:
    """Grouped bars (accuracy per set, 95% CI) per model; length heuristics as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def panel(exp: str, size: int) -> tuple:
        # the mix and debias panels compare training sets, not sizes
        return (exp, None) if exp in ("mix", "debias") else (exp, size)

    exps = sorted({panel(e, s) for e, s, _ in data}, key=str)
    fig, axes = plt.subplots(len(exps), 1, figsize=(11, 3.6 * len(exps)), squeeze=False)
    for ax, (exp, size) in zip(axes[:, 0], exps, strict=True):
        keys = sorted(k for k in data if panel(k[0], k[1]) == (exp, size))
        width = 0.8 / max(len(keys), 1)
        for j, key in enumerate(keys):
            per_set = data[key]
            ms = [ci(per_set[s]["accuracy"]) if s in per_set else (float("nan"), 0) for s in sets]
            xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(sets))]
            label = f"{key[2]} ({key[1]} pairs)" if exp in ("mix", "debias") else key[2]
            ax.bar(xs, [m for m, _ in ms], width, yerr=[h for _, h in ms], capsize=3, label=label)
        for h, mark in (("longer_accuracy", "^"), ("shorter_accuracy", "v")):
            ax.scatter(
                range(len(sets)),
                [heuristics[s][h] for s in sets],
                marker=mark,
                color="k",
                zorder=3,
                label=h.split("_")[0] + " wins",
            )
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_xticks(range(len(sets)), sets)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        what = {
            "mix": "HH harmless / + PandaLM + qa-feedback",
            "debias": "length debiasing on the mix",
            "mixsize": f"the mix, at most {size} training pairs per source",
        }.get(exp, f"{size} training pairs")
        ax.set_title(f"{exp}: {what} (accuracy, mean ± 95% CI over seeds)")
        ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
