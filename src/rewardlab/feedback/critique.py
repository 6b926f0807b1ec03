"""Synthetic critiques (Ye et al. 2024): an LLM reviews each response on its own, covering
instruction following, correctness and style; the RM then reads prompt + response + critique.

``critique_pairs`` writes pairs with ``critiques = {"chosen": ..., "rejected": ...}`` filled and
per-critique quality-control flags in ``metadata["critique"]["qc"]``; it resumes from ``out``.
Degraded-critic modes (a registry) produce deliberately worse critiques to measure their effect.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.schema import PreferencePair
from rewardlab.feedback.common import Template, content_hash, item_key, render_prompt
from rewardlab.feedback.jobs import job_config, run_job
from rewardlab.feedback.qc import QCContext, QCReport, check_critique
from rewardlab.llm.base import GenerationConfig, LLMBackend
from rewardlab.registry import Registry

SIDES = ("chosen", "rejected")


def _identity(n: int, seed: int) -> list[int]:
    return list(range(n))


def _derangement(n: int, seed: int) -> list[int]:
    """A random cyclic permutation (Sattolo): no pair keeps its own critiques."""
    if n < 2:
        raise ValueError("degrade 'shuffle' needs at least 2 pairs")
    src = list(range(n))
    rng = random.Random(seed)
    for i in range(n - 1, 0, -1):
        j = rng.randrange(i)
        src[i], src[j] = src[j], src[i]
    return src


@dataclass(frozen=True)
class DegradeMode:
    """How a degraded critic differs: another template, and/or critiques taken from other pairs.

    ``sources(n, seed)[i]`` is the pair whose responses are critiqued for pair ``i``."""

    description: str
    template: str | None = None
    sources: Callable[[int, int], list[int]] = _identity


DEGRADE_MODES: Registry[DegradeMode] = Registry("critic degrade mode")
DEGRADE_MODES.add("none", DegradeMode("the normal critic"))
DEGRADE_MODES.add("shuffle", DegradeMode("critiques shuffled across pairs", sources=_derangement))
DEGRADE_MODES.add("weak-prompt", DegradeMode("a deliberately vague prompt", template="critique_weak"))


@dataclass
class CritiqueConfig:
    """How critiques are written."""

    template: str = field(
        default="critique",
        metadata={"help": "critique prompt: a bundled name or a .txt file with {prompt} and {response}"},
    )
    degrade: str = field(
        default="none",
        metadata={"help": f"degraded-critic mode: one of {DEGRADE_MODES.names()}"},
    )
    shuffle_seed: int = field(default=0, metadata={"help": "seed of the 'shuffle' degrade mode"})
    min_chars: int = field(default=10, metadata={"help": "QC: shorter critiques count as empty"})

    def __post_init__(self) -> None:
        if self.degrade not in DEGRADE_MODES:
            raise ValueError(f"degrade: unknown mode {self.degrade!r}; choose {DEGRADE_MODES.names()}")
        if self.min_chars < 0:
            raise ValueError("min_chars must be >= 0")

    def load_template(self) -> Template:
        """The template in use: the degrade mode's own one wins over ``template``."""
        name = DEGRADE_MODES.get(self.degrade).template or self.template
        return Template.load(name, required=("response",))


@dataclass
class CritiqueResult:
    """All output pairs (resumed and new) and the QC counts over them."""

    pairs: list[dict]
    qc: QCReport
    n_new: int = 0

    def summary(self) -> dict:
        """JSON-ready summary."""
        return {"pairs": len(self.pairs), "new": self.n_new, "qc": self.qc.as_dict()}


def critique_conversations(pair: PreferencePair, template: Template) -> list[list[dict]]:
    """Two one-turn conversations asking for a critique of ``chosen`` and of ``rejected``."""
    prompt = render_prompt(pair.prompt)
    return [
        [{"role": "user", "content": template.render(prompt=prompt, response=getattr(pair, s))}]
        for s in SIDES
    ]


def content_key(pair: PreferencePair) -> str:
    """A pair's identity by content (prompt, chosen, rejected), whatever its position."""
    return content_hash(pair.prompt, pair.chosen, pair.rejected)


def _prior_critiques(out: Path) -> dict[str, dict]:
    """:func:`content_key` → a row of ``out`` holding that pair's own critiques (none: {})."""
    if not out.exists():
        return {}
    found = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            pair = PreferencePair(row["prompt"], row["chosen"], row["rejected"])
            found[content_key(pair)] = {"critiques": row["critiques"], "metadata": row["metadata"]}
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a torn last line or a foreign row: the job's own checks report those
    return found


def critique_pairs(
    pairs: list[PreferencePair],
    backend: LLMBackend,
    out: str | Path,
    cfg: CritiqueConfig | None = None,
    gen: GenerationConfig | None = None,
    limit: int | None = None,
    batch_size: int = 8,
) -> CritiqueResult:
    """Critique both responses of each pair (the first ``limit``), appending rows to ``out``.

    Shuffle mode draws its permutation over all ``pairs`` so ``limit`` does not change it."""
    cfg, gen = cfg or CritiqueConfig(), gen or GenerationConfig()
    template = cfg.load_template()
    mode = DEGRADE_MODES.get(cfg.degrade)
    sources = mode.sources(len(pairs), cfg.shuffle_seed)
    todo = list(enumerate(pairs))[:limit] if limit is not None else list(enumerate(pairs))
    ctx: list[QCContext] = []  # built on first use: a fully resumed job never touches the LLM
    # each pair's own critiques depend on its content only: reuse those already in `out` (same
    # configuration, checked by the job) when the pair list changed order or grew
    prior = _prior_critiques(Path(out)) if mode.sources is _identity else {}

    def work(batch: list[tuple[int, PreferencePair]]) -> list[dict]:
        found = [prior.get(content_key(p)) for _, p in batch]
        fresh = [item for item, old in zip(batch, found, strict=True) if old is None]
        convs = [c for i, _ in fresh for c in critique_conversations(pairs[sources[i]], template)]
        texts = iter(backend.chat(convs, gen) if convs else [])
        if convs and not ctx:
            counter = getattr(backend, "count_tokens", None)  # count_tokens(texts) -> list[int]
            count = (lambda text: counter([text])[0]) if callable(counter) else None
            ctx.append(QCContext(template, gen.max_new_tokens, count, cfg.min_chars))
        rows = []
        for (i, pair), old in zip(batch, found, strict=True):
            if old is not None:
                crit, qc = old["critiques"], old["metadata"]["critique"]["qc"]
            else:
                crit = {s: next(texts).strip() for s in SIDES}
                qc = {s: check_critique(crit[s], ctx[0]) for s in SIDES}
            meta = dict(pair.metadata)
            meta["critique"] = {
                "qc": qc,
                "critic": f"{backend.name}:{backend.model}",
                "template": Path(template.source).name,
                "degrade": cfg.degrade,
                "source_index": sources[i],
            }
            rows.append(dataclasses.replace(pair, critiques=crit, metadata=meta).to_dict())
        return rows

    key = lambda item: item_key(item[0], item[1].prompt, item[1].chosen, item[1].rejected)  # noqa: E731
    # the shuffle permutation depends on the number of pairs: part of the configuration
    extra = {"n_pairs": len(pairs)} if mode.sources is not _identity else {}
    config = job_config("critique", backend, cfg=cfg, gen=gen, template=template, **extra)
    rows, n_new = run_job(todo, work, out, key, batch_size, f"critique ({cfg.degrade})", config)
    report = QCReport()
    for row in rows:
        qc = row.get("metadata", {}).get("critique", {}).get("qc", {})
        for s in SIDES:
            report.add(qc.get(s, []))
    return CritiqueResult(rows, report, n_new)
