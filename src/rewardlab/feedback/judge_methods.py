"""Judge methods and prompt variants, all with one output shape.

Every method maps (prompt, x, y) triples to, per triple and principle,
``{"p_ab", "p_ba", "p", ...}``: ``p_ab`` = P(A better) with A = x, ``p_ba`` = P(A better) with
A = y, ``p`` = P(x better). Registered methods (:data:`JUDGE_METHODS`):

- ``ab``: :func:`compare` (``judge`` or ``judge_fewshot`` template): the A/B log-probabilities,
  both orders averaged: p = ½·(p_ab + 1 − p_ba) (or one order, p = p_ab, ``p_ba`` = None).
- ``rationale``: the model first writes a short rationale (greedy), then a second user turn asks
  for the letter; A/B log-probabilities as in ``ab``, both orders.
- ``score``: each response alone is rated 1–9; s = E[digit] under the renormalised probabilities
  of the digit tokens, p = σ((s_x − s_y)/τ). No position exists, so ``p_ab`` = p and
  ``p_ba`` = 1 − p; ``s_x``/``s_y`` are kept.

:data:`JUDGE_VARIANTS` names (method, template) combinations; ``recipes/judge_models.py``
measures them and ``JudgeConfig.method`` (``rewardlab judge --method``) picks one. The default,
:data:`DEFAULT_JUDGE_VARIANT` = ``ab-fewshot``, is the one chosen on PandaLM validation and scored
71.0 ± 8.9 % on LLMBar Natural with Qwen2.5-Coder-1.5B (docs/notes/judges.md); ``ab`` is the
judge before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from rewardlab.feedback.common import Template
from rewardlab.feedback.principles import Principle
from rewardlab.llm.base import GenerationConfig, LLMBackend
from rewardlab.registry import Registry

Triple = tuple[str, str, str]
Result = list[dict[str, dict[str, float | str | None]]]
Method = Callable[..., Result]
DIGITS = [str(k) for k in range(1, 10)]
FINAL_QUESTION = "So which response is better? Answer with a single letter, A or B."

OPTIONS = ["A", "B"]

JUDGE_METHODS: Registry[Method] = Registry("judge method")


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


@dataclass(frozen=True)
class JudgeVariant:
    """A judge prompt variant: a registered method, its template and method options."""

    method: str
    template: str
    options: dict = field(default_factory=dict)

    def load_template(self) -> Template:
        """The variant's template (pointwise templates have ``{response}``, pairwise A and B)."""
        need = ("response",) if self.method == "score" else ("response_a", "response_b")
        return Template.load(self.template, required=need)

    def run(
        self,
        backend: LLMBackend,
        triples: list[Triple],
        principles: list[Principle],
        template: Template | None = None,
    ) -> Result:
        """Judge the triples with this variant (``template``: its template, already loaded)."""
        fn = JUDGE_METHODS.get(self.method)
        return fn(backend, triples, principles, template or self.load_template(), **self.options)


JUDGE_VARIANTS: dict[str, JudgeVariant] = {
    "ab": JudgeVariant("ab", "judge"),
    "ab-fewshot": JudgeVariant("ab", "judge_fewshot"),
    "rationale": JudgeVariant("rationale", "judge_rationale", {"max_new_tokens": 48}),
    "score": JudgeVariant("score", "judge_score"),
}
DEFAULT_JUDGE_VARIANT = "ab-fewshot"


@JUDGE_METHODS.register("ab")
def compare_ab(
    backend: LLMBackend,
    triples: list[Triple],
    principles: list[Principle],
    template: Template,
    both_orders: bool = True,
) -> Result:
    """The A/B judge (:func:`compare`), both orders unless ``both_orders=False``."""
    return compare(backend, triples, principles, template, both_orders=both_orders)


@JUDGE_METHODS.register("rationale")
def compare_rationale(
    backend: LLMBackend,
    triples: list[Triple],
    principles: list[Principle],
    template: Template,
    max_new_tokens: int = 48,
) -> Result:
    """A short greedy rationale per order, then the A/B letter in a second user turn."""
    convs = []
    for prompt, x, y in triples:
        for pr in principles:
            convs.append(judge_conversation(template, prompt, x, y, pr))
            convs.append(judge_conversation(template, prompt, y, x, pr))
    gen = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    rationales = backend.chat(convs, gen)
    follow = [
        [*c, {"role": "assistant", "content": r}, {"role": "user", "content": FINAL_QUESTION}]
        for c, r in zip(convs, rationales, strict=True)
    ]
    probs = [p_first(lp) for lp in backend.option_logprobs(follow, OPTIONS)]
    out, k = [], 0
    for _ in triples:
        res = {}
        for pr in principles:
            p_ab, p_ba = probs[k], probs[k + 1]
            res[pr.name] = {
                "p_ab": p_ab,
                "p_ba": p_ba,
                "p": (p_ab + 1.0 - p_ba) / 2,
                "rationale_ab": rationales[k],
                "rationale_ba": rationales[k + 1],
            }
            k += 2
        out.append(res)
    return out


def expected_digit(logprobs: dict[str, float]) -> float:
    """E[k] over k = 1…9 under the digit probabilities renormalised to sum to one."""
    top = max(logprobs.values())
    w = {k: math.exp(v - top) for k, v in logprobs.items()}
    return sum(int(k) * v for k, v in w.items()) / sum(w.values())


@JUDGE_METHODS.register("score")
def compare_score(
    backend: LLMBackend,
    triples: list[Triple],
    principles: list[Principle],
    template: Template,
    temperature: float = 1.0,
) -> Result:
    """Rate each response alone (1–9, expected digit); p = σ((s_x − s_y)/temperature)."""
    convs = []
    for prompt, x, y in triples:
        for pr in principles:
            for r in (x, y):
                text = template.render(
                    prompt=prompt,
                    response=r,
                    adjective=pr.adjective,
                    description=pr.description,
                    principle=pr.name,
                )
                convs.append([{"role": "user", "content": text}])
    scores = [expected_digit(lp) for lp in backend.option_logprobs(convs, DIGITS)]
    out, k = [], 0
    for _ in triples:
        res = {}
        for pr in principles:
            sx, sy = scores[k], scores[k + 1]
            p = 1.0 / (1.0 + math.exp(-(sx - sy) / temperature))
            res[pr.name] = {"p_ab": p, "p_ba": 1.0 - p, "p": p, "s_x": sx, "s_y": sy}
            k += 2
        out.append(res)
    return out
