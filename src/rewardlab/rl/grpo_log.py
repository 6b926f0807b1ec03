"""Per-step logs of a TRL GRPO run: the proxy reward beside a gold RM's reward on the same samples.

The over-optimization view (Gao et al. 2022) needs, at every optimizer step, the reward the policy
is trained on (the *proxy*) and the reward a stronger *gold* RM gives the very same completions.
With TRL this takes no custom trainer: pass the gold RM as a second reward function with weight 0
(``reward_weights=[1.0, 0.0]``), so it never moves the policy, and TRL logs its batch mean under
``rewards/<gold name>/mean`` while ``reward`` stays the proxy's mean.

- :class:`PromptColumnReward`: wraps a reward function so it scores against another dataset column
  (``rm_prompt``: the prompt as the RM was trained on it, e.g. HH's ``Human: … Assistant:`` text,
  while the policy sees a chat message); optionally records every scored sample (``samples``), so
  any other gold RM can score the same completions after the run (:func:`regold`).
- :class:`GRPOLogCallback`: a ``transformers.TrainerCallback`` that writes ``OUT/grpo_log.jsonl``,
  one row per optimizer step, ``{"step": int, "reward": float, "gold_reward": float | null,
  "reward_std": float | null}`` (run with ``logging_steps=1``), and optionally every TRL metric of
  the step to a second file. Resuming from a checkpoint keeps the rows up to its step.
- :func:`read_log` (validated rows), :func:`regold`, :func:`trend` (first-k vs last-k step means with 95%
  t-intervals, OLS slope per step with its 95% interval) and :func:`plot_log`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rewardlab.data.schema import DataError
from rewardlab.evaluate.metrics import mean_ci95, t95

LOG_NAME = "grpo_log.jsonl"
ROW_KEYS = ("step", "reward", "gold_reward", "reward_std")


class PromptColumnReward:
    """A TRL reward function that passes ``column`` (a dataset column TRL forwards as a keyword)
    as the prompts of ``func``; rows without it fall back to TRL's ``prompts``. ``__name__`` is
    ``name`` (what TRL logs it under), else ``func``'s. ``samples``: append one JSON row per scored
    completion, ``{"step", "prompt", "completion", "reward"}`` (``step`` = the optimizer step the
    batch trains, ``trainer_state.global_step + 1``; one generation per step)."""

    def __init__(
        self,
        func: Callable[..., list],
        column: str = "rm_prompt",
        name: str | None = None,
        samples: str | Path | None = None,
    ) -> None:
        self.func, self.column = func, column
        self.samples = Path(samples) if samples else None
        self.__name__ = name or getattr(func, "__name__", type(func).__name__)

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list:
        """``func(column values or prompts, completions, **kwargs)``."""
        alt = kwargs.pop(self.column, None)
        if alt is not None:
            prompts = [a if a is not None else p for a, p in zip(alt, prompts, strict=True)]
        rewards = self.func(prompts, completions, **kwargs)
        if self.samples is not None:
            from rewardlab.rl.trl import completion_text

            state = kwargs.get("trainer_state")
            step = int(state.global_step) + 1 if state is not None else 0
            for p, c, r in zip(prompts, completions, rewards, strict=True):
                _append(
                    self.samples, {"step": step, "prompt": p, "completion": completion_text(c), "reward": r}
                )
        return rewards


class GRPOLogCallback(TrainerCallback):
    """Writes one row per logged step to ``path`` (see the module docstring). ``gold_name``: the
    name of the zero-weight gold reward function (``None``: ``gold_reward`` is null).
    ``metrics_path``: also append every numeric value TRL logged at that step, with ``step``."""

    def __init__(
        self,
        path: str | Path,
        gold_name: str | None = None,
        metrics_path: str | Path | None = None,
        samples_path: str | Path | None = None,
    ):
        self.path = Path(path)
        self.gold_key = f"rewards/{gold_name}/mean" if gold_name else None
        self.metrics_path = Path(metrics_path) if metrics_path else None
        self.samples_path = Path(samples_path) if samples_path else None

    def on_train_begin(self, args, state, control, **kwargs):
        """Drop rows after the starting step (all of them for a fresh run, none past a resumed
        checkpoint's step), in the log, the metrics and the samples (``samples_path``)."""
        if state.is_world_process_zero:
            for p in (self.path, self.metrics_path, self.samples_path):
                if p is not None:
                    _truncate(p, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Append the step's row when TRL's log carries a reward (training logs only)."""
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        row = {
            "step": int(state.global_step),
            "reward": _num(logs.get("reward")),
            "gold_reward": _num(logs.get(self.gold_key)) if self.gold_key else None,
            "reward_std": _num(logs.get("reward_std")),
        }
        _append(self.path, row)
        if self.metrics_path is not None:
            extra = {k: _num(v) for k, v in logs.items() if isinstance(v, int | float)}
            _append(self.metrics_path, {"step": row["step"], **extra})


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _truncate(path: Path, step: int) -> None:
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


def read_log(path: str | Path) -> list[dict]:
    """The rows of a ``grpo_log.jsonl``; a bad row raises ``DataError("file:line: field ...")``."""
    from rewardlab.data.loaders.io import iter_jsonl

    rows = []
    for where, row in iter_jsonl(path, allow_empty=True):
        if not isinstance(row, dict):
            raise DataError(where, None, "a row must be a JSON object")
        for key in ROW_KEYS:
            if key not in row:
                raise DataError(where, key, "missing")
        if not isinstance(row["step"], int) or isinstance(row["step"], bool):
            raise DataError(where, "step", f"must be an integer, got {row['step']!r}")
        for key in ROW_KEYS[1:]:
            v = row[key]
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise DataError(where, key, f"must be a number or null, got {v!r}")
        rows.append({k: row[k] for k in ROW_KEYS})
    return rows


def regold(log_path: str | Path, samples_path: str | Path, gold: Callable[..., list]) -> list[dict]:
    """Rescore the recorded samples of every logged step with ``gold`` (a TRL reward function,
    e.g. ``trl_reward_func(DIR)``) and rewrite each row's ``gold_reward`` as their mean; returns
    the rows. Steps without samples get null."""
    rows = read_log(log_path)
    by_step: dict[int, list[dict]] = {}
    for line in Path(samples_path).read_text().splitlines():
        if line.strip():
            s = json.loads(line)
            by_step.setdefault(s["step"], []).append(s)
    for row in rows:
        got = by_step.get(row["step"])
        scores = gold([s["prompt"] for s in got], [s["completion"] for s in got]) if got else []
        row["gold_reward"] = statistics.fmean(scores) if scores else None
    Path(log_path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def slope_ci95(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """OLS slope b of y on x and the half-width of its 95% t-interval, t_{0.975, n−2}·SE(b),
    SE(b) = √(Σ residual² / (n − 2) / Σ (x − x̄)²); half-width 0 for n ≤ 2. Residuals are taken
    as independent: consecutive RL steps are autocorrelated, so the interval is optimistic."""
    n = len(xs)
    if n < 2 or n != len(ys):
        raise ValueError(f"slope needs >= 2 aligned points, got {n} x and {len(ys)} y")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("slope needs at least two distinct x values")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    if n <= 2:
        return b, 0.0
    ssr = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    return b, t95(n - 2) * math.sqrt(ssr / (n - 2) / sxx)


def trend(rows: list[dict], key: str = "reward", window: int = 10) -> dict[str, Any] | None:
    """Trend of ``key`` over steps (rows where it is not null): the mean of the first and of the
    last ``window`` steps, each with its 95% t-half-width over steps, their difference, and the OLS
    slope per step with its half-width (:func:`slope_ci95`). ``None`` with fewer than 2 values."""
    pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    if len(pts) < 2:
        return None
    w = max(1, min(window, len(pts) // 2))
    first, last = [y for _, y in pts[:w]], [y for _, y in pts[-w:]]
    (m0, h0), (m1, h1) = mean_ci95(first), mean_ci95(last)
    b, hb = slope_ci95([float(s) for s, _ in pts], [y for _, y in pts])
    return {
        "steps": len(pts),
        "window": w,
        "first_mean": m0,
        "first_ci95": h0,
        "last_mean": m1,
        "last_ci95": h1,
        "delta": m1 - m0,
        "slope_per_step": b,
        "slope_ci95": hb,
    }


def _moving_mean(ys: list[float], k: int) -> list[float]:
    return [statistics.fmean(ys[max(0, i - k + 1) : i + 1]) for i in range(len(ys))]


def plot_log(
    rows: list[dict], path: str | Path, title: str = "GRPO: proxy vs gold reward", smooth: int = 5
) -> None:
    """Proxy reward (left axis) and gold reward (right axis: the two RMs' scales differ) per step,
    each as points plus a trailing ``smooth``-step mean; written as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = [("reward", "proxy reward (trained on)", "tab:blue", ax)]
    if any(r["gold_reward"] is not None for r in rows):
        series.append(("gold_reward", "gold reward (same samples)", "tab:red", ax.twinx()))
    for key, label, color, axis in series:
        pts = [(r["step"], r[key]) for r in rows if r[key] is not None]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        axis.plot(xs, ys, "o", color=color, ms=3, alpha=0.35)
        axis.plot(xs, _moving_mean(list(ys), smooth), "-", color=color, label=f"{label}, {smooth}-step mean")
        axis.set_ylabel(label, color=color)
    ax.set_xlabel("optimizer step")
    ax.set_title(title)
    handles = [h for _, _, _, a in series for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
