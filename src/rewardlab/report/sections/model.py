"""Sections from a saved model's ``rewardlab.json``: what it is, a multi-objective RM's fitted
weights and reward scales, a knowledge / fused RM's feature weights (95% intervals), and the
per-feature contributions of ``rewardlab explain --json`` output saved as ``explain.json``."""

from __future__ import annotations

from rewardlab.data.schema import DataError
from rewardlab.report import figures
from rewardlab.report.collect import RunDir
from rewardlab.report.html import esc, img, p, table
from rewardlab.report.sections import section

TOP_FEATURES = 30  # most features a weights figure shows (largest |weight| first)
Z95 = 1.96
FACTS = ("kind", "objectives", "scalarizer", "label_key")
NEURAL_FACTS = ("backbone", "max_length", "train_layers", "lora_r")


@section("model", "Model", "rewardlab.json (a saved model: the run directory or its model/)", 60)
def model(run: RunDir) -> str | None:
    """The model's configuration, and its objectives' or features' weights."""
    meta = run.model_meta
    if meta is None:
        return None
    cfg = meta["model"]
    neural_facts = cfg.get("kind") != "knowledge"  # a knowledge RM has no backbone of its own
    facts = [
        [k, ", ".join(map(str, v)) if isinstance(v, list) else v]
        for k in FACTS + (NEURAL_FACTS if neural_facts else ())
        if (v := cfg.get(k)) is not None
    ]
    if meta.get("base_path"):
        facts.append(["base model", meta["base_path"]])
    body = table(["", "value"], facts)
    objectives = cfg.get("objectives") or []
    if len(objectives) > 1:
        body += _objectives(cfg, objectives)
    if isinstance(meta.get("knowledge"), dict):
        body += _knowledge(meta["knowledge"], run)
    return body


def _objectives(cfg: dict, objectives: list[str]) -> str:
    """Weighted-sum weights (fitted or equal) and per-objective reward scale of a K > 1 RM."""
    w = ((cfg.get("scalarizer_params") or {}).get("weighted_sum") or {}).get("weights")
    fitted = w is not None
    w = w if fitted else [1.0 / len(objectives)] * len(objectives)
    scale = cfg.get("reward_scale") or [{}] * len(objectives)
    if len(w) != len(objectives) or len(scale) != len(objectives):
        raise DataError(
            "rewardlab.json", "model.scalarizer_params", "weights/reward_scale do not match the objectives"
        )
    rows = [
        [o, f"{wk:+.3f}", f"{s.get('mean', float('nan')):.3f}", f"{s.get('std', float('nan')):.3f}"]
        for o, wk, s in zip(objectives, w, scale, strict=True)
    ]
    note = (
        "Weighted-sum weights fitted by logistic regression on the overall preference "
        "(a weight may be negative)."
        if fitted
        else "No fitted weights saved: the weighted sum uses equal weights 1/K."
    )
    fig = figures.weights(
        [{"name": o, "value": wk} for o, wk in zip(objectives, w, strict=True)],
        "weighted-sum weight per objective (on normalised rewards)",
    )
    return (
        "<h3>Objectives</h3>"
        + table(["objective", "weight", "reward mean", "reward std"], rows)
        + p(note)
        + img(fig, "objective weights")
    )


def _knowledge(k: dict, run: RunDir) -> str:
    """A knowledge / fused RM's weights per feature with 95% intervals (Laplace posterior)."""
    from rewardlab.knowledge.model import LinearBT

    try:
        bt = LinearBT.from_dict(k["linear_bt"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(
            str(run.find("rewardlab.json", "model/rewardlab.json")), "knowledge.linear_bt", str(e)
        ) from None
    rows = sorted(bt.weight_table(), key=lambda r: -abs(r["weight"]))
    shown = rows[:TOP_FEATURES]
    fig = figures.weights(
        [{"name": r["feature"], "value": r["weight"], "low": r["low"], "high": r["high"]} for r in shown],
        "feature weights (per feature std; 95% interval)"
        + ("" if len(rows) <= TOP_FEATURES else f", top {TOP_FEATURES}"),
    )
    head = ["feature", "weight", "95% interval"]
    cells = [
        [r["feature"], f"{r['weight']:+.3f}", f"[{r['low']:+.3f}, {r['high']:+.3f}]"] for r in shown[:12]
    ]
    return (
        f"<h3>Features ({esc(', '.join(k.get('feature_sets') or []))}; prior precision "
        f"{bt.prior_precision:.3g})</h3>"
        + p(
            "r(x) = Σ_k w_k z_k(x) over standardised features; a feature's contribution to r(a) − r(b) "
            "is w_k (z_k(a) − z_k(b)) (rewardlab explain)."
        )
        + img(fig, "feature weights")
        + table(head, cells)
    )


@section(
    "contributions", "Feature contributions to one comparison", "explain.json (rewardlab explain --json)", 65
)
def contributions(run: RunDir) -> str | None:
    """The per-feature contributions of one explained pair (``rewardlab explain --json``)."""
    e = run.json("explain.json")
    if e is None:
        return None
    feats = e.get("features") if isinstance(e, dict) else None
    if not isinstance(feats, list) or not feats:
        raise DataError(
            str(run.path / "explain.json"),
            "features",
            "is missing (save `rewardlab explain --json` with a pair)",
        )
    shown = sorted(feats, key=lambda r: -abs(r["contribution"]))[:TOP_FEATURES]
    fig = figures.weights(
        [
            {
                "name": r["feature"],
                "value": r["contribution"],
                "low": r["contribution"] - Z95 * r.get("std", 0.0),
                "high": r["contribution"] + Z95 * r.get("std", 0.0),
            }
            for r in shown
        ],
        "contribution w_k (z_k(a) − z_k(b)) ± 95%",
        "contribution to r(a) − r(b)",
    )
    head = f"r(a) − r(b) = {e.get('delta', float('nan')):+.3f} ± {e.get('delta_std', float('nan')):.3f}"
    return p(f"{head}; P(a ≻ b) = {e.get('prob_a', float('nan')):.3f}") + img(fig, "feature contributions")
