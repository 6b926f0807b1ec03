"""Calibrating a pairwise judge's soft labels on a few labelled pairs (pure functions).

A small judge's both-order label ``p = ½(p_ab + 1 − p_ba)`` is nearly always 0.50–0.53 (the
1.5B judge's A/B margins are tiny), so an RM trained on it as a soft label learns next to nothing,
and its reliability cannot be read off. Calibration keeps every decision and fixes the scale.

With ``p_ab`` = P(answer A | chosen shown as A) and ``p_ba`` = P(answer A | chosen shown as B), a
constant position bias ``b`` adds to both log-odds: ``logit p_ab = s + b``, ``logit p_ba = −s + b``.
So the bias-free score of the pair is

    z = ½ · (logit p_ab − logit p_ba)                      (= s)

and the calibrated label is ``σ(a · z)`` with one scale ``a ≥ 0`` fitted by maximum likelihood
on labelled pairs (temperature scaling, Guo et al. 2017, on the order-debiased log-odds):

    a* = argmin_a  − Σ_i [ y_i log σ(a z_i) + (1 − y_i) log σ(−a z_i) ]

``y_i = 1`` when pair i's first response is the better one (every pair in chosen/rejected
orientation has ``y = 1``; the no-intercept model is symmetric, so that is enough). The sign of
``z`` — the decision — equals the sign of ``p − ½`` for every pair, so accuracy is unchanged; the
fit is a 1-D search over a log-spaced grid (deterministic, bounded, fine with 10 pairs even when
they are separable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EPS = 1e-6


def _logit(p: float) -> float:
    p = min(max(p, EPS), 1 - EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def order_logodds(p_ab: float, p_ba: float) -> float:
    """z = ½(logit p_ab − logit p_ba): the pair's log-odds with a constant position bias removed."""
    return 0.5 * (_logit(p_ab) - _logit(p_ba))


def nll(p: Sequence[float], y: Sequence[float]) -> float:
    """Mean negative log-likelihood −(1/n) Σ [y log p + (1 − y) log(1 − p)] (p clipped to 1e-6)."""
    _check(p, y)
    total = 0.0
    for pi, yi in zip(p, y, strict=True):
        pi = min(max(pi, EPS), 1 - EPS)
        total -= yi * math.log(pi) + (1 - yi) * math.log(1 - pi)
    return total / len(p)


def brier(p: Sequence[float], y: Sequence[float]) -> float:
    """Brier score (1/n) Σ (p − y)²."""
    _check(p, y)
    return sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / len(p)


def ece(p: Sequence[float], y: Sequence[float], bins: int = 10) -> float:
    """Top-label expected calibration error of binary probabilities: with confidence
    c_i = max(p_i, 1 − p_i) and hit h_i = [p_i > ½] == [y_i > ½] (a tie p = ½ counts wrong),
    ECE = Σ_b (n_b / n) · |mean(h)_b − mean(c)_b| over ``bins`` equal-width bins of c on [½, 1].
    (Unlike binning p against y, it is the same for a pair in either orientation.)"""
    _check(p, y)
    groups: dict[int, list[tuple[float, float]]] = {}
    for pi, yi in zip(p, y, strict=True):
        conf = max(pi, 1 - pi)
        hit = float(pi != 0.5 and (pi > 0.5) == (yi > 0.5))
        groups.setdefault(min(int((conf - 0.5) * 2 * bins), bins - 1), []).append((conf, hit))
    return sum(
        len(g) / len(p) * abs(sum(h for _, h in g) / len(g) - sum(c for c, _ in g) / len(g))
        for g in groups.values()
    )


def fit_scale(
    z: Sequence[float], y: Sequence[float], lo: float = 1e-2, hi: float = 1e3, steps: int = 401
) -> float:
    """The scale a* ∈ [lo, hi] minimising the NLL of σ(a·z) against y (see the module docstring),
    searched over ``steps`` log-spaced values; the smallest of equally good values wins."""
    _check(z, y)
    if not 0 < lo < hi or steps < 2:
        raise ValueError("fit_scale needs 0 < lo < hi and steps >= 2")
    grid = [lo * (hi / lo) ** (k / (steps - 1)) for k in range(steps)]
    return min(grid, key=lambda a: (round(nll(calibrate(z, a), y), 12), a))


def calibrate(z: Sequence[float], a: float) -> list[float]:
    """Calibrated labels σ(a·z_i)."""
    if a < 0:
        raise ValueError(f"calibration scale must be >= 0, got {a}")
    return [_sigmoid(a * zi) for zi in z]


def _check(p: Sequence[float], y: Sequence[float]) -> None:
    if len(p) != len(y) or not len(p):
        raise ValueError(f"need equally long, non-empty inputs (got {len(p)} and {len(y)})")
