"""RMBoost synthetic preference pairs (Shen et al. 2024).

For a prompt x: sample y1; draw a direction d ∈ {better, worse} (P(better) = ``p_better``) and a
non-empty random subset A of a domain's quality aspects; ask the LLM for y2 given (x, y1, d, A).
The label is known by construction: d = better → (chosen, rejected) = (y2, y1), else (y1, y2).
Each row records the direction, the aspects and both generations in ``metadata["rmboost"]``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from rewardlab.data.schema import PreferencePair
from rewardlab.feedback.aspects import ASPECT_SETS, DIRECTIONS, Direction, describe_aspects
from rewardlab.feedback.common import (
    PromptItem,
    Template,
    backend_id,
    clean_generation,
    distinct,
    item_key,
    render_prompt,
    sample_responses,
)
from rewardlab.feedback.jobs import job_config, run_job
from rewardlab.llm.base import GenerationConfig, LLMBackend


@dataclass
class RMBoostConfig:
    """How RMBoost draws labels and aspects and prompts for y2."""

    aspect_set: str = field(
        default="general",
        metadata={"help": f"quality-aspect set: one of {ASPECT_SETS.names()}"},
    )
    aspects: list[str] = field(
        default_factory=list,
        metadata={
            "help": "aspect names to draw from (comma-separated; default: the whole set; "
            "names outside the set are allowed)"
        },
    )
    min_aspects: int = field(default=1, metadata={"help": "fewest aspects per pair"})
    max_aspects: int = field(default=0, metadata={"help": "most aspects per pair (0 = all)"})
    p_better: float = field(default=0.5, metadata={"help": "probability that y2 must be better"})
    draw_seed: int = field(default=0, metadata={"help": "seed of the direction/aspect draws"})
    retries: int = field(default=1, metadata={"help": "re-sample y2 (new seed) this often when it copies y1"})
    template: str = field(
        default="rmboost",
        metadata={
            "help": "y2 prompt: a bundled name or a .txt file with {prompt}, {response}, "
            "{direction}, {aspects}, {guidance}"
        },
    )

    def __post_init__(self) -> None:
        if self.aspect_set not in ASPECT_SETS:
            raise ValueError(f"aspect_set: unknown {self.aspect_set!r}; choose {ASPECT_SETS.names()}")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if not 0.0 <= self.p_better <= 1.0:
            raise ValueError("p_better must lie in [0, 1]")
        n = len(self.pool())
        if not 1 <= self.min_aspects <= n:
            raise ValueError(f"min_aspects must lie in [1, {n}]")
        if self.max_aspects and not self.min_aspects <= self.max_aspects:
            raise ValueError("max_aspects must be 0 (all) or >= min_aspects")

    def pool(self) -> dict[str, str]:
        """Aspect name → description to draw from."""
        base = ASPECT_SETS.get(self.aspect_set)
        return {a: base.get(a, "") for a in self.aspects} if self.aspects else dict(base)

    def draw(self, index: int) -> tuple[Direction, list[str]]:
        """The direction and aspects of item ``index`` (deterministic: resumes draw the same)."""
        rng = random.Random(f"rmboost:{self.draw_seed}:{index}")
        direction = DIRECTIONS.get("better" if rng.random() < self.p_better else "worse")
        names = list(self.pool())
        hi = min(self.max_aspects or len(names), len(names))
        k = rng.randint(self.min_aspects, hi)
        return direction, sorted(rng.sample(names, k), key=names.index)


def rmboost_conversation(template: Template, x: str, y1: str, d: Direction, aspects: str) -> list:
    """The one-turn conversation asking for y2."""
    text = template.render(
        prompt=x, response=y1, direction=d.comparative, aspects=aspects, guidance=d.guidance
    )
    return [{"role": "user", "content": text}]


def write_y2(
    backend: LLMBackend, convs: list, y1s: list[str], gen: GenerationConfig, retries: int
) -> tuple[list[str], list[int]]:
    """y2 per conversation, re-sampled with seed + 1, + 2, ... (``retries`` times at most) where
    it is empty or a copy of y1. Returns (texts, attempts used per item)."""
    y2s = [clean_generation(t) for t in backend.chat(convs, gen)]
    tries = [1] * len(convs)
    for r in range(1, retries + 1):
        redo = [i for i, (a, b) in enumerate(zip(y1s, y2s, strict=True)) if not distinct(a, b)]
        if not redo:
            break
        again = backend.chat([convs[i] for i in redo], replace(gen, seed=gen.seed + r))
        for i, text in zip(redo, again, strict=True):
            y2s[i], tries[i] = clean_generation(text), r + 1
    return y2s, tries


def rmboost_pair(
    item: PromptItem,
    y1: str,
    y2: str,
    d: Direction,
    aspects: list[str],
    cfg: RMBoostConfig,
    generator: str,
) -> PreferencePair | None:
    """The labelled pair, or ``None`` when y1 and y2 cannot form one (empty or identical)."""
    if not distinct(y1, y2):
        return None
    chosen, rejected = (y2, y1) if d.y2_is_chosen else (y1, y2)
    meta = {
        **item.metadata,
        "rmboost": {
            "label": d.name,
            "aspects": aspects,
            "aspect_set": cfg.aspect_set,
            "y1": y1,
            "y2": y2,
        },
        "generator": generator,
    }
    return PreferencePair(item.prompt, chosen, rejected, source="rmboost", metadata=meta)


def generate_rmboost(
    items: list[PromptItem],
    backend: LLMBackend,
    out: str | Path,
    cfg: RMBoostConfig | None = None,
    gen: GenerationConfig | None = None,
    chunk: int = 16,
) -> tuple[list[dict], int]:
    """RMBoost pairs for ``items``, appended to ``out`` (resumes). Costs 2 generations per prompt,
    plus one per retry where y2 copied y1 (recorded as ``metadata["rmboost"]["y2_attempts"]``).

    Returns (all rows, rows written now); prompts whose y1/y2 stay empty or identical after
    ``retries`` re-samples give no row."""
    cfg, gen = cfg or RMBoostConfig(), gen or GenerationConfig()
    template = Template.load(cfg.template, required=("response", "direction"))
    pool = cfg.pool()

    def work(batch: list[tuple[int, PromptItem]]) -> list[dict | None]:
        y1s = sample_responses(backend, [it.prompt for _, it in batch], gen, 0)
        draws = [cfg.draw(i) for i, _ in batch]
        convs = [
            rmboost_conversation(template, render_prompt(it.prompt), y1, d, describe_aspects(pool, names))
            for (_, it), y1, (d, names) in zip(batch, y1s, draws, strict=True)
        ]
        y2s, tries = write_y2(backend, convs, y1s, gen, cfg.retries)
        rows = []
        for (_, it), y1, y2, n, (d, names) in zip(batch, y1s, y2s, tries, draws, strict=True):
            pair = rmboost_pair(it, y1, y2, d, names, cfg, backend_id(backend))
            if pair is not None:
                pair.metadata["rmboost"]["y2_attempts"] = n
            rows.append(pair.to_dict() if pair else None)
        return rows

    key = lambda item: item_key(item[0], item[1].prompt)  # noqa: E731
    config = job_config("rmboost", backend, cfg=cfg, gen=gen, template=template, aspects=pool)
    return run_job(list(enumerate(items)), work, out, key, chunk, "rmboost", config)
