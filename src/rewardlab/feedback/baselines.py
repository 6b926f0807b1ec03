"""RMBoost's baselines, with the same prompts and generations budget.

- RLAIF: two samples per prompt, labelled by the per-principle judge (``--method``, default
  ``ab-fewshot``; both orders averaged);
  the sample the judge prefers (mean label over the principles) becomes ``chosen``.
- West-of-N: N samples per prompt scored by a trained reward model; best vs worst.

Samples are drawn with :func:`~rewardlab.feedback.common.sample_responses`, so with the generation
cache both baselines (and RMBoost's y1) share the exact same texts for the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.schema import PreferencePair
from rewardlab.feedback.common import (
    PromptItem,
    backend_id,
    distinct,
    item_key,
    render_prompt,
    sample_responses,
)
from rewardlab.feedback.jobs import job_config, run_job
from rewardlab.feedback.judge import JudgeConfig
from rewardlab.llm.base import GenerationConfig, LLMBackend


@dataclass
class RLAIFConfig(JudgeConfig):
    """The judge used to label two samples (the chosen one has mean label > 0.5)."""

    principles: list[str] = field(
        default_factory=lambda: ["helpfulness", "harmlessness"],
        metadata={
            "help": "principles whose labels are averaged to pick chosen (registered names "
            "or 'name=description'), comma-separated"
        },
    )


def rlaif_pair(
    item: PromptItem, x: str, y: str, res: dict, cfg: RLAIFConfig, judge: str
) -> PreferencePair | None:
    """Orient (x, y) by the judge's mean label; ``None`` for identical/empty samples or a tie.
    ``labels`` hold P(chosen better) per principle and their mean as ``"overall"`` (the soft target
    of a one-objective RM under the label rule)."""
    if not distinct(x, y):
        return None
    principles = cfg.resolve()
    lab_x = {pr.name: pr.to_label(res[pr.name]["p"]) for pr in principles}  # P(x better)
    p = sum(lab_x.values()) / len(lab_x)
    if p == 0.5:
        return None
    x_wins = p > 0.5
    chosen, rejected = (x, y) if x_wins else (y, x)
    labels = {k: (v if x_wins else 1.0 - v) for k, v in lab_x.items()}
    labels.setdefault("overall", p if x_wins else 1.0 - p)  # what a one-objective RM trains on
    meta = {
        **item.metadata,
        "rlaif": {
            "p_first": p,
            "samples": [x, y],
            "judge": judge,
            "orders": {k: {"p_ab": v["p_ab"], "p_ba": v["p_ba"]} for k, v in res.items()},
        },
    }
    return PreferencePair(item.prompt, chosen, rejected, source="rlaif", labels=labels, metadata=meta)


def generate_rlaif(
    items: list[PromptItem],
    backend: LLMBackend,
    out: str | Path,
    cfg: RLAIFConfig | None = None,
    gen: GenerationConfig | None = None,
    chunk: int = 16,
) -> tuple[list[dict], int]:
    """RLAIF pairs: samples 0 and 1 per prompt, judged in both orders. Returns (rows, new rows)."""
    cfg, gen = cfg or RLAIFConfig(), gen or GenerationConfig()
    principles, variant = cfg.resolve(), cfg.variant()
    template = variant.load_template()

    def work(batch: list[tuple[int, PromptItem]]) -> list[dict | None]:
        prompts = [it.prompt for _, it in batch]
        xs, ys = (sample_responses(backend, prompts, gen, k) for k in (0, 1))
        triples = [(render_prompt(p), x, y) for p, x, y in zip(prompts, xs, ys, strict=True)]
        ok = [i for i, (_, x, y) in enumerate(triples) if distinct(x, y)]
        results = variant.run(backend, [triples[i] for i in ok], principles, template)
        by_index = dict(zip(ok, results, strict=True))
        rows: list[dict | None] = []
        for i, ((_, it), x, y) in enumerate(zip(batch, xs, ys, strict=True)):
            pair = rlaif_pair(it, x, y, by_index[i], cfg, backend_id(backend)) if i in by_index else None
            rows.append(pair.to_dict() if pair else None)
        return rows

    key = lambda item: item_key(item[0], item[1].prompt)  # noqa: E731
    config = job_config("rlaif", backend, cfg=cfg, gen=gen, principles=principles, template=template)
    return run_job(list(enumerate(items)), work, out, key, chunk, "rlaif", config)


@dataclass
class WestOfNConfig:
    """The reward model and the number of samples."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "directory of a trained rewardlab RM (default: the embedded MiniLM trained once "
            "on bundled HH pairs and cached)"
        },
    )
    n: int = field(default=4, metadata={"help": "samples per prompt (best vs worst under the RM)"})
    objective: str | None = field(
        default=None, metadata={"help": "RM head to rank by (default: mean over all heads)"}
    )

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError("n must be >= 2")


def best_and_worst(samples: list[str], rewards: list[float]) -> tuple[int, int] | None:
    """Indices of the highest- and lowest-reward distinct non-empty samples (``None`` if < 2)."""
    seen: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.strip() and s.strip() not in seen:
            seen[s.strip()] = i
    idx = list(seen.values())
    if len(idx) < 2:
        return None
    best = max(idx, key=lambda i: rewards[i])
    worst = min(idx, key=lambda i: rewards[i])
    return (best, worst) if rewards[best] > rewards[worst] else None


def generate_west_of_n(
    items: list[PromptItem],
    backend: LLMBackend,
    out: str | Path,
    cfg: WestOfNConfig,
    gen: GenerationConfig | None = None,
    chunk: int = 16,
    rm=None,
) -> tuple[list[dict], int]:
    """West-of-N pairs: N samples per prompt ranked by the RM (``rm`` or loaded from
    ``cfg.model``); best is chosen, worst rejected. Returns (rows, new rows)."""
    from rewardlab.models.reward_model import RewardModel

    gen = gen or GenerationConfig()
    if rm is None and not cfg.model:
        from rewardlab.feedback.default_rm import default_reward_model

        cfg.model = str(default_reward_model())
    rm = rm or RewardModel.load(cfg.model)
    if cfg.objective and cfg.objective not in rm.cfg.objectives:
        raise ValueError(f"objective: {cfg.objective!r} not among {rm.cfg.objectives}")
    head = rm.cfg.objectives.index(cfg.objective) if cfg.objective else None

    def work(batch: list[tuple[int, PromptItem]]) -> list[dict | None]:
        prompts = [it.prompt for _, it in batch]
        samples = [sample_responses(backend, prompts, gen, k) for k in range(cfg.n)]  # (N, B)
        flat_p = [p for p in prompts for _ in range(cfg.n)]
        flat_y = [samples[k][b] for b in range(len(batch)) for k in range(cfg.n)]
        r = rm.score(flat_p, flat_y)  # (B·N, K)
        r = (r[:, head] if head is not None else r.mean(-1)).view(len(batch), cfg.n)  # (B, N)
        rows: list[dict | None] = []
        for b, (_, it) in enumerate(batch):
            ys, rs = [samples[k][b] for k in range(cfg.n)], r[b].tolist()
            pick = best_and_worst(ys, rs)
            if pick is None:
                rows.append(None)
                continue
            meta = {
                **it.metadata,
                "west_of_n": {
                    "samples": ys,
                    "rewards": rs,
                    "n": cfg.n,
                    "rm": str(cfg.model),
                    "generator": backend_id(backend),
                },
            }
            rows.append(
                PreferencePair(
                    it.prompt, ys[pick[0]], ys[pick[1]], source="west-of-n", metadata=meta
                ).to_dict()
            )
        return rows

    key = lambda item: item_key(item[0], item[1].prompt)  # noqa: E731
    config = job_config("west-of-n", backend, cfg=cfg, gen=gen)
    return run_job(list(enumerate(items)), work, out, key, chunk, f"west-of-{cfg.n}", config)
