"""Score every predictive that ``recipes/uncertainty.py`` saved: ``results.jsonl``, ``table.md``,
plots. Bootstrap 95% intervals (1,000 resamples of the pairs; OOD: in- and out-of-distribution
pairs resampled independently).

    python recipes/uncertainty_report.py --work runs/uncertainty --out docs/results/uncertainty
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from scipy.stats import spearmanr
from uncertainty import IN_SET, OOD_SETS, eval_sets

from rewardlab.bayes.uncertainty import (
    bootstrap_ci,
    error_auroc,
    error_auroc_combined,
    ood_auroc,
    pair_lengths,
    probit_preference,
)
from rewardlab.evaluate.metrics import expected_calibration_error, negative_log_likelihood

DEFAULT = "laplace/validation/kron/lora/marglik"  # what `rewardlab laplace --data hh-validation` fitted


def confidence_score(p: torch.Tensor) -> torch.Tensor:
    """1 − max(p, 1 − p): the plain confidence as an uncertainty."""
    return 1 - torch.maximum(p, 1 - p)


def ood_mean(*u: torch.Tensor) -> float:
    """Mean OOD-AUROC over the shifted sets: u = (u_in, u_out_1, …)."""
    return sum(ood_auroc(u[0], x) for x in u[1:]) / (len(u) - 1)


def row_metrics(name: str, pred: dict, probs: dict | None, lengths: dict, n_boot: int) -> dict:
    """Every metric of one predictive, each as [value, lower, upper]."""
    mu, var = pred[IN_SET][:2]
    p = probs[IN_SET] if probs else probit_preference(mu, var).prob
    std = var.sqrt()
    conf = confidence_score(p)
    row: dict = {"name": name, "n": len(mu)}
    row["accuracy"] = bootstrap_ci(lambda m: float((m > 0).double().mean()), (mu,), n_boot=n_boot)
    row["ece"] = bootstrap_ci(expected_calibration_error, (p,), n_boot=n_boot)
    row["nll"] = bootstrap_ci(negative_log_likelihood, (p,), n_boot=n_boot)
    row["error_auroc"] = bootstrap_ci(error_auroc, (mu, std), n_boot=n_boot)
    row["error_auroc_confidence"] = bootstrap_ci(error_auroc, (mu, conf), n_boot=n_boot)
    row["error_auroc_combined"] = bootstrap_ci(error_auroc_combined, (mu, var), n_boot=n_boot)
    row["combined_minus_confidence"] = bootstrap_ci(
        lambda m, v, c: error_auroc_combined(m, v) - error_auroc(m, c), (mu, var, conf), n_boot=n_boot
    )
    row["spearman_std_abs_margin"] = float(spearmanr(std, mu.abs()).statistic)
    row["spearman_std_length"] = float(spearmanr(std, lengths[IN_SET]).statistic)
    for s in OOD_SETS:
        row[f"ood_auroc:{s}"] = bootstrap_ci(ood_auroc, (std,), (pred[s][1].sqrt(),), n_boot=n_boot)
    row["ood_auroc_mean"] = bootstrap_ci(
        ood_mean, (std,), *[(pred[s][1].sqrt(),) for s in OOD_SETS], n_boot=n_boot
    )
    if len(pred[IN_SET]) == 3:  # the responses' own std, √((v_c + v_r) / 2)
        rstd = {s: pred[s][2].clamp_min(0).sqrt() for s in pred}
        row["error_auroc_response"] = bootstrap_ci(error_auroc, (mu, rstd[IN_SET]), n_boot=n_boot)
        for s in OOD_SETS:
            row[f"ood_auroc_response:{s}"] = bootstrap_ci(
                ood_auroc, (rstd[IN_SET],), (rstd[s],), n_boot=n_boot
            )
        row["ood_auroc_response_mean"] = bootstrap_ci(
            ood_mean, (rstd[IN_SET],), *[(rstd[s],) for s in OOD_SETS], n_boot=n_boot
        )
    return row


def baseline_rows(lengths: dict, n_boot: int) -> list[dict]:
    """The response-length OOD baseline (total characters of the pair as the score)."""
    row: dict = {"name": "baseline: pair length (characters)"}
    for s in OOD_SETS:
        row[f"ood_auroc:{s}"] = bootstrap_ci(ood_auroc, (lengths[IN_SET],), (lengths[s],), n_boot=n_boot)
    groups = [(lengths[IN_SET],)] + [(lengths[s],) for s in OOD_SETS]
    row["ood_auroc_mean"] = bootstrap_ci(ood_mean, *groups, n_boot=n_boot)
    return [row]


def map_row(pred: dict, n_boot: int) -> dict:
    """The MAP RM alone: p = σ(μ_Δ), its confidence as the only uncertainty."""
    mu = pred[IN_SET][0]
    p = torch.sigmoid(mu)
    return {
        "name": "MAP: σ(Δ) confidence",
        "n": len(mu),
        "accuracy": bootstrap_ci(lambda m: float((m > 0).double().mean()), (mu,), n_boot=n_boot),
        "ece": bootstrap_ci(expected_calibration_error, (p,), n_boot=n_boot),
        "nll": bootstrap_ci(negative_log_likelihood, (p,), n_boot=n_boot),
        "error_auroc_confidence": bootstrap_ci(error_auroc, (mu, confidence_score(p)), n_boot=n_boot),
    }


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, list | tuple):
        x, lo, hi = v
        if math.isnan(lo):
            return f"{x:.{digits}f}"
        return f"{x:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(rows: list[dict]) -> str:
    cols = [
        ("accuracy", "acc"),
        ("ece", "ECE"),
        ("nll", "NLL"),
        ("error_auroc", "error-AUROC σ"),
        ("error_auroc_confidence", "error-AUROC conf."),
        ("error_auroc_combined", "error-AUROC combined"),
        ("combined_minus_confidence", "combined − conf."),
        ("error_auroc_response", "error-AUROC response σ"),
        ("ood_auroc_mean", "OOD mean, pair σ_Δ"),
        ("ood_auroc_response_mean", "OOD mean, response σ"),
    ]
    head = "| predictive | λ | " + " | ".join(c[1] for c in cols) + " |"
    lines = [head, "|---" * (len(cols) + 2) + "|"]
    for r in rows:
        lam = r.get("prior_precision")
        lam_s = f"{lam[0]:.3g}" if lam else "–"
        lines.append(f"| {r['name']} | {lam_s} | " + " | ".join(fmt(r.get(c[0])) for c in cols) + " |")
    return "\n".join(lines)


def ood_table(rows: list[dict]) -> str:
    """OOD-AUROC vs hh-test per shifted set, for the pair std σ_Δ and the responses' own std."""
    lines = [
        "| predictive | score | " + " | ".join(OOD_SETS) + " | mean |",
        "|---" * (len(OOD_SETS) + 3) + "|",
    ]
    for r in rows:
        for key, label in (("ood_auroc", "pair σ_Δ"), ("ood_auroc_response", "response σ")):
            if f"{key}_mean" not in r:
                continue
            label = "pair length" if r["name"].startswith("baseline") else label
            cells = [fmt(r.get(f"{key}:{s}")) for s in OOD_SETS] + [fmt(r.get(f"{key}_mean"))]
            lines.append(f"| {r['name']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def side_table(rows: list[dict]) -> str:
    """Correlations of σ_Δ, costs and where the variance sits."""
    lines = [
        "| predictive | params | ρ(σ, abs margin) | ρ(σ, length) | fit s | variance/mean cost |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "spearman_std_abs_margin" not in r:
            continue
        cost = r.get("cost")
        c = f"{cost['ratio']:.2f}×" if cost else "–"
        c += f" (full top layer: {cost['ratio_full_top']:.2f}×)" if cost and "ratio_full_top" in cost else ""
        lines.append(
            f"| {r['name']} | {r.get('n_params', '–')} | {r['spearman_std_abs_margin']:.2f} | "
            f"{r['spearman_std_length']:.2f} | {r.get('fit_seconds', '–')} | {c} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", default="runs/uncertainty")
    ap.add_argument("--out", default="docs/results/uncertainty")
    ap.add_argument("--ood-limit", type=int, default=200)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = eval_sets(args.ood_limit)
    lengths = {s: pair_lengths(p) for s, p in sets.items()}
    saved = {}
    for f in sorted((work / "preds").glob("*.pt")):
        d = torch.load(f, weights_only=False)
        saved[d["meta"]["name"]] = d
    order = sorted(saved, key=lambda n: (n != DEFAULT, n.startswith("ensemble"), n))
    rows = [map_row(saved[order[0]]["pred"], args.boot)]
    extras = {}
    for name in order:
        d = saved[name]
        meta = {k: v for k, v in d["meta"].items() if k not in ("sweep", "blocks", "probs")}
        rows.append({**meta, **row_metrics(name, d["pred"], d["meta"].get("probs"), lengths, args.boot)})
        extras[name] = d
    rows += baseline_rows(lengths, args.boot)
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    (out / "table.md").write_text(
        "# Uncertainty of the demo RM (hh-test errors; OOD vs hh-test)\n\n"
        + table(rows)
        + "\n\n## OOD-AUROC vs hh-test\n\n"
        + ood_table(rows)
        + "\n\n## σ_Δ against the margin and length (Spearman, hh-test), fit time, cost\n\n"
        + side_table(rows)
        + "\n\n"
        + "\n\n## The prior precision λ (same fit, λ swept)\n\n"
        + sweep_table(extras)
        + "\n\n## Which weights carry v_Δ (hh-test, marglik λ)\n\n"
        + block_table(extras, saved)
        + "\n"
    )
    plots(out, extras, lengths, rows)
    print((out / "table.md").read_text())


def sweep_table(extras: dict) -> str:
    """Error- and OOD-AUROC of σ_Δ as the prior precision λ moves, on the same fit."""
    lines = ["| fit | λ | error-AUROC σ | error-AUROC combined | OOD mean |", "|---|---|---|---|---|"]
    for name, d in extras.items():
        sweep = d["meta"].get("sweep")
        if not sweep:
            continue
        mu = d["pred"][IN_SET][0]
        for lam, var in sweep.items():
            o = ood_mean(var[IN_SET].sqrt(), *[var[s].sqrt() for s in OOD_SETS])
            lines.append(
                f"| {name} | {float(lam):.0e} | {error_auroc(mu, var[IN_SET].sqrt()):.2f} | "
                f"{error_auroc_combined(mu, var[IN_SET]):.2f} | {o:.2f} |"
            )
    return "\n".join(lines)


def block_table(extras: dict, saved: dict) -> str:
    """Share of v_Δ per weight group (mean over hh-test pairs) and each group's own error-AUROC."""
    lines = ["| fit | weight group | share of v_Δ | error-AUROC of its σ |", "|---|---|---|---|"]
    for name, d in extras.items():
        blocks = d["meta"].get("blocks")
        if not blocks or d["meta"].get("prior") != "marglik":
            continue
        mu = d["pred"][IN_SET][0]
        total = sum(float(v.mean()) for v in blocks.values())
        for g, v in sorted(blocks.items()):
            lines.append(
                f"| {name} | {g} | {float(v.mean()) / total:.2f} | {error_auroc(mu, v.sqrt()):.2f} |"
            )
    return "\n".join(lines)


def plots(out: Path, extras: dict, lengths: dict, rows: list[dict]) -> None:
    """The three figures: σ against margin and length, the prior sweep, the AUROC intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_std(plt, out, extras, lengths)
    plot_sweep(plt, out, extras)
    plot_auroc(plt, out, rows)


def plot_std(plt, out: Path, extras: dict, lengths: dict) -> None:
    """σ_Δ against the MAP margin and the pair length, right and wrong pairs apart."""
    names = [n for n in extras if n == DEFAULT] + [n for n in extras if n != DEFAULT][:3]
    fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7), squeeze=False)
    for j, name in enumerate(names):
        mu, var = extras[name]["pred"][IN_SET][:2]
        std, wrong = var.sqrt(), mu <= 0
        for i, (x, label) in enumerate(
            ((mu.abs(), "|μ_Δ| (MAP margin)"), (lengths[IN_SET], "pair length (chars)"))
        ):
            ax = axes[i, j]
            ax.scatter(x[~wrong], std[~wrong], s=6, alpha=0.5, label="right")
            ax.scatter(x[wrong], std[wrong], s=6, alpha=0.7, c="red", label="wrong")
            ax.set_xlabel(label)
            ax.set_ylabel("σ_Δ")
            if i == 1:
                ax.set_xscale("log")
            ax.set_title(name.replace("laplace/", ""), fontsize=8)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "std_vs_margin_length.png", dpi=110)
    plt.close(fig)


def plot_sweep(plt, out: Path, extras: dict) -> None:
    """Error- and OOD-AUROC of σ_Δ over the prior-precision sweep."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, d in extras.items():
        sweep = d["meta"].get("sweep")
        if not sweep:
            continue
        mu = d["pred"][IN_SET][0]
        lams = [float(k) for k in sweep]
        err = [error_auroc(mu, v[IN_SET].sqrt()) for v in sweep.values()]
        ood = [ood_mean(v[IN_SET].sqrt(), *[v[s].sqrt() for s in OOD_SETS]) for v in sweep.values()]
        (line,) = ax.plot(lams, err, marker="o", label=f"error {name.replace('laplace/', '')}")
        ax.plot(lams, ood, marker="s", ls="--", color=line.get_color(), label="OOD mean (same fit)")
        lam0 = d["meta"].get("prior_precision")
        if lam0:
            ax.axvline(lam0[0], color=line.get_color(), lw=0.5)
    ax.axhline(0.5, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("prior precision λ (vertical: marglik's λ)")
    ax.set_ylabel("AUROC of σ_Δ")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "prior_sweep.png", dpi=110)
    plt.close(fig)


def plot_auroc(plt, out: Path, rows: list[dict]) -> None:
    """Each predictive's AUROCs with their intervals."""
    shown = [r for r in rows if "error_auroc" in r or "ood_auroc_mean" in r]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * len(shown) + 1.5), sharey=True)
    ys = list(range(len(shown)))
    for key, off, color in (
        ("error_auroc", -0.2, "C0"),
        ("error_auroc_combined", 0.0, "C1"),
        ("error_auroc_confidence", 0.2, "C2"),
    ):
        for y, r in zip(ys, shown, strict=True):
            if key in r:
                x, lo, hi = r[key]
                axes[0].errorbar(x, y + off, xerr=[[x - lo], [hi - x]], fmt="o", color=color, ms=3)
        axes[0].plot(
            [], [], "o", color=color, label=key.replace("error_auroc", "error-AUROC").replace("_", " ")
        )
    for y, r in zip(ys, shown, strict=True):
        if "ood_auroc_mean" in r:
            x, lo, hi = r["ood_auroc_mean"]
            axes[1].errorbar(x, y, xerr=[[x - lo], [hi - x]], fmt="o", color="C3", ms=3)
    for ax, title, target in (
        (axes[0], "error-AUROC on hh-test", 0.6),
        (axes[1], "OOD-AUROC mean (4 sets)", 0.75),
    ):
        ax.axvline(0.5, color="k", lw=0.5)
        ax.axvline(target, color="g", lw=0.8, ls=":")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(ys, [r["name"].replace("laplace/", "") for r in shown], fontsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "auroc.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
