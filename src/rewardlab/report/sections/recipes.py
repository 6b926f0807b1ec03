"""Sections from the recipes' outputs and RL runs: best-of-n over-optimization
(``overoptimization.json``, ``uncertainty_report.json``), multi-objective and data-efficiency
results (``results.jsonl``, 95% t-intervals over seeds) and a GRPO reward curve (``grpo_log.jsonl``)."""

from __future__ import annotations

from collections import defaultdict

from rewardlab.data.schema import DataError
from rewardlab.evaluate.metrics import mean_ci95
from rewardlab.report import figures
from rewardlab.report.collect import GRPO_FIELDS, RunDir, check_row, multi_objective_groups
from rewardlab.report.html import esc, img, p, pct, table
from rewardlab.report.sections import section

OVEROPT_FIELDS = {"ns": ((list,), True), "kl": ((list,), True), "curves": ((dict,), True)}


def _ci(xs: list[float]) -> str:
    m, h = mean_ci95(xs)
    return pct(m, h)


@section(
    "overoptimization",
    "Best-of-n over-optimization",
    "overoptimization.json (recipes/overoptimization.py)",
    70,
)
def overoptimization(run: RunDir) -> str | None:
    """Gold reward of the best-of-n choice vs KL, per selection method."""
    r = run.json("overoptimization.json")
    if r is None:
        return None
    check_row(r, OVEROPT_FIELDS, str(run.path / "overoptimization.json"))
    ns, kl, curves = r["ns"], r["kl"], r["curves"]
    for name, ys in curves.items():
        if not isinstance(ys, list) or len(ys) != len(ns):
            raise DataError(
                str(run.path / "overoptimization.json"), f"curves.{name}", f"expected {len(ns)} values"
            )
    setup = r.get("setup") or {}
    title = f"{setup.get('prompts', '?')} prompts × {setup.get('n', max(ns))} samples"
    bands = r.get("curves_ci") or {}
    fig = figures.lines(
        {k: (kl, v, _asym_err(v, bands.get(k))) for k, v in curves.items()},
        "KL(best-of-n ‖ policy) = log n − (n−1)/n",
        "gold reward gain over n = 1",
        title,
    )
    boot = r.get("bootstrap") or {}
    drop = [
        f"{b['drop']:+.3f} [{b['drop_ci'][0]:+.3f}, {b['drop_ci'][1]:+.3f}]" if (b := boot.get(k)) else "–"
        for k in curves
    ]
    rows = [[k, *[f"{y:+.3f}" for y in v], d] for (k, v), d in zip(curves.items(), drop, strict=True)]
    facts = [
        (k, r.get(k)) for k in ("gold_n1", "gold_within_prompt_std", "proxy_std_mean", "rank_corr_proxy_gold")
    ]
    note = ", ".join(f"{k} {v:.3f}" for k, v in facts if isinstance(v, (int, float)))
    return (
        p(
            "Expected gold-RM reward of the sample each method picks among n (exact over random n-subsets), "
            "minus the gold reward at n = 1 (bars: 95% bootstrap over prompts, when the run has them). "
            "A curve that falls while n grows is over-optimization; the drop is its peak minus its end."
        )
        + img(fig, "best-of-n curves")
        + table(["method", *[f"n={n}" for n in ns], "drop: peak − n_max (95% CI)"], rows)
        + (p(note) if note else "")
    )


def _asym_err(ys: list[float], ci: list | None) -> list[list[float]] | None:
    """Matplotlib's asymmetric error bars [[below], [above]] from per-point [lo, hi]."""
    if not ci or len(ci) != len(ys):
        return None
    return [
        [y - lo for y, (lo, _) in zip(ys, ci, strict=True)],
        [hi - y for y, (_, hi) in zip(ys, ci, strict=True)],
    ]


@section(
    "uncertainty",
    "Uncertainty: calibration and error detection",
    "uncertainty_report.json (recipes/overoptimization.py)",
    75,
)
def uncertainty(run: RunDir) -> str | None:
    """Per method and set: accuracy, ECE, NLL, error AUROC, OOD AUROC."""
    rep = run.json("uncertainty_report.json")
    if rep is None:
        return None
    if not isinstance(rep, dict):
        raise DataError(str(run.path / "uncertainty_report.json"), None, "expected {method: {set: metrics}}")
    cols = ("accuracy", "ece", "nll", "error_auroc", "ood_auroc")
    rows = [
        [
            method,
            s,
            *[
                (pct(m[c]) if c == "accuracy" else f"{m[c]:.3f}")
                if isinstance(m.get(c), (int, float))
                else ""
                for c in cols
            ],
        ]
        for method, per in rep.items()
        for s, m in per.items()
    ]
    return table(["method", "set", *cols], rows)


def _heuristics(sets: list[str]) -> dict[str, dict]:
    """Length heuristics on the full bundled sets among ``sets`` (the recipes evaluate on them)."""
    from rewardlab.data.bundled import BUNDLED_NAMES, bundled_set
    from rewardlab.evaluate.metrics import length_heuristics

    out = {}
    for s in sets:
        if s in BUNDLED_NAMES or s in ("llmbar", "hhh"):
            ps = bundled_set(s)
            out[s] = length_heuristics([q.chosen for q in ps], [q.rejected for q in ps])
    return out


def _multi_objective(rows: list[dict]) -> str:
    """Accuracy per (experiment, size, model) and set, mean ± 95% over seeds, heuristics beside."""
    data = multi_objective_groups(rows)
    sets = list(dict.fromkeys(s for r in rows for s in r["sets"]))
    heur = _heuristics(sets)
    head = ["experiment", "train pairs", "model", "seeds", *sets]
    body = [
        [
            e,
            size,
            model,
            len(next(iter(per.values()))["accuracy"]),
            *[_ci(per[s]["accuracy"]) if s in per else "" for s in sets],
        ]
        for (e, size, model), per in sorted(data.items())
    ]
    for h in ("longer_accuracy", "shorter_accuracy"):
        body.append(
            ["—", "—", h.split("_")[0] + " wins", "—", *[pct(heur[s][h]) if s in heur else "" for s in sets]]
        )
    html = table(head, body)
    html += _mo_figures(data, sets, heur)
    extra = []
    for (e, size, model), per in sorted(data.items()):
        if not model.startswith("multi"):
            continue
        for c in sorted({k for v in per.values() for k in v if ":" in k}):
            extra.append([e, size, c, *[_ci(per[s][c]) if c in per.get(s, {}) else "" for s in sets]])
    if extra:
        html += "<h3>Scalarizers and single objectives on the multi-objective heads</h3>"
        html += table(["experiment", "train pairs", "combination", *sets], extra)
    return html


def _mo_figures(data: dict, sets: list[str], heur: dict) -> str:
    """One grouped-bar figure per experiment: every (model, train pairs) per set, 95% over seeds."""

    def ci(key: tuple, s: str) -> tuple[float, float]:
        return mean_ci95(data[key][s]["accuracy"]) if s in data[key] else (float("nan"), 0.0)

    marks = {
        h.split("_")[0] + " wins": [heur.get(s, {}).get(h, float("nan")) for s in sets]
        for h in ("longer_accuracy", "shorter_accuracy")
    }
    html = ""
    for exp in sorted({k[0] for k in data}):
        keys = sorted(k for k in data if k[0] == exp)
        bars = {f"{k[2]} ({k[1]})": ([ci(k, s)[0] for s in sets], [ci(k, s)[1] for s in sets]) for k in keys}
        title = f"{exp}: mean ± 95% over seeds (model (train pairs))"
        html += img(figures.grouped_bars(sets, bars, "accuracy", marks, title), f"multi-objective {exp}")
    return html


def _summarise(rows: list[dict]) -> dict:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["set"], r["method"], r["n"])].append(r)
    return groups


def _data_efficiency(rows: list[dict], run: RunDir) -> str:
    """Accuracy vs training pairs per set and method (95% over seeds), length heuristics dashed."""
    groups = _summarise(rows)
    html = ""
    for name in list(dict.fromkeys(r["set"] for r in rows)):
        h = run.json(f"heuristics-{name}.json") or {}
        hl = {
            f"{k.split('_')[0]} wins": h[k]
            for k in ("longer_accuracy", "shorter_accuracy")
            if isinstance(h.get(k), (int, float))
        }
        methods = list(dict.fromkeys(m for s, m, _ in groups if s == name))
        series = {}
        for m in methods:
            pts = sorted(
                (n, mean_ci95([g["accuracy"] for g in grp]))
                for (s, mm, n), grp in groups.items()
                if s == name and mm == m
            )
            series[m] = ([x for x, _ in pts], [c[0] for _, c in pts], [c[1] for _, c in pts])
        fig = figures.lines(series, "training pairs", "test accuracy", name, hl, logx=True)
        ns = sorted({n for s, _, n in groups if s == name})
        body = [
            [
                n,
                *[
                    _ci([g["accuracy"] for g in groups[(name, m, n)]]) if (name, m, n) in groups else ""
                    for m in methods
                ],
                max(len(groups.get((name, m, n), [])) for m in methods),
            ]
            for n in ns
        ]
        html += f"<h3>{esc(name)}</h3>" + img(fig, f"data efficiency {name}")
        html += table(["pairs", *methods, "seeds"], body)
    w = run.json("weights-summeval.json")
    if isinstance(w, list) and w:
        fig = figures.weights(
            [{"name": r["feature"], "value": r["weight"], "low": r["low"], "high": r["high"]} for r in w][
                :30
            ],
            "knowledge RM weights, all SummEval-OP training pairs (95% interval)",
        )
        html += "<h3>Knowledge RM weights (SummEval-OP)</h3>" + img(fig, "summeval weights")
    return html


@section(
    "results",
    "Recipe results",
    "results.jsonl (recipes/multi_objective.py or recipes/data_efficiency.py)",
    80,
)
def results(run: RunDir) -> str | None:
    """``results.jsonl`` of the multi-objective or the data-efficiency recipe."""
    res = run.results
    if res is None:
        return None
    kind, rows = res
    intro = p(
        f"{kind.replace('_', '-')} recipe, {len(rows)} runs. Accuracy in %, mean ± 95% t-interval over "
        "seeds; ties wrong; the length heuristics on the full test sets."
    )
    if kind == "other":
        return _plain(rows)
    return intro + (_multi_objective(rows) if kind == "multi_objective" else _data_efficiency(rows, run))


def _plain(rows: list[dict], max_cols: int = 12, max_rows: int = 60) -> str:
    """Rows of a results.jsonl the report has no drawing for: their scalar fields as a table."""

    def interval(v: object) -> bool:  # [value, low, high]
        return isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)

    cols = list(
        dict.fromkeys(
            k for r in rows for k, v in r.items() if isinstance(v, (str, int, float)) or interval(v)
        )
    )
    shown = cols[:max_cols]

    def fmt(v: object) -> object:
        if interval(v):
            return f"{v[0]:.4g} [{v[1]:.4g}, {v[2]:.4g}]"
        return f"{v:.4g}" if isinstance(v, float) else v

    note = f"results.jsonl: {len(rows)} rows of a recipe this report has no figures for; its scalar fields"
    note += f" ({len(shown)} of {len(cols)} columns, first {min(len(rows), max_rows)} rows):"
    return p(note) + table(shown, [[fmt(r.get(c)) for c in shown] for r in rows[:max_rows]])


@section("grpo", "GRPO: reward during RL", "grpo_log.jsonl (a GRPO run)", 90)
def grpo(run: RunDir) -> str | None:
    """Mean reward per step (± the step's reward std) and the gold reward when logged."""
    rows = run.jsonl(GRPO_FIELDS, "grpo_log.jsonl")
    if rows is None:
        return None
    rows = [r for r in rows if r.get("reward") is not None]
    if not rows:
        return p("grpo_log.jsonl has no step with a finite reward.")
    x, y = [r["step"] for r in rows], [float(r["reward"]) for r in rows]
    gold = [(r["step"], float(r["gold_reward"])) for r in rows if r.get("gold_reward") is not None]
    fig = figures.grpo(x, y, [r.get("reward_std") for r in rows], gold)
    k = max(1, len(rows) // 5)  # first / last 20% of the steps

    def mean(v: list[float]) -> str:
        return f"{sum(v) / len(v):+.3f}" if v else ""

    body = [["RM reward", mean(y[:k]), mean(y[-k:])]]
    if gold:
        body.append(["gold reward", mean([g for _, g in gold[:k]]), mean([g for _, g in gold[-k:]])])
    return (
        img(fig, "GRPO reward curve")
        + table(["", f"first {k} steps", f"last {k} steps"], body)
        + p(
            "Band: ± the reward std over the step's samples. RM reward rising while the gold reward falls is "
            "reward hacking."
            if gold
            else "Band: ± the reward std over the step's samples (no gold reward logged)."
        )
    )
