"""Tables and plot of the critiques recipe (``recipes/critiques.py``): OUT/table.md, OUT/plot.png.

One table for the in-domain test split (all conditions) and one per out-of-domain eval set (the
conditions that have critiques there), accuracy mean ± 95% t-interval over seeds, the gap to
``none`` paired per seed, both length heuristics (and, on FeedbackQA, a lexicon read of the human
critiques alone) on the same pairs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from critique_sources import CONDITIONS

from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import length_heuristics, mean_ci95

HEURISTICS = {
    "longer_accuracy": "longer wins",
    "shorter_accuracy": "shorter wins",
    "critique_lexicon": "critique lexicon",
}
POSITIVE = re.compile(
    r"\b(excellent|great|good|perfect|clear|detailed|answers the question|directly|helpful|acceptable|"
    r"informative)\b"
)
NEGATIVE = re.compile(
    r"\b(not|doesn't|does not|no|bad|irrelevant|nothing|isn't|unrelated|fails|vague|could be improved|"
    r"lacks)\b"
)


def cue_score(text: str) -> int:
    """Positive minus negative cue words of a critique."""
    text = text.lower()
    return len(POSITIVE.findall(text)) - len(NEGATIVE.findall(text))


def cue_gaps(test: list[PreferencePair]) -> list[int]:
    """Per pair, :func:`cue_score` of the chosen answer's critique minus the rejected one's."""
    return [cue_score(p.critiques["chosen"]) - cue_score(p.critiques["rejected"]) for p in test]


def critique_lexicon(test: list[PreferencePair]) -> float:
    """A crude reading of the critiques alone: the pair is right when the chosen answer's
    critique has the higher :func:`cue_score` (ties count wrong)."""
    return sum(g > 0 for g in cue_gaps(test)) / len(test)


def lexicon_score(test: list[PreferencePair]) -> float:
    """The same lexicon read of a condition's critiques, ties counted as half right (LLM critics
    often write the same verdict for both answers): how much preference the critiques carry."""
    gaps = cue_gaps(test)
    return (sum(g > 0 for g in gaps) + 0.5 * sum(g == 0 for g in gaps)) / len(test)


def heuristics(test: list[PreferencePair], lexicon: bool = True) -> dict:
    """Both length heuristics (and the critique lexicon when the pairs carry critiques)."""
    out = length_heuristics([p.chosen for p in test], [p.rejected for p in test])
    return out | ({"critique_lexicon": critique_lexicon(test)} if lexicon else {})


def _fmt(xs: list[float]) -> str:
    m, h = mean_ci95(xs)
    return f"{100 * m:.1f} ± {100 * h:.1f}"


def collect(rows: list[dict], where: str = "test") -> dict:
    """{(condition, size): {seed: accuracy}} on the test split (``where="test"``) or an eval set."""
    out: dict = {}
    for r in rows:
        m = r["test"] if where == "test" else r.get("eval", {}).get(where)
        if m is not None:
            out.setdefault((r["condition"], r["size"]), {})[r["seed"]] = m["accuracy"]
    return out


def paired_gap(acc: dict, a: str, b: str, size: int) -> list[float]:
    """Per-seed accuracy differences a − b at ``size`` (same training pairs, same seed)."""
    xa, xb = acc.get((a, size), {}), acc.get((b, size), {})
    return [xa[s] - xb[s] for s in sorted(set(xa) & set(xb))]


def conditions_of(acc: dict) -> list[str]:
    """The conditions present, human first and none last."""
    return sorted({k[0] for k in acc}, key=lambda c: (c != "human", c == "none", c))


def table(acc: dict, base: dict) -> list[str]:
    """Markdown rows: one per training size, conditions, gaps to ``none`` and the baselines."""
    conds, sizes = conditions_of(acc), sorted({k[1] for k in acc})
    gaps = [(c, "none") for c in conds if c != "none" and "none" in conds]
    head = ["train pairs", "seeds", *conds, *[f"{a} − {b}" for a, b in gaps]]
    head += [HEURISTICS[k] for k in HEURISTICS if k in base]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for z in sizes:
        n = max(len(acc.get((c, z), {})) for c in conds)
        cells = [_fmt(list(acc[(c, z)].values())) if (c, z) in acc else "" for c in conds]
        cells += [_fmt(g) if (g := paired_gap(acc, a, b, z)) else "" for a, b in gaps]
        cells += [f"{100 * base[k]:.1f}" for k in HEURISTICS if k in base]
        lines.append("| " + " | ".join([str(z), str(n), *cells]) + " |")
    return lines


def write_report(
    results: Path, out: Path, baselines: dict[str, dict], dataset: str, lexicons: dict | None = None
) -> None:
    """OUT/table.md and OUT/plot.png from the result rows; ``baselines``: {"test" or eval set:
    heuristics on its pairs}; ``lexicons``: {condition: :func:`lexicon_score` of its test pairs}."""
    rows = [json.loads(line) for line in results.open()] if results.exists() else []
    if not rows:
        return
    acc = collect(rows)
    lines = [f"### In domain: {dataset}-test", "", *table(acc, baselines["test"]), ""]
    for where in (w for w in baselines if w != "test"):
        if ood := collect(rows, where):
            lines += [
                f"### Out of domain: {where} (trained on {dataset})",
                "",
                *table(ood, baselines[where]),
                "",
            ]
    if lexicons:
        lines += ["What the critiques alone carry: the lexicon read of each condition's test critiques"]
        lines += ["(ties ½): " + ", ".join(f"`{c}` {100 * v:.1f}" for c, v in lexicons.items()) + ".", ""]
    lines += [
        "Accuracy (%), mean ± 95% t-interval over seeds; the gap columns are paired per seed (same",
        "training pairs); `seeds` is the most seeds any condition has there. Baselines on the same",
        "pairs: longer / shorter response wins; the critique lexicon reads only the two critiques",
        "(positive minus negative cue words; ties count wrong). Conditions:",
        *[f"- `{c}`: {CONDITIONS.get(c).description}" for c in conditions_of(acc)],
    ]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot(acc, baselines["test"], dataset, out / "plot.png")


def plot(acc: dict, base: dict, dataset: str, path: Path) -> None:
    """Accuracy vs training pairs per condition (95% CI band); length heuristics as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds, sizes = conditions_of(acc), sorted({k[1] for k in acc})
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in conds:
        zs = [z for z in sizes if (c, z) in acc]
        ms = [mean_ci95(list(acc[(c, z)].values())) for z in zs]
        m, h = [100 * a for a, _ in ms], [100 * b for _, b in ms]
        ax.plot(zs, m, marker="o", label=c)
        lo, hi = [a - b for a, b in zip(m, h, strict=True)], [a + b for a, b in zip(m, h, strict=True)]
        ax.fill_between(zs, lo, hi, alpha=0.2)
    for k, style in (("longer_accuracy", "--"), ("shorter_accuracy", ":"), ("critique_lexicon", "-.")):
        if k in base:
            ax.axhline(100 * base[k], color="k", ls=style, lw=1, label=HEURISTICS[k])
    ax.axhline(50, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(z) for z in sizes])
    ax.minorticks_off()
    ax.set_xlabel(f"training pairs ({dataset})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Critique-conditioned MiniLM RMs, {dataset}-test (mean ± 95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
