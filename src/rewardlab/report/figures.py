"""The report's figures: matplotlib (Agg) drawings returned as ``data:image/png;base64`` URIs, so
the page embeds every image and needs no other file."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

DPI = 100
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def MaxNLocator(*args, **kw):  # noqa: N802 - matplotlib's class, imported lazily
    """``matplotlib.ticker.MaxNLocator`` (matplotlib is imported only when a figure is drawn)."""
    from matplotlib.ticker import MaxNLocator as Locator

    return Locator(*args, **kw)


def to_data_uri(fig, top: float = 1.0) -> str:
    """PNG of ``fig`` as a data URI (axes below ``top``, a figure fraction); closes the figure."""
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (3.6, 2.9)):
    plt = _plt()
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def accuracy_bars(sets: dict[str, dict], intervals: dict[str, tuple[float, float]]) -> str:
    """Per set: RM accuracy (with its 95% ``intervals`` (low, high)) beside "longer wins" and
    "shorter wins"."""
    plt = _plt()
    names = list(sets)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 3.4))
    width = 0.27
    for j, (key, label) in enumerate(
        (("accuracy", "RM"), ("longer_accuracy", "longer wins"), ("shorter_accuracy", "shorter wins"))
    ):
        ys = [sets[n].get(key, float("nan")) for n in names]
        err = [
            [y - intervals[n][0] for n, y in zip(names, ys, strict=True)],
            [intervals[n][1] - y for n, y in zip(names, ys, strict=True)],
        ]
        xs = [i + (j - 1) * width for i in range(len(names))]
        ax.bar(
            xs,
            ys,
            width,
            yerr=err if key == "accuracy" else None,
            capsize=3,
            label=label,
            color=COLORS[j] if j == 0 else ["#bbbbbb", "#777777"][j - 1],
        )
    ax.axhline(0.5, color="k", lw=0.6, ls=":")
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set(ylim=(0, 1), ylabel="pairwise accuracy")
    ax.legend(fontsize=8, ncol=3, loc="upper left")
    return to_data_uri(fig)


def reliability(panels: dict[str, dict]) -> str:
    """One panel per set: accuracy per confidence bin (bars) against the diagonal; each panel's
    data is ``{"conf": [...], "acc": [...], "count": [...], "edges": [...], "ece": float}``."""
    fig, axes = _grid(len(panels))
    for ax, (name, d) in zip(axes, panels.items(), strict=True):
        edges = d["edges"]
        w = edges[1] - edges[0]
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        ax.bar(centers, d["acc"], width=w * 0.92, color=COLORS[0], alpha=0.85, label="accuracy")
        ax.plot([0.5, 1], [0.5, 1], "k--", lw=0.8, label="perfect calibration")
        ax.scatter(d["conf"], d["acc"], color=COLORS[3], s=10, zorder=3, label="(mean confidence, accuracy)")
        for c, a, k in zip(centers, d["acc"], d["count"], strict=True):
            if k:
                ax.text(c, a + 0.025, str(k), ha="center", fontsize=6)
        ax.set(xlim=(0.5, 1), ylim=(0, 1.1), title=f"{name}  (ECE {d['ece']:.3f}, n={sum(d['count'])})")
        ax.set_xlabel("confidence max(p, 1−p)", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.title.set_fontsize(9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, frameon=False)
    return to_data_uri(fig, top=1 - 0.3 / fig.get_figheight())


def reward_histograms(panels: dict[str, tuple[Sequence[float], Sequence[float]]]) -> str:
    """One panel per set: histograms of the chosen and the rejected responses' rewards."""
    fig, axes = _grid(len(panels))
    for ax, (name, (chosen, rejected)) in zip(axes, panels.items(), strict=True):
        lo, hi = min(min(chosen), min(rejected)), max(max(chosen), max(rejected))
        bins = [lo + (hi - lo + 1e-9) * i / 24 for i in range(25)]
        ax.hist(rejected, bins=bins, histtype="stepfilled", alpha=0.3, color=COLORS[3], label="rejected")
        ax.hist(rejected, bins=bins, histtype="step", lw=1.0, color=COLORS[3])
        ax.hist(chosen, bins=bins, histtype="step", lw=1.6, color=COLORS[2], label="chosen")
        mc, mr = sum(chosen) / len(chosen), sum(rejected) / len(rejected)
        ax.axvline(mc, color=COLORS[2], lw=1.2)
        ax.axvline(mr, color=COLORS[3], lw=1.2, ls="--")
        ax.set_title(f"{name}  (mean Δ {mc - mr:+.3g})", fontsize=9)
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel("reward", fontsize=8)
    axes[0].legend(fontsize=7)
    return to_data_uri(fig)


def lines(
    series: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: dict[str, float] | None = None,
    logx: bool = False,
) -> str:
    """Curves ``{label: (x, y, err)}`` with error bars (``err`` may be ``None``), dashed
    reference lines ``hlines``. A label starting with "gold" is drawn black and dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    for i, (label, (x, y, err)) in enumerate(series.items()):
        color = "k" if label.startswith("gold") else COLORS[i % len(COLORS)]
        ls = "--" if label.startswith("gold") else "-"
        ms = 3 if len(x) <= 60 else 0
        ax.errorbar(x, y, yerr=err, color=color, ls=ls, marker="o", ms=ms, capsize=3, lw=1.3, label=label)
    for j, (label, v) in enumerate((hlines or {}).items()):
        ax.axhline(v, color="grey", ls=["--", ":", "-."][j % 3], lw=1, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.title.set_fontsize(10)
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def grouped_bars(
    groups: list[str],
    bars: dict[str, tuple[list[float], list[float]]],
    ylabel: str,
    markers: dict[str, list[float]] | None = None,
    title: str = "",
) -> str:
    """Bars ``{label: (means, 95% half-widths)}`` per group; ``markers`` (e.g. the length
    heuristics) drawn as black triangles over each group."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7.0, 1.4 * len(groups) + 2), 3.8))
    width = 0.8 / max(len(bars), 1)
    for j, (label, (ms, hs)) in enumerate(bars.items()):
        xs = [i + (j - (len(bars) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, ms, width, yerr=hs, capsize=2, label=label, color=COLORS[j % len(COLORS)])
    for (label, ys), mark in zip((markers or {}).items(), "^v*", strict=False):
        ax.scatter(range(len(groups)), ys, marker=mark, color="k", zorder=3, label=label)
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set_xticks(range(len(groups)), groups, rotation=15)
    ax.set(ylim=(0, 1), ylabel=ylabel, title=title)
    ax.title.set_fontsize(10)
    ax.legend(fontsize=7, ncol=3)
    return to_data_uri(fig)


def weights(rows: list[dict], title: str, xlabel: str = "weight") -> str:
    """Horizontal bars ``[{"name", "value", "low"?, "high"?}]`` (with 95% intervals when given),
    largest |value| on top."""
    plt = _plt()
    rows = sorted(rows, key=lambda r: abs(r["value"]))
    fig, ax = plt.subplots(figsize=(7.2, max(2.0, 0.28 * len(rows) + 1.1)))
    ys = range(len(rows))
    vals = [r["value"] for r in rows]
    err = None
    if all("low" in r for r in rows):
        err = [
            [v - r["low"] for v, r in zip(vals, rows, strict=True)],
            [r["high"] - v for v, r in zip(vals, rows, strict=True)],
        ]
    ax.barh(ys, vals, xerr=err, capsize=2, color=[COLORS[0] if v >= 0 else COLORS[3] for v in vals])
    ax.axvline(0, color="k", lw=0.6)
    ax.set_yticks(list(ys), [r["name"] for r in rows], fontsize=7)
    ax.set(xlabel=xlabel, title=title)
    ax.title.set_fontsize(10)
    return to_data_uri(fig)


def training(steps: list[dict], epochs: list[dict]) -> str:
    """Training loss per step (left) and validation accuracy per epoch (right, when logged)."""
    plt = _plt()
    val = [e for e in epochs if e.get("val_accuracy") is not None]
    fig, axes = plt.subplots(1, 2 if val else 1, figsize=(10 if val else 6, 3.2), squeeze=False)
    ax = axes[0, 0]
    if steps:
        x, y = [r["step"] for r in steps], [r["loss"] for r in steps]
        ax.plot(x, y, color=COLORS[0], lw=0.8, alpha=0.5, label="loss")
        k = max(1, len(y) // 20)
        smooth = [
            sum(y[max(0, i - k + 1) : i + 1]) / len(y[max(0, i - k + 1) : i + 1]) for i in range(len(y))
        ]
        ax.plot(x, smooth, color=COLORS[0], lw=1.6, label=f"mean of last {k}")
        ax.legend(fontsize=7)
    ax.set(xlabel="optimiser step", ylabel="Bradley-Terry loss", title="training loss")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if val:
        ax = axes[0, 1]
        ax.plot([e["epoch"] for e in val], [e["val_accuracy"] for e in val], "o-", color=COLORS[1])
        ax.set(xlabel="epoch", ylabel="validation accuracy", title="validation", ylim=(0, 1))
        ep = [e["epoch"] for e in val]
        ax.set_xticks(ep)
        ax.set_xlim(min(ep) - 0.5, max(ep) + 0.5)
        ax.axhline(0.5, color="grey", lw=0.5)
    return to_data_uri(fig)


def grpo(
    steps: list[int], reward: list[float], std: list[float | None], gold: list[tuple[int, float]]
) -> str:
    """RM reward per step with a ± std band (left axis) and the gold reward (right axis: its own
    scale) when logged."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.6, 3.8))
    ax.plot(
        steps,
        reward,
        color=COLORS[0],
        lw=1.3,
        marker="o" if len(steps) <= 60 else None,
        ms=3,
        label="RM reward (mean over the step's samples)",
    )
    band = [(x, y, s) for x, y, s in zip(steps, reward, std, strict=True) if s is not None]
    if band:
        ax.fill_between(
            [b[0] for b in band],
            [b[1] - b[2] for b in band],
            [b[1] + b[2] for b in band],
            color=COLORS[0],
            alpha=0.15,
            label="± reward std",
        )
    ax.set(xlabel="step", ylabel="RM reward")
    handles, labels = ax.get_legend_handles_labels()
    if gold:
        ax2 = ax.twinx()
        ax2.plot(
            [g[0] for g in gold], [g[1] for g in gold], color=COLORS[3], lw=1.3, ls="--", label="gold reward"
        )
        ax2.set_ylabel("gold reward", color=COLORS[3])
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=7, frameon=False)
    ax.set_title(f"GRPO, {len(steps)} steps", fontsize=10, pad=4)
    return to_data_uri(fig, top=0.9)
