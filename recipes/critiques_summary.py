"""Pool the critique recipe's runs over training sets: which halves of seed 000's claim hold.

``python recipes/critiques_summary.py DIR [DIR ...] --out OUT`` reads each run directory of
``recipes/critiques.py`` (its ``config.json`` names the training set, ``results.jsonl`` the runs)
and writes OUT/table.md and OUT/plot.png: for every critique condition, the gap to ``none``
(accuracy, same training pairs and seed) pooled over training sets × seeds, per training size,
in domain (each set's own test split) and on every shared out-of-domain eval set, as
mean ± 95% t-interval over the pooled gaps with their count. Two rows answer the claim directly:
the smallest size ("good critiques help most at low data") and each set's largest size.

The pooled interval treats each (training set, seed) gap as one draw; it does not add the test
sets' own sampling noise (80–200 pairs each), so it is, if anything, too narrow.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from critiques_report import collect, conditions_of, paired_gap

from rewardlab.evaluate.metrics import mean_ci95

LARGEST = "largest"


def load_run(d: Path) -> tuple[str, list[dict]]:
    """(training set, result rows) of one run directory; a clear error when it is not one."""
    cfg, res = d / "config.json", d / "results.jsonl"
    for f in (cfg, res):
        if not f.is_file():
            raise SystemExit(f"{d}: not a critiques run directory ({f.name} missing)")
    rows = []
    for i, line in enumerate(res.open(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise SystemExit(f"{res}:{i}: not JSON ({e.msg})") from None
    return json.loads(cfg.read_text())["dataset"], rows


def pooled_gaps(runs: dict[str, list[dict]], where: str) -> dict[tuple[str, int | str], dict]:
    """{(condition, size or "largest"): {"gaps": [...], "sets": [...]}} of condition − none,
    pooled over training sets and seeds; ``where``: "test" (in domain) or an eval set."""
    out: dict = {}
    for dataset, rows in runs.items():
        acc = collect(rows, where)
        sizes = sorted({z for c, z in acc if c == "none"})
        for cond in sorted({c for c, _ in acc} - {"none"}):
            for size in sizes:
                gaps = paired_gap(acc, cond, "none", size)
                keys = [size] + ([LARGEST] if size == sizes[-1] else [])
                for key in keys if gaps else []:
                    cell = out.setdefault((cond, key), {"gaps": [], "sets": []})
                    cell["gaps"] += gaps
                    cell["sets"].append(f"{dataset}@{size}" if key == LARGEST else dataset)
    return out


def _cell(cell: dict | None) -> str:
    if not cell:
        return ""
    m, h = mean_ci95(cell["gaps"])
    star = "**" if abs(m) > h and len(cell["gaps"]) > 1 else ""
    return f"{star}{100 * m:+.1f} ± {100 * h:.1f}{star} ({len(cell['gaps'])})"


def table(pooled: dict) -> list[str]:
    """Markdown rows: sizes (then "largest") × conditions, pooled gap cells."""
    conds = conditions_of(pooled)
    sizes = sorted({z for _, z in pooled if z != LARGEST}) + [LARGEST]
    lines = ["| train pairs | " + " | ".join(f"{c} − none" for c in conds) + " | training sets |"]
    lines.append("|---" * (len(conds) + 2) + "|")
    for z in sizes:
        cells = [_cell(pooled.get((c, z))) for c in conds]
        sets = sorted({s for c in conds for s in pooled.get((c, z), {}).get("sets", [])})
        label = "each set's largest" if z == LARGEST else str(z)
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + ", ".join(sets) + " |")
    return lines


def write_summary(runs: dict[str, list[dict]], out: Path) -> None:
    """OUT/table.md (in domain, then every eval set all runs share) and OUT/plot.png."""
    shared = set.intersection(*({w for r in rows for w in r.get("eval", {})} for rows in runs.values()))
    in_domain = pooled_gaps(runs, "test")
    lines = [f"### In domain (each training set's own test split): {', '.join(runs)}", ""]
    lines += [*table(in_domain), ""]
    for where in sorted(shared):
        lines += [f"### Out of domain: {where}", "", *table(pooled_gaps(runs, where)), ""]
    lines += [
        "Accuracy gap to `none` in points, mean ± 95% t-interval over the pooled (training set,",
        "seed) gaps, their count in brackets; bold where the interval excludes 0. Each gap is",
        "paired: the same training pairs and seed with and without the critiques. The test sets'",
        "own sampling noise is not in the interval.",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot(in_domain, out / "plot.png", list(runs))


def plot(pooled: dict, path: Path, datasets: list[str]) -> None:
    """Pooled in-domain gap to ``none`` vs training pairs, one line per condition (95% band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for cond in conditions_of(pooled):
        zs = sorted(z for c, z in pooled if c == cond and z != LARGEST)
        ms = [mean_ci95(pooled[(cond, z)]["gaps"]) for z in zs]
        m = [100 * a for a, _ in ms]
        n_sets = len(set(pooled[(cond, zs[0])]["sets"]))
        ax.plot(zs, m, marker="o", label=f"{cond} ({n_sets} training set{'s' * (n_sets > 1)})")
        h = [100 * b for _, b in ms]
        lo = [a - b for a, b in zip(m, h, strict=True)]
        hi = [a + b for a, b in zip(m, h, strict=True)]
        ax.fill_between(zs, lo, hi, alpha=0.15)
    ax.axhline(0, color="k", lw=1)
    ax.set_xscale("log")
    sizes = sorted({z for _, z in pooled if z != LARGEST})
    ax.set_xticks(sizes, [str(z) for z in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training pairs")
    ax.set_ylabel("accuracy − none (points)")
    ax.set_title(f"Critiques vs none, in domain, pooled over {', '.join(datasets)}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Read the run directories, write the pooled table and plot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="run directories of recipes/critiques.py")
    ap.add_argument("--out", type=Path, default=Path("runs/critiques-summary"))
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {}
    for d in args.runs:
        dataset, rows = load_run(d)
        if dataset in runs:
            raise SystemExit(f"{d}: a second run on {dataset!r}; pass one directory per training set")
        runs[dataset] = rows
    write_summary(runs, args.out)
    print((args.out / "table.md").read_text())


if __name__ == "__main__":
    main()
