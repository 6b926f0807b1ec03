"""Per-principle AI feedback (MORLAIF): soft A/B labels, both orders averaged.

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
import math
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.schema import PreferencePair
from rewardlab.feedback.common import Template, item_key, render_prompt
from rewardlab.feedback.jobs import job_config, run_job
from rewardlab.feedback.principles import Principle, parse_principle
from rewardlab.llm.base import LLMBackend

OPTIONS = ["A", "B"]


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
    template: str = field(
        default="judge",
        metadata={
            "help": "judge prompt: a bundled name or a .txt file with {response_a}, "
            "{response_b}, {adjective}, {description}, {prompt}"
        },
    )
    both_orders: bool = field(default=True, metadata={"help": "ask in both orders and average"})

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

    def resolve(self) -> list[Principle]:
        """The principles as objects (registered or user-defined)."""
        try:
            return [parse_principle(s, set(self.inverted)) for s in self.principles]
        except KeyError as e:
            raise ValueError(f"principles: {e.args[0]}") from None

    def load_template(self) -> Template:
        """The judge template."""
        return Template.load(self.template, required=("response_a", "response_b"))


def p_first(logprobs: dict[str, float]) -> float:
    """P(A) from the two option log-probabilities: σ(ℓ_A − ℓ_B); 0.5 when both are −inf."""
    la, lb = logprobs.get("A", -math.inf), logprobs.get("B", -math.inf)
    if la == lb:
        return 0.5
    if math.isinf(la) or math.isinf(lb):
        return 1.0 if la > lb else 0.0
    return 1.0 / (1.0 + math.exp(lb - la))


def judge_conversation(template: Template, prompt: str, a: str, b: str, pr: Principle) -> list[dict]:
    """One judging conversation."""
    text = template.render(
        prompt=prompt,
        response_a=a,
        response_b=b,
        adjective=pr.adjective,
        description=pr.description,
        principle=pr.name,
    )
    return [{"role": "user", "content": text}]


def compare(
    backend: LLMBackend,
    triples: list[tuple[str, str, str]],
    principles: list[Principle],
    template: Template,
    both_orders: bool = True,
) -> list[dict[str, dict[str, float]]]:
    """Judge (prompt, x, y) triples: per triple and principle ``{"p_ab", "p_ba", "p"}`` where
    ``p_ab`` = P(A) with A = x, ``p_ba`` = P(A) with A = y, ``p`` = P(x more X) (both averaged)."""
    convs = []
    for prompt, x, y in triples:
        for pr in principles:
            convs.append(judge_conversation(template, prompt, x, y, pr))
            if both_orders:
                convs.append(judge_conversation(template, prompt, y, x, pr))
    probs = [p_first(lp) for lp in backend.option_logprobs(convs, OPTIONS)]
    step = 2 if both_orders else 1
    out, k = [], 0
    for _ in triples:
        res = {}
        for pr in principles:
            p_ab = probs[k]
            p_ba = probs[k + 1] if both_orders else None
            p = (p_ab + (1.0 - p_ba)) / 2 if p_ba is not None else p_ab
            res[pr.name] = {"p_ab": p_ab, "p_ba": p_ba, "p": p}
            k += step
        out.append(res)
    return out


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
    principles, template = cfg.resolve(), cfg.load_template()
    todo = list(enumerate(pairs))[:limit] if limit is not None else list(enumerate(pairs))

    def work(batch: list[tuple[int, PreferencePair]]) -> list[dict]:
        triples = [(render_prompt(p.prompt), p.chosen, p.rejected) for _, p in batch]
        results = compare(backend, triples, principles, template, cfg.both_orders)
        rows = []
        for (_, pair), res in zip(batch, results, strict=True):
            labels = dict(pair.labels)
            labels.update({pr.name: pr.to_label(res[pr.name]["p"]) for pr in principles})
            meta = dict(pair.metadata)
            meta["judge"] = {
                **meta.get("judge", {}),
                **{
                    pr.name: {"p_ab": res[pr.name]["p_ab"], "p_ba": res[pr.name]["p_ba"]} for pr in principles
                },
            }
            meta["judge_by"] = f"{backend.name}:{backend.model}"
            rows.append(dataclasses.replace(pair, labels=labels, metadata=meta).to_dict())
        return rows

    key = lambda item: item_key(item[0], item[1].prompt, item[1].chosen, item[1].rejected)  # noqa: E731
    config = job_config("judge", backend, cfg=cfg, principles=principles, template=template)
    rows, n_new = run_job(todo, work, out, key, batch_size, "judge", config)
    return rows, JudgeStats.from_rows(rows, principles), n_new
