"""Per-principle AI feedback (MORLAIF): soft A/B labels, both orders averaged.

The judge method is ``JudgeConfig.method``, a name in
:data:`~rewardlab.feedback.judge_methods.JUDGE_VARIANTS` (default ``ab-fewshot``: the A/B judge
below with two solved examples in the prompt; ``ab`` is the plain prompt). Whatever the method,
each row keeps ``p_ab`` / ``p_ba`` per principle in ``metadata["judge"]``.

For a pair (x, y) and a principle the judge sees "Response A / Response B — which is more X?
Answer A or B" twice, once with A = x and once with A = y. From the A/B log-probabilities,
P(A) = σ(ℓ_A − ℓ_B), and

    P(x more X) = ½ · (P(A | A=x) + P(B | A=y))

which cancels a constant preference for a position. ``judge_pairs`` stores
``labels[principle] = P(chosen better)`` (flipped for "more is worse" principles; see
``rewardlab.feedback.principles``) and reports position bias and agreement with the given labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.schema import PreferencePair
from rewardlab.feedback.calibration import calibrate, fit_scale, order_logodds
from rewardlab.feedback.common import Template, item_key, load_pair_input, render_prompt
from rewardlab.feedback.jobs import job_config, run_job
from rewardlab.feedback.judge_methods import (
    DEFAULT_JUDGE_VARIANT,
    JUDGE_VARIANTS,
    OPTIONS,
    JudgeVariant,
    compare,
    judge_conversation,
    p_first,
)
from rewardlab.feedback.principles import Principle, parse_principle
from rewardlab.llm.base import LLMBackend

__all__ = [
    "OPTIONS",
    "JudgeConfig",
    "JudgeStats",
    "compare",
    "judge_conversation",
    "judge_pairs",
    "p_first",
]


@dataclass
class JudgeConfig:
    """Which principles to judge and how."""

    principles: list[str] = field(
        default_factory=lambda: [
            "helpfulness",
            "harmlessness",
            "factuality",
            "toxicity",
            "sycophancy",
        ],
        metadata={
            "help": "registered names (helpfulness, harmlessness|ethicality, factuality, "
            "toxicity, sycophancy) or user-defined 'name=description', comma-separated"
        },
    )
    inverted: list[str] = field(
        default_factory=list,
        metadata={"help": "user-defined principles where more is worse (their label is flipped)"},
    )
    method: str = field(
        default=DEFAULT_JUDGE_VARIANT,
        metadata={
            "help": f"judge method and prompt: {', '.join(sorted(JUDGE_VARIANTS))} (ab-fewshot: "
            "A/B with two solved examples, the measured choice; ab: the plain A/B prompt; "
            "rationale: a short rationale, then A/B; score: each response rated 1-9 alone)"
        },
    )
    template: str = field(
        default="",
        metadata={
            "help": "judge prompt overriding the method's: a bundled name or a .txt file with "
            "{response_a}, {response_b} ({response} for score), {adjective}, {description}, {prompt}"
        },
    )
    both_orders: bool = field(
        default=True, metadata={"help": "ask in both orders and average (ab methods only)"}
    )
    calibrate_on: str = field(
        default="",
        metadata={
            "help": "labelled pairs (a file or bundled set; chosen is better) to fit one scale a per "
            "principle on: labels become sigma(a*z), z the position-debiased log-odds (same "
            "decisions); their judgements go to OUT.calibration.jsonl. Use 50+ pairs of the same "
            "principle and kind of data"
        },
    )

    def __post_init__(self) -> None:
        if not self.principles:
            raise ValueError("principles: give at least one")
        parsed = self.resolve()
        names = [p.name for p in parsed]
        if len(set(names)) != len(names):
            raise ValueError(f"principles: duplicate name in {names}")
        unknown = set(self.inverted) - set(names)
        if unknown:
            raise ValueError(f"inverted: {sorted(unknown)} are not among the principles")
        if self.method not in JUDGE_VARIANTS:
            raise ValueError(f"method: unknown {self.method!r}; choose one of {sorted(JUDGE_VARIANTS)}")
        if not self.both_orders and JUDGE_VARIANTS[self.method].method != "ab":
            raise ValueError(f"both_orders: method {self.method!r} always judges both orders")
        if self.calibrate_on and not self.both_orders:
            raise ValueError("calibrate_on: needs both orders (z uses p_ab and p_ba)")

    def resolve(self) -> list[Principle]:
        """The principles as objects (registered or user-defined)."""
        try:
            return [parse_principle(s, set(self.inverted)) for s in self.principles]
        except KeyError as e:
            raise ValueError(f"principles: {e.args[0]}") from None

    def variant(self) -> JudgeVariant:
        """The judge method with its template (``template`` overrides it) and options."""
        base = JUDGE_VARIANTS[self.method]
        options = {**base.options, **({"both_orders": False} if not self.both_orders else {})}
        return dataclasses.replace(base, template=self.template or base.template, options=options)

    def load_template(self) -> Template:
        """The judge template (checked for the placeholders its method needs)."""
        return self.variant().load_template()


@dataclass
class JudgeStats:
    """Per-principle statistics over judged pairs.

    ``agreement``: fraction with label > 0.5 (agrees with the given chosen/rejected; ties wrong).
    ``position_bias``: fraction of single-order judgements where A won (0.5 = unbiased).
    ``consistency``: fraction of pairs where both orders picked the same response."""

    per_principle: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: list[dict], principles: list[Principle]) -> JudgeStats:
        """Statistics from output rows (``labels`` and ``metadata["judge"]``)."""
        stats = cls()
        for pr in principles:
            labels, a_wins, orders, consistent, n_both = [], 0, 0, 0, 0
            for row in rows:
                rec = row.get("metadata", {}).get("judge", {}).get(pr.name)
                if rec is None or pr.name not in row.get("labels", {}):
                    continue
                labels.append(row["labels"][pr.name])
                for p in (rec["p_ab"], rec["p_ba"]):
                    if p is not None:
                        orders += 1
                        a_wins += p > 0.5
                if rec["p_ba"] is not None:
                    n_both += 1
                    consistent += (rec["p_ab"] > 0.5) == (rec["p_ba"] < 0.5)
            n = len(labels)
            stats.per_principle[pr.name] = {
                "pairs": n,
                "agreement": sum(x > 0.5 for x in labels) / n if n else float("nan"),
                "mean_label": sum(labels) / n if n else float("nan"),
                "position_bias": a_wins / orders if orders else float("nan"),
                "consistency": consistent / n_both if n_both else float("nan"),
            }
        return stats


def _label_p(res: dict, fit: dict | None) -> float:
    """The judge's P(first better): its own ``p``, or σ(a·z) under a calibration fit."""
    if fit is None:
        return res["p"]
    return calibrate([order_logodds(res["p_ab"], res["p_ba"])], fit["scale"])[0]


def order_record(res: dict) -> dict:
    """What a row keeps of one principle's judgement: ``p_ab``, ``p_ba`` (always) and the method's
    extras (rationales, pointwise scores); ``p`` is the label itself."""
    extras = {k: v for k, v in res.items() if k not in ("p", "p_ab", "p_ba")}
    return {"p_ab": res["p_ab"], "p_ba": res["p_ba"], **extras}


def fit_calibration(
    backend: LLMBackend, cfg: JudgeConfig, out: str | Path, batch_size: int = 8
) -> dict[str, dict[str, float]]:
    """Judge ``cfg.calibrate_on``'s labelled pairs (resumable, into ``OUT.calibration.jsonl``) and
    fit each principle's scale (:func:`~rewardlab.feedback.calibration.fit_scale`): the target is
    1 (chosen better), 0 for a "more is worse" principle. Returns {principle: {scale, pairs}}."""
    pairs = load_pair_input(cfg.calibrate_on)  # an empty file is refused there, naming it
    plain = dataclasses.replace(cfg, calibrate_on="")
    rows, _, _ = judge_pairs(pairs, backend, f"{out}.calibration.jsonl", plain, None, batch_size)
    fits = {}
    for pr in cfg.resolve():
        recs = [row["metadata"]["judge"][pr.name] for row in rows]
        z = [order_logodds(r["p_ab"], r["p_ba"]) for r in recs]
        fits[pr.name] = {"scale": fit_scale(z, [pr.to_label(1.0)] * len(z)), "pairs": len(z)}
    return fits


def judge_pairs(
    pairs: list[PreferencePair],
    backend: LLMBackend,
    out: str | Path,
    cfg: JudgeConfig | None = None,
    limit: int | None = None,
    batch_size: int = 8,
) -> tuple[list[dict], JudgeStats, int]:
    """Label each pair on each principle, appending rows to ``out`` (resumes).

    Returns (all rows, statistics, number of newly judged pairs)."""
    cfg = cfg or JudgeConfig()
    principles, variant = cfg.resolve(), cfg.variant()
    template = variant.load_template()
    fits = fit_calibration(backend, cfg, out, batch_size) if cfg.calibrate_on else {}
    todo = list(enumerate(pairs))[:limit] if limit is not None else list(enumerate(pairs))

    def work(batch: list[tuple[int, PreferencePair]]) -> list[dict]:
        triples = [(render_prompt(p.prompt), p.chosen, p.rejected) for _, p in batch]
        results = variant.run(backend, triples, principles, template)
        rows = []
        for (_, pair), res in zip(batch, results, strict=True):
            labels = dict(pair.labels)
            labels.update(
                {pr.name: pr.to_label(_label_p(res[pr.name], fits.get(pr.name))) for pr in principles}
            )
            meta = dict(pair.metadata)
            if fits:
                meta["judge_calibration"] = fits
            orders = {pr.name: order_record(res[pr.name]) for pr in principles}
            meta["judge"] = {**meta.get("judge", {}), **orders}
            meta["judge_by"] = f"{backend.name}:{backend.model}"
            meta["judge_method"] = cfg.method
            rows.append(dataclasses.replace(pair, labels=labels, metadata=meta).to_dict())
        return rows

    key = lambda item: item_key(item[0], item[1].prompt, item[1].chosen, item[1].rejected)  # noqa: E731
    extra = {"calibration": fits} if fits else {}  # another fit is another configuration
    config = job_config("judge", backend, cfg=cfg, principles=principles, template=template, **extra)
    rows, n_new = run_job(todo, work, out, key, batch_size, "judge", config)
    return rows, JudgeStats.from_rows(rows, principles), n_new
