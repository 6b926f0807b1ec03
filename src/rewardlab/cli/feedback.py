"""``rewardlab critique``, ``rewardlab judge`` and ``rewardlab generate {rmboost,rlaif,west-of-n}``.

Each is a thin wrapper over one :mod:`rewardlab.feedback` call; all resume from ``--out``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from rewardlab.cli.main import app
from rewardlab.cli.options import config_command
from rewardlab.data.schema import DataError
from rewardlab.feedback import (
    CritiqueConfig,
    JudgeConfig,
    RLAIFConfig,
    RMBoostConfig,
    WestOfNConfig,
    critique_pairs,
    generate_rlaif,
    generate_rmboost,
    generate_west_of_n,
    judge_pairs,
    load_prompts,
)
from rewardlab.feedback.common import JobIO, load_pair_input
from rewardlab.llm import BackendConfig, build_backend
from rewardlab.llm.base import GenerationConfig, backend_identity
from rewardlab.llm.jobs import discard_output

console = Console(stderr=True)
generate_app = typer.Typer(
    help="Generate synthetic preference pairs from prompts (RMBoost and its baselines).",
    no_args_is_help=True,
)
app.add_typer(generate_app, name="generate")


def _guard(fn: Callable[[], Any], io: JobIO | None = None) -> Any:
    """Run ``fn`` (after discarding ``io.out`` under ``--overwrite``); turn data/config errors
    into a one-line message and exit code 2."""
    try:
        if io is not None and io.overwrite:
            discard_output(io.out)
        return fn()
    except (DataError, ValueError, FileNotFoundError, RuntimeError) as e:
        console.print(f"[red]error:[/red] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None


class LazyBackend:
    """Builds the LLM backend on first use, so rerunning a finished job never loads the model."""

    def __init__(self, cfg: BackendConfig) -> None:
        self._cfg, self._backend = cfg, None

    def identity(self) -> dict[str, Any]:
        """The backend's identity without loading the model (a server with no --model given is
        asked for its first model, as the built backend would)."""
        if self._backend is None and (self._cfg.backend != "openai" or self._cfg.model):
            return self._cfg.identity()
        return backend_identity(self._get())

    def _get(self) -> Any:
        if self._backend is None:
            self._backend = build_backend(self._cfg)
        return self._backend

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._get(), attr)


def _table(title: str, rows: dict[str, Any]) -> None:
    t = Table(title=title, show_header=False)
    for k, v in rows.items():
        t.add_row(str(k), f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(t)


def _generated(io: JobIO, rows: list[dict], new: int, n_items: int, what: str) -> None:
    _table(
        what,
        {
            "prompts": n_items,
            "pairs in --out": len(rows),
            "written now": new,
            "no pair (empty/identical/tied)": n_items - len(rows),
            "out": str(io.out),
        },
    )


@config_command(app, "critique", JobIO, CritiqueConfig, GenerationConfig, BackendConfig)
def critique(io: JobIO, cfg: CritiqueConfig, gen: GenerationConfig, llm: BackendConfig) -> None:
    """Write an LLM critique of each pair's chosen and rejected response (quality-checked)."""

    def run() -> None:
        pairs = load_pair_input(
            io.data, on_invalid=io.on_invalid
        )  # all pairs: the shuffle permutation ignores --limit
        res = critique_pairs(pairs, LazyBackend(llm), io.out, cfg, gen, io.limit, io.chunk)
        _table(
            f"critiques ({cfg.degrade})",
            {
                **res.summary()["qc"],
                "pairs": len(res.pairs),
                "written now": res.n_new,
                "out": str(io.out),
            },
        )

    _guard(run, io)


@config_command(app, "judge", JobIO, JudgeConfig, BackendConfig)
def judge(io: JobIO, cfg: JudgeConfig, llm: BackendConfig) -> None:
    """Label each pair per principle: P(chosen better) from the judge (--method, default
    ab-fewshot: A/B probabilities with two solved examples), both orders averaged."""

    def run() -> None:
        pairs = load_pair_input(io.data, io.limit, io.on_invalid)
        rows, stats, new = judge_pairs(pairs, LazyBackend(llm), io.out, cfg, None, io.chunk)
        t = Table(title=f"judged {len(rows)} pairs ({new} now, method {cfg.method}) -> {io.out}")
        cols = ["pairs", "agreement", "mean_label", "position_bias", "consistency"]
        t.add_column("principle")
        for c in cols:
            t.add_column(c)
        for name, s in stats.per_principle.items():
            t.add_row(name, *(f"{s[c]:.3f}" if isinstance(s[c], float) else str(s[c]) for c in cols))
        console.print(t)
        console.print(
            "agreement = label > 0.5 (judge agrees with the given chosen); position_bias"
            " = share of single-order answers where A won (0.5 = none)"
        )

    _guard(run, io)


@config_command(generate_app, "rmboost", JobIO, RMBoostConfig, GenerationConfig, BackendConfig)
def rmboost(io: JobIO, cfg: RMBoostConfig, gen: GenerationConfig, llm: BackendConfig) -> None:
    """RMBoost: y1, a drawn direction and aspects, then y2 from (x, y1, direction, aspects)."""

    def run() -> None:
        items = load_prompts(io.data, io.limit)
        rows, new = generate_rmboost(items, LazyBackend(llm), io.out, cfg, gen, io.chunk)
        _generated(io, rows, new, len(items), "RMBoost")

    _guard(run, io)


@config_command(generate_app, "rlaif", JobIO, RLAIFConfig, GenerationConfig, BackendConfig)
def rlaif(io: JobIO, cfg: RLAIFConfig, gen: GenerationConfig, llm: BackendConfig) -> None:
    """RLAIF baseline: two samples per prompt, labelled by the per-principle A/B judge."""

    def run() -> None:
        items = load_prompts(io.data, io.limit)
        rows, new = generate_rlaif(items, LazyBackend(llm), io.out, cfg, gen, io.chunk)
        _generated(io, rows, new, len(items), "RLAIF")

    _guard(run, io)


def _renamed(cls: type, renames: dict[str, str]) -> type:
    """A copy of dataclass ``cls`` with some fields renamed (to avoid a flag clash)."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        kw: dict[str, Any] = {"metadata": f.metadata}
        if f.default_factory is not dataclasses.MISSING:
            kw["default_factory"] = f.default_factory
        else:
            kw["default"] = f.default
        specs.append((renames.get(f.name, f.name), hints[f.name], dataclasses.field(**kw)))
    return dataclasses.make_dataclass(cls.__name__, specs)


LLMOptions = _renamed(BackendConfig, {"model": "llm_model"})


@config_command(generate_app, "west-of-n", JobIO, WestOfNConfig, GenerationConfig, LLMOptions)
def west_of_n(io: JobIO, cfg: WestOfNConfig, gen: GenerationConfig, opts: Any) -> None:
    """West-of-N baseline: N samples per prompt, best vs worst under the RM in --model DIR.

    The LLM's own model flag is --llm-model here (--model names the reward model)."""

    def run() -> None:
        values = dataclasses.asdict(opts)
        values["model"] = values.pop("llm_model")
        items = load_prompts(io.data, io.limit)
        backend = LazyBackend(BackendConfig(**values))
        rows, new = generate_west_of_n(items, backend, io.out, cfg, gen, io.chunk)
        _generated(io, rows, new, len(items), f"West-of-{cfg.n}")

    _guard(run, io)
