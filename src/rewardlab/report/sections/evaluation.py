"""Sections from an evaluated RM: the metrics table beside the length heuristics, per-source /
subset / objective accuracy, reliability diagrams, reward histograms and the training curves
(``metrics.json``, ``pair_rewards.jsonl``, ``train_log.jsonl``)."""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from rewardlab.data.schema import DataError
from rewardlab.report import figures
from rewardlab.report.collect import PAIR_FIELDS, TRAIN_LOG_FIELDS, RunDir, check_row
from rewardlab.report.html import Raw, bold, esc, img, p, pct, table
from rewardlab.report.scores import PAIR_REWARDS
from rewardlab.report.sections import section

SET_FIELDS = {"n": ((int,), True), "accuracy": ((int, float), True)}
BINS = 10  # confidence bins of the reliability diagram (those of the ECE in metrics.json)


def _sets(run: RunDir) -> dict[str, dict] | None:
    """``metrics.json``'s ``sets``, each checked (n, accuracy)."""
    m = run.json("metrics.json")
    if m is None:
        return None
    path = run.path / "metrics.json"
    if not isinstance(m, dict) or not isinstance(m.get("sets"), dict):
        raise DataError(str(path), "sets", "is missing (expected {set name: metrics})")
    return {name: check_row(v, SET_FIELDS, f"{path}: sets.{name}") for name, v in m["sets"].items()} or None


def wilson(acc: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy ``acc`` over ``n`` pairs:
    (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n). Unlike p̂ ± z·√(p̂(1−p̂)/n) it stays
    inside [0, 1] and is not empty at 0% or 100%."""
    if n <= 0:
        return acc, acc
    d = 1 + z * z / n
    center = (acc + z * z / (2 * n)) / d
    half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / d
    return max(0.0, center - half), min(1.0, center + half)


def acc_cell(acc: float | None, n: int | None) -> str:
    """``59.4 [53.8, 64.8]``: accuracy in % with its Wilson interval over ``n`` pairs."""
    if acc is None:
        return ""
    if not n:
        return pct(acc)
    lo, hi = wilson(acc, n)
    return f"{100 * acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


@section("evaluation", "Evaluation: RM vs length heuristics", "metrics.json (rewardlab demo)", 10)
def evaluation(run: RunDir) -> str | None:
    """Per set: pairs, RM accuracy [95% interval over pairs], longer / shorter wins, ECE, NLL, Brier."""
    sets = _sets(run)
    if sets is None:
        return None
    rows = []
    for name, m in sets.items():
        accs = {k: m.get(k) for k in ("accuracy", "longer_accuracy", "shorter_accuracy")}
        best = max((v for v in accs.values() if v is not None), default=None)
        text = {k: acc_cell(v, m["n"]) if k == "accuracy" else pct(v) for k, v in accs.items()}
        cells = [bold(text[k]) if v is not None and v == best else text[k] for k, v in accs.items()]
        extra = [f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else "" for k in ("ece", "nll", "brier")]
        rows.append([name, m["n"], *cells, *extra])
    head = ["set", "pairs", "RM accuracy", "longer wins", "shorter wins", "RM ECE", "NLL", "Brier"]
    mt = run.json("metrics.json")
    note = f"Trained on: {mt['train_set']}. " if isinstance(mt.get("train_set"), str) else ""
    note += (
        "Accuracy in %, ties wrong; [low, high]: 95% Wilson interval over pairs (one trained model: "
        "it does not cover seed-to-seed variation). Bold: the best of the RM and the two length heuristics."
    )
    return (
        table(head, rows)
        + p(note)
        + img(
            figures.accuracy_bars(sets, {n: wilson(m["accuracy"], m["n"]) for n, m in sets.items()}),
            "accuracy per set",
        )
    )


@section(
    "breakdown", "Per source, subset and objective", "by_source / by_subset / objectives in metrics.json", 20
)
def breakdown(run: RunDir) -> str | None:
    """Accuracy per ``source`` / ``subset`` tag of each set, and per objective (multi-objective RM)."""
    sets = _sets(run)
    if sets is None:
        return None
    parts = []
    for key, label in (("by_source", "source"), ("by_subset", "subset"), ("objectives", "objective")):
        rows = [
            [
                name,
                g,
                v.get("n"),
                acc_cell(v.get("accuracy"), v.get("n")),
            ]
            for name, m in sets.items()
            for g, v in (m.get(key) or {}).items()
            if isinstance(v, dict) and v.get("accuracy") is not None
        ]
        if rows:
            parts.append(
                f"<h3>By {esc(label)}</h3>" + table(["set", label, "pairs", "accuracy [95% interval]"], rows)
            )
    if not parts:
        return None
    return "".join(parts)


def _pair_rewards(run: RunDir) -> dict[str, tuple[list[float], list[float]]] | None:
    """``{set: (chosen rewards, rejected rewards)}`` from ``pair_rewards.jsonl``."""
    rows = run.jsonl(PAIR_FIELDS, PAIR_REWARDS)
    if rows is None:
        return None
    out: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in rows:
        out[r["set"]][0].append(float(r["chosen"]))
        out[r["set"]][1].append(float(r["rejected"]))
    return dict(out)


def reliability_bins(chosen: list[float], rejected: list[float], bins: int = BINS) -> dict:
    """Confidence c = max(p, 1 − p) of p = σ(r_c − r_r) in ``bins`` equal bins on [½, 1]: per bin the
    mean confidence, the accuracy (p > ½) and the count; ``ece`` as in
    :func:`rewardlab.evaluate.metrics.expected_calibration_error` (same bins)."""
    from rewardlab.evaluate.metrics import expected_calibration_error, preference_prob

    prob = preference_prob(torch.tensor(chosen), torch.tensor(rejected))
    conf, right = torch.maximum(prob, 1 - prob), (prob > 0.5).double()
    edges = torch.linspace(0.5, 1.0, bins + 1, dtype=prob.dtype)
    idx = torch.bucketize(conf, edges[1:-1], right=True)
    out: dict = {"edges": edges.tolist(), "conf": [], "acc": [], "count": []}
    for b in range(bins):
        m = idx == b
        k = int(m.sum())
        out["count"].append(k)
        out["conf"].append(float(conf[m].mean()) if k else float("nan"))
        out["acc"].append(float(right[m].mean()) if k else 0.0)
    out["ece"] = expected_calibration_error(prob, bins)
    return out


@section("calibration", "Calibration: reliability diagrams", f"{PAIR_REWARDS} (rewardlab demo)", 30)
def calibration(run: RunDir) -> str | None:
    """One reliability diagram per set from the saved per-pair rewards."""
    pr = _pair_rewards(run)
    if pr is None:
        return None
    panels = {name: reliability_bins(c, r) for name, (c, r) in pr.items()}
    note = (
        "P(chosen ≻ rejected) = σ(r_c − r_r). Each pair predicts the side it gives more than ½ with "
        "confidence max(p, 1 − p); bars are the share of pairs predicted right per confidence bin "
        "(numbers: pairs in the bin); a red dot is the bin's (mean confidence, accuracy), its height "
        "above or below the diagonal the bin's calibration gap (below: over-confident). ECE = the "
        "pair-weighted mean gap."
    )
    return p(note) + img(figures.reliability(panels), "reliability diagrams")


@section("histograms", "Chosen vs rejected rewards", f"{PAIR_REWARDS} (rewardlab demo)", 40)
def histograms(run: RunDir) -> str | None:
    """Histograms of the chosen and the rejected responses' rewards, per set."""
    pr = _pair_rewards(run)
    if pr is None:
        return None
    rows = []
    for name, (c, r) in pr.items():
        d = [a - b for a, b in zip(c, r, strict=True)]
        mean = sum(d) / len(d)
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / max(len(d) - 1, 1))
        rows.append([name, len(d), f"{mean:+.3g}", f"{sd:.3g}", pct(sum(x > 0 for x in d) / len(d))])
    head = ["set", "pairs", "mean r_c − r_r", "std", "r_c > r_r (%)"]
    return table(head, rows) + img(figures.reward_histograms(pr), "reward histograms")


def _train_rows(run: RunDir) -> tuple[list[dict], list[dict]]:
    """(step rows with a loss, epoch rows) from ``train_log.jsonl`` (run dir or ``model/``)."""
    rows = run.jsonl(TRAIN_LOG_FIELDS, "train_log.jsonl", "model/train_log.jsonl") or []
    steps = [r for r in rows if r.get("loss") is not None and r.get("step") is not None]
    epochs = [r for r in rows if r.get("loss") is None and r.get("epoch") is not None]
    return steps, epochs


@section("training", "Training", "train_log.jsonl or metrics.json 'train' (rewardlab train / demo)", 50)
def training(run: RunDir) -> str | None:
    """Loss per step, validation accuracy per epoch, and the run's size and speed."""
    steps, epochs = _train_rows(run)
    m = run.json("metrics.json") if run.find("metrics.json") else None
    tr = m.get("train") if isinstance(m, dict) and isinstance(m.get("train"), dict) else {}
    if not epochs and isinstance(tr.get("history"), list):
        epochs = [e for e in tr["history"] if isinstance(e, dict)]
    if not steps and not epochs and not tr:
        return None
    facts = [(k, tr.get(k)) for k in ("pairs", "steps", "seconds", "pairs_per_second")]
    facts += [("total seconds", m.get("seconds")), ("peak memory (MB)", m.get("peak_memory_mb"))] if m else []
    body = (
        table(["", "value"], [[k, v] for k, v in facts if v is not None]) if any(v for _, v in facts) else ""
    )
    if epochs:
        cols = sorted({k for e in epochs for k in e if k.startswith("val_")})
        body += table(
            ["epoch", "step", *cols],
            [
                [
                    e.get("epoch"),
                    e.get("step"),
                    *[f"{e[c]:.4f}" if isinstance(e.get(c), float) else e.get(c) for c in cols],
                ]
                for e in epochs
            ],
        )
    if steps or any(e.get("val_accuracy") is not None for e in epochs):
        body += img(figures.training(steps, epochs), "training curves")
    return Raw(body)
